package e2e

// dlq replay when something goes wrong: a dead letter written twice by a
// crashed consumer, a source topic missing or refusing a record. Each
// source record is sent back once.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/order"
)

// TestDLQReplayOnceAfterACrashCopy: a consumer killed after its dead
// letters were acknowledged but before its transaction committed writes
// them again on the next run — the one way a dead letter appears twice.
// dlq replay sends each source record back once all the same, counts the
// copies it passed, and the consumer then stores each order once.
func TestDLQReplayOnceAfterACrashCopy(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	conn := p.db()
	if _, err := conn.Exec(context.Background(), "ALTER TABLE orders ADD CONSTRAINT only_small_orders CHECK (total_amount < 40)"); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range 6 {
		recs = append(recs, &kgo.Record{Topic: p.topic, Key: fmt.Appendf(nil, "CUST-%05d", i+1),
			Value: costlyOrder(fmt.Sprintf("ORD-20261129-COPY-%d", i), 0)})
	}
	produceRaw(t, p.brokers, recs...)

	// Killed inside its first transaction, after the dead letters were
	// acknowledged.
	c := p.startConsumerEnv([]string{"FOODPIPE_TEST_PAUSE=in-transaction=1m"})
	c.waitFor(t, `"point":"in-transaction"`, time.Minute)
	c.kill()
	first := len(testenv.Records(t, p.topic+".dlq"))
	if first == 0 || p.count(conn) != 0 {
		t.Fatalf("killed in the transaction: %d dead letters, %d rows; want some dead letters and no row", first, p.count(conn))
	}
	c = p.startConsumer()
	p.waitCaughtUp(conn, 2*time.Minute, c)
	c.stop(t)
	dead := testenv.Records(t, p.topic+".dlq")
	sources := map[string]int{}
	for _, d := range dead {
		sources[d.Headers["foodpipe-source-partition"]+"@"+d.Headers["foodpipe-source-offset"]]++
	}
	if len(sources) != len(recs) || len(dead) != len(recs)+first {
		t.Fatalf("%d dead letters of %d source records, want %d of %d: the first run's %d again", len(dead), len(sources),
			len(recs)+first, len(recs), first)
	}

	if _, err := conn.Exec(context.Background(), "ALTER TABLE orders DROP CONSTRAINT only_small_orders"); err != nil {
		t.Fatal(err)
	}
	before := testenv.EndOffsetsAt(t, p.brokers, p.topic)
	rs := p.replay("--replay-group", testenv.Name(t, "replay"))
	var replayed int
	ids := map[string]int{}
	for _, r := range testenv.Records(t, p.topic) {
		if r.Offset >= before[r.Partition] {
			replayed++
			var o order.Order
			if err := order.DecodeAndValidate(r.Value, &o); err != nil {
				t.Fatalf("replayed %d@%d: %v", r.Partition, r.Offset, err)
			}
			ids[o.OrderID]++
		}
	}
	if replayed != len(recs) || len(ids) != len(recs) || rs.Replayed != int64(len(recs)) || rs.Skipped["copy"] != int64(first) {
		t.Errorf("replay %+v sent %d records (%d orders) for %d source records with %d copies; want each once, the copies skipped",
			rs, replayed, len(ids), len(recs), first)
	}
	c = p.startConsumer()
	p.waitCaughtUp(conn, 2*time.Minute, c)
	if s := c.stop(t); s.Stored != int64(len(recs)) || s.Duplicates != 0 || p.distinctIDs(conn) != int64(len(recs)) {
		t.Errorf("after the replay: stored %d, duplicates %d, %d distinct ids; want %d, 0, %d", s.Stored, s.Duplicates,
			p.distinctIDs(conn), len(recs), len(recs))
	}
}

// letterTo is a hand-made dead letter of class store from source offset
// off of topic, with a value of n bytes; all share one key, so they land in
// one partition of the dead-letter topic, in order.
func letterTo(dlq, topic string, off, n int) *kgo.Record {
	return &kgo.Record{Topic: dlq, Key: []byte("CUST-00001"), Value: bytes.Repeat([]byte{'a' + byte(off%26)}, n),
		Headers: []kgo.RecordHeader{
			{Key: "foodpipe-error-class", Value: []byte("store")},
			{Key: "foodpipe-source-topic", Value: []byte(topic)},
			{Key: "foodpipe-source-partition", Value: []byte("0")},
			{Key: "foodpipe-source-offset", Value: []byte(fmt.Sprint(off))},
		}}
}

// growth is how many records each topic gained since before.
func growth(t *testing.T, p *pipeline, before map[string]int64) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for topic, was := range before {
		var n int64
		for _, end := range testenv.EndOffsetsAt(t, p.brokers, topic) {
			n += end
		}
		out[topic] = n - was
	}
	return out
}

// TestDLQReplayFailuresSendNothingTwice: a replay that fails sends nothing
// it will send again. A dead letter whose source topic does not exist
// stops the run before anything of its batch is sent (a dry run says so
// too); one its source topic refuses (larger than its max.message.bytes,
// lowered since) fails alone: the letters acknowledged around it are
// counted, recorded and not sent again by the next run, which sends only
// the refused one once the topic takes it.
func TestDLQReplayFailuresSendNothingTwice(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	dlq, missing, small := p.topic+".dlq", testenv.Name(t, "gone"), testenv.Name(t, "small")
	testenv.CreateTopic(t, small, 1)
	testenv.SetTopicConfig(t, small, "max.message.bytes", "10000")
	group := testenv.Name(t, "replay")
	replay := func(extra ...string) (replaySummary, result) {
		r := run(t, p.env, append([]string{"dlq", "replay", p.brokersFlag(), "--topic", p.topic, "--output", "json",
			"--replay-group", group}, extra...)...)
		var s replaySummary
		_ = json.Unmarshal([]byte(r.stdout), &s)
		return s, r
	}
	zero := func() map[string]int64 {
		return growth(t, p, map[string]int64{p.topic: 0, small: 0})
	}

	produceRaw(t, p.brokers, letterTo(dlq, p.topic, 0, 10), letterTo(dlq, missing, 1, 10), letterTo(dlq, p.topic, 2, 10))
	base := zero()
	for _, extra := range [][]string{{"--dry-run"}, nil, nil} {
		_, r := replay(extra...)
		if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, missing) || !strings.Contains(line, "topics init") ||
			!regexp.MustCompile(`dead letter \d+@1 `).MatchString(line) {
			t.Errorf("replay %v of a letter whose source topic is missing: want exit 1 naming the letter and the topic\n%s", extra, r)
		}
	}
	if g := growth(t, p, base); g[p.topic] != 0 {
		t.Fatalf("failed replays sent %d records to %s, want none", g[p.topic], p.topic)
	}
	testenv.CreateTopic(t, missing, 1)
	if s, r := replay(); r.code != 0 || s.Replayed != 3 {
		t.Fatalf("replay once the topic exists: want 3 replayed\n%s", r)
	}
	if g := growth(t, p, base); g[p.topic] != 2 || len(testenv.Records(t, missing)) != 1 {
		t.Errorf("sent %v and %d to %s, want 2 to %s and 1", g, len(testenv.Records(t, missing)), missing, p.topic)
	}

	produceRaw(t, p.brokers, letterTo(dlq, p.topic, 3, 10), letterTo(dlq, small, 4, 20000), letterTo(dlq, small, 5, 10),
		letterTo(dlq, p.topic, 6, 10))
	base = zero()
	s, r := replay()
	if line := errorLine(t, r); r.code != 1 || !regexp.MustCompile(`dead letter \d+@4 `).MatchString(line) || !strings.Contains(line, small) ||
		s.Replayed != 3 {
		t.Errorf("replay with a letter too large for its source topic: want exit 1 naming it, the 3 others replayed\n%s", r)
	}
	if g := growth(t, p, base); g[p.topic] != 2 || g[small] != 1 {
		t.Errorf("sent %v, want 2 to %s and 1 to %s", g, p.topic, small)
	}
	testenv.SetTopicConfig(t, small, "max.message.bytes", "100000")
	if s, r := replay(); r.code != 0 || s.Replayed != 1 || s.Earlier != 2 {
		t.Errorf("replay once the topic takes it: want the refused letter replayed, the 2 sent after it counted as replayed before\n%s", r)
	}
	if s, r := replay(); r.code != 0 || s.Replayed != 0 {
		t.Errorf("replay again: want nothing replayed\n%s", r)
	}
	if g := growth(t, p, base); g[p.topic] != 2 || g[small] != 2 {
		t.Errorf("sent %v in all, want each letter once: 2 to %s and 2 to %s", g, p.topic, small)
	}
}
