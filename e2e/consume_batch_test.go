package e2e

import (
	"bufio"
	"encoding/json"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

// TestConsumeStopAtEnd: two members of a group started with --stop-at-end
// drain the backlog and exit 0 with their summaries while a producer keeps
// producing: the group's stored offsets are, in every partition, the end
// offsets the later member saw at its start (what was produced since is
// left for the next run), and every row stored is counted once in one of
// the summaries.
func TestConsumeStopAtEnd(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	p.produce(20_000)
	before := testenv.EndOffsetsAt(t, p.brokers, p.topic)

	prod := command(t, t.Context(), nil, "produce", p.brokersFlag(), "--topic", p.topic, "--rate", "300", "--progress-interval", "0")
	prodErr := &lineWaiter{want: "msg=producing"}
	prod.Stderr = prodErr
	if err := prod.Start(); err != nil {
		t.Fatal(err)
	}
	prodDone := make(chan error, 1)
	go func() { prodDone <- prod.Wait() }()
	t.Cleanup(func() { _ = prod.Process.Kill() })
	prodErr.wait(t, time.Minute)

	members := []*consumer{p.startConsumer("--stop-at-end"), p.startConsumer("--stop-at-end")}
	var stored int64
	var ends []map[int32]int64
	for i, c := range members {
		if code := c.waitExit(t, 3*time.Minute); code != 0 {
			t.Fatalf("member %d: exit %d\n%s", i, code, c.stderr.String())
		}
		var s consumeSummary
		if err := json.Unmarshal(c.stdout.Bytes(), &s); err != nil {
			t.Fatalf("member %d summary: %v\n%s", i, err, c.stdout.String())
		}
		stored += s.Stored
		ends = append(ends, stopEnds(t, c.stderr.String()))
	}
	select {
	case err := <-prodDone:
		t.Fatalf("the producer ended before the consumers: %v", err)
	default:
	}

	// Each member writes up to the ends it saw, never past them; the group
	// ends at the later member's.
	conn := p.db()
	got := p.storedOffsets(conn)
	for part, b := range before {
		want := max(ends[0][part], ends[1][part])
		if ends[0][part] < b || ends[1][part] < b || got[part] != want {
			t.Errorf("partition %d: end offsets at the members' start %d and %d (before them: %d), stored %d, want %d",
				part, ends[0][part], ends[1][part], b, got[part], want)
		}
	}
	var sum int64
	for _, n := range got {
		sum += n
	}
	if rows := p.count(conn); rows != sum || stored != rows {
		t.Errorf("%d rows, %d in the stored offsets, %d in the summaries", rows, sum, stored)
	}
	after := testenv.EndOffsetsAt(t, p.brokers, p.topic)
	var left int64
	for part, e := range after {
		left += e - got[part]
	}
	if left == 0 {
		t.Errorf("nothing produced after the ends were seen: the test proves nothing")
	}
	t.Logf("end offsets before %v; seen by the members %v; stored %v; at the end %v", before, ends, got, after)

	if err := prod.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-prodDone:
		if err != nil {
			t.Errorf("producer: %v\n%s", err, prodErr.String())
		}
	case <-time.After(stopDeadline):
		t.Fatalf("producer still running %v after SIGTERM\n%s", stopDeadline, prodErr.String())
	}
}

// stopEnds reads the end offsets a --stop-at-end consumer saw at start from
// its JSON log.
func stopEnds(t *testing.T, log string) map[int32]int64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l struct {
			Msg  string           `json:"msg"`
			Ends map[string]int64 `json:"end_offsets"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || !strings.HasPrefix(l.Msg, "stopping once the group has stored") {
			continue
		}
		out := map[int32]int64{}
		for k, v := range l.Ends {
			p, err := strconv.Atoi(k)
			if err != nil {
				t.Fatalf("end offsets %v", l.Ends)
			}
			out[int32(p)] = v
		}
		return out
	}
	t.Fatalf("no end offsets logged:\n%s", log)
	return nil
}

// TestConsumeOneRowBatchesKeepKafkaUpToDate: with --batch-rows 1 the
// consumer commits thousands of transactions; Kafka's copy of the offsets
// (for lag tools) must still end where PostgreSQL's do, and the member must
// leave the group on its way out instead of timing out behind a queue of
// commits to Kafka.
func TestConsumeOneRowBatchesKeepKafkaUpToDate(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	p.produce(3000)
	c := p.startConsumer("--batch-rows", "1", "--stop-at-end")
	if code := c.waitExit(t, 3*time.Minute); code != 0 {
		t.Fatalf("exit %d\n%s", code, c.stderr.String())
	}
	conn := p.db()
	stored, committed := p.storedOffsets(conn), kafkaCommitted(t, p)
	end := testenv.EndOffsetsAt(t, p.brokers, p.topic)
	for part, e := range end {
		if stored[part] != e || committed[part] != e {
			t.Errorf("partition %d: end %d, stored in PostgreSQL %d, committed to Kafka %d", part, e, stored[part], committed[part])
		}
	}
	if rows := p.count(conn); rows != 3000 {
		t.Errorf("%d rows, want 3000", rows)
	}
	if strings.Contains(c.stderr.String(), "leaving the group did not finish in time") {
		t.Errorf("the member did not leave the group in time:\n%s", lastLines(c.stderr.String(), 5))
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
