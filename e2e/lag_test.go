package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

type lagReport struct {
	Topic      string `json:"topic"`
	Group      string `json:"group"`
	Partitions []struct {
		Partition int32  `json:"partition"`
		Stored    *int64 `json:"stored"`
		Committed *int64 `json:"committed"`
		Start     int64  `json:"start"`
		End       int64  `json:"end"`
		Lag       int64  `json:"lag"`
		Note      string `json:"note"`
		Blocked   bool   `json:"blocked"`
	} `json:"partitions"`
	Total int64 `json:"total_lag"`
}

func (p *pipeline) lag(extra ...string) (lagReport, result) {
	p.t.Helper()
	args := append([]string{"lag", p.brokersFlag(), "--topic", p.topic, "--group", p.group, "--database-url", p.dsn,
		"--output", "json"}, extra...)
	r := run(p.t, p.env, args...)
	var rep lagReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		p.t.Fatalf("lag output is not JSON: %v\n%s", err, r)
	}
	return rep, r
}

// TestLag: the lag of every partition is its end offset minus the offset
// stored in PostgreSQL (from the partition's start when nothing is
// stored), Kafka's committed copy is shown beside it, and --max-lag exits 1
// exactly when some partition lags more.
func TestLag(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	p.produce(3000)
	conn := p.db()

	// Nothing consumed yet: every partition lags by all it holds.
	rep, r := p.lag()
	end := testenv.EndOffsetsAt(t, p.brokers, p.topic)
	if r.code != 0 || rep.Topic != p.topic || rep.Group != p.group || len(rep.Partitions) != len(end) {
		t.Fatalf("lag before consuming:\n%s", r)
	}
	var total int64
	for _, row := range rep.Partitions {
		if row.Stored != nil || row.Committed != nil || row.End != end[row.Partition] || row.Lag != end[row.Partition] ||
			!strings.Contains(row.Note, "nothing stored") {
			t.Errorf("before consuming, partition %d: %+v, want nothing stored and lag = end = %d", row.Partition, row, end[row.Partition])
		}
		total += row.Lag
	}
	if total != 3000 || rep.Total != 3000 {
		t.Errorf("total lag %d (reported %d), want 3000", total, rep.Total)
	}

	// Consume it all, stop, produce more: lag = end − stored, per partition.
	c := p.startConsumer()
	p.waitCaughtUp(conn, 2*time.Minute, c)
	c.stop(t)
	p.produce(700)
	stored := p.storedOffsets(conn)
	end = testenv.EndOffsetsAt(t, p.brokers, p.topic)
	committed := kafkaCommitted(t, p)
	rep, r = p.lag()
	if r.code != 0 {
		t.Fatal(r)
	}
	var worst int64
	total = 0
	for _, row := range rep.Partitions {
		part := row.Partition
		want := end[part] - stored[part]
		if row.Stored == nil || *row.Stored != stored[part] || row.End != end[part] || row.Lag != want || row.Note != "" {
			t.Errorf("partition %d: %+v, want stored %d, end %d, lag %d", part, row, stored[part], end[part], want)
		}
		// A clean stop commits the stored offsets to Kafka too.
		if row.Committed == nil || *row.Committed != committed[part] || committed[part] != stored[part] {
			t.Errorf("partition %d: committed %v, Kafka says %d, stored %d", part, row.Committed, committed[part], stored[part])
		}
		worst = max(worst, row.Lag)
		total += row.Lag
	}
	if total != 700 || rep.Total != 700 {
		t.Errorf("total lag %d (reported %d), want the 700 produced since", total, rep.Total)
	}

	// --max-lag: exit 1 one below the worst partition's lag, 0 at it.
	rep, r = p.lag("--max-lag", fmt.Sprint(worst-1))
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, fmt.Sprintf("lags %d", worst)) || len(rep.Partitions) == 0 {
		t.Errorf("--max-lag %d: want exit 1 naming the lag %d, after the table\n%s", worst-1, worst, r)
	}
	if _, r = p.lag("--max-lag", fmt.Sprint(worst)); r.code != 0 {
		t.Errorf("--max-lag %d: want exit 0\n%s", worst, r)
	}

	// A group name with a typo lags from the start, and a warning names
	// the groups that did store offsets for the topic.
	r = run(t, nil, "lag", p.brokersFlag(), "--topic", p.topic, "--group", p.group+"-typo", "--database-url", p.dsn)
	if r.code != 0 || !regexp.MustCompile(`WARN.*has stored nothing for this topic.*groups_with_offsets=`+regexp.QuoteMeta(p.group)+`\b`).MatchString(r.stderr) {
		t.Errorf("lag of an unknown group: want exit 0 and a warning naming %s\n%s", p.group, r)
	}

	// The table for people.
	r = run(t, nil, "lag", p.brokersFlag(), "--topic", p.topic, "--group", p.group, "--database-url", p.dsn)
	if r.code != 0 || !strings.Contains(r.stdout, "PARTITION  STORED  COMMITTED  END") ||
		!regexp.MustCompile(`(?m)^total +700$`).MatchString(r.stdout) {
		t.Errorf("lag table:\n%s", r)
	}
}

// kafkaCommitted reads the group's committed offsets from Kafka, with a
// client of the test's own.
func kafkaCommitted(t *testing.T, p *pipeline) map[int32]int64 {
	t.Helper()
	resp, err := testenv.AdminAt(t, p.brokers).FetchOffsets(context.Background(), p.group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	for part, o := range resp[p.topic] {
		out[part] = o.At
	}
	return out
}
