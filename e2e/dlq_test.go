package e2e

// What dlq inspect and dlq replay print, read as the tests read it, and
// the refusals of both.

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

// inspectLine is one JSON line of dlq inspect.
type inspectLine struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Class     string `json:"class"`
	Reason    string `json:"reason"`
	Source    struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Offset    int64  `json:"offset"`
		Timestamp string `json:"timestamp"`
	} `json:"source"`
	Group          string            `json:"group"`
	FailedAt       string            `json:"failed_at"`
	Key            string            `json:"key"`
	ValueBytes     int               `json:"value_bytes"`
	ValuePreview   string            `json:"value_preview"`
	Truncated      bool              `json:"truncated"`
	OriginalSize   int64             `json:"original_size"`
	OriginalSHA256 string            `json:"original_sha256"`
	Headers        map[string]string `json:"headers"`
}

func (p *pipeline) inspect(extra ...string) ([]inspectLine, result) {
	p.t.Helper()
	r := run(p.t, p.env, append([]string{"dlq", "inspect", p.brokersFlag(), "--topic", p.topic, "--output", "json"}, extra...)...)
	if r.code != 0 {
		p.t.Fatalf("dlq inspect %v:\n%s", extra, r)
	}
	var lines []inspectLine
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l inspectLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			p.t.Fatalf("dlq inspect line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines, r
}

type replaySummary struct {
	DryRun       bool             `json:"dry_run"`
	Read         int64            `json:"read"`
	Replayed     int64            `json:"replayed"`
	Skipped      map[string]int64 `json:"skipped"`
	Earlier      int64            `json:"replayed_before"`
	OtherClasses int64            `json:"other_classes"`
	Sources      []struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Replayed  int64  `json:"replayed"`
	} `json:"sources"`
}

func (p *pipeline) replay(extra ...string) replaySummary {
	p.t.Helper()
	r := run(p.t, p.env, append([]string{"dlq", "replay", p.brokersFlag(), "--topic", p.topic, "--output", "json"}, extra...)...)
	var s replaySummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || r.code != 0 {
		p.t.Fatalf("dlq replay %v: %v\n%s", extra, err, r)
	}
	return s
}

// committedIn reads the offsets group committed for topic, with a client
// of the test's own.
func committedIn(t *testing.T, p *pipeline, group, topic string) map[int32]int64 {
	t.Helper()
	resp, err := testenv.AdminAt(t, p.brokers).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	for part, o := range resp[topic] {
		out[part] = o.At
	}
	return out
}

// endsEqual compares committed offsets with end offsets, where a partition
// with no records needs no commit.
func endsEqual(committed, end map[int32]int64) bool {
	for p, e := range end {
		if committed[p] != e && e > 0 {
			return false
		}
	}
	return true
}

// TestDLQRefusals: a dead-letter topic that does not exist and a bad filter
// are one line each, exit 1 and 2.
func TestDLQRefusals(t *testing.T) {
	t.Parallel()
	topic := testenv.Name(t, "orders")
	for _, cmd := range []string{"inspect", "replay"} {
		r := run(t, nil, "dlq", cmd, brokersFlag(t), "--topic", topic)
		if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, topic+".dlq") || !strings.Contains(line, "run foodpipe topics init") ||
			r.stdout != "" {
			t.Errorf("dlq %s of a missing topic: want exit 1 naming it\n%s", cmd, r)
		}
	}
	for _, args := range [][]string{{"inspect", "--since", "yesterday"}, {"replay", "--class", "stored"}} {
		r := run(t, nil, append([]string{"dlq", brokersFlag(t)}, args...)...)
		if line := errorLine(t, r); r.code != 2 || !strings.Contains(line, "invalid "+strings.TrimPrefix(args[1], "--")) {
			t.Errorf("dlq %v: want exit 2 naming the flag\n%s", args, r)
		}
	}
}
