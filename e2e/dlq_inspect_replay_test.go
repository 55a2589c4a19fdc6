package e2e

// dlq inspect and dlq replay end to end: the dead letters of a real run
// listed exactly, filtered, and replayed once their cause is fixed.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/order"
)

// coords names a record by partition and offset.
type coords struct {
	partition int32
	offset    int64
}

// costlyOrder is a valid order of 43.96, with extra bytes in an unknown
// field (ignored by the decoder) when pad > 0.
func costlyOrder(id string, pad int) []byte {
	padding := ""
	if pad > 0 {
		padding = `"padding":"` + strings.Repeat("x", pad) + `",`
	}
	return []byte(`{` + padding + `"order_id":"` + id + `","customer_id":"CUST-00042","customer_name":"Jane Smith",` +
		`"customer_email":"jane.smith.42@example.com","items":[{"item_id":"ITEM-003","name":"Bacon Burger","quantity":4,` +
		`"price":10.99,"subtotal":43.96}],"total_amount":43.96,"status":"pending","created_at":"2026-11-27T13:27:42.123456Z"}`)
}

// TestDLQInspectAndReplay: PostgreSQL refuses the orders of 40 or more (a
// CHECK constraint too strict), so the consumer dead-letters them with
// class store, next to records that cannot be decoded or validated and an
// order too large to dead-letter whole (a marker). dlq inspect lists
// exactly the dead letters of the topic with their headers; once the
// constraint is dropped, dlq replay --class store sends exactly the store
// dead letters that are not markers back to the orders topic, with their
// original key, bytes and headers; a second replay sends nothing; and the
// consumer then stores every one of them.
func TestDLQInspectAndReplay(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	dlq := p.topic + ".dlq"
	smallDeadLetterTopic(t, dlq)
	conn := p.db()
	if _, err := conn.Exec(context.Background(), "ALTER TABLE orders ADD CONSTRAINT only_small_orders CHECK (total_amount < 40)"); err != nil {
		t.Fatal(err)
	}

	huge := produceDeadLetterMix(t, p)
	c := p.startConsumer()
	p.waitCaughtUp(conn, 2*time.Minute, c)
	s := c.stop(t)
	r := sortDeadLetters(t, p, s, huge)

	failedFirst, failedLast := checkInspectAll(t, p, r)
	checkInspectFilters(t, p, r, failedFirst, failedLast)

	// A dry run counts and changes nothing.
	group := testenv.Name(t, "replay")
	before := testenv.EndOffsetsAt(t, p.brokers, p.topic)
	toReplay := r.count["store"] - 1 // not the marker
	checkDryRun(t, p, r, group, before, toReplay)

	// The cause is fixed: replay the store dead letters.
	if _, err := conn.Exec(context.Background(), "ALTER TABLE orders DROP CONSTRAINT only_small_orders"); err != nil {
		t.Fatal(err)
	}
	checkStoreReplay(t, p, r, group, before, toReplay)

	// A second replay sends nothing.
	after := testenv.EndOffsetsAt(t, p.brokers, p.topic)
	if rs := p.replay("--class", "store", "--replay-group", group); rs.Read != 0 || rs.Replayed != 0 {
		t.Errorf("second replay %+v, want nothing read or replayed", rs)
	}
	if again := testenv.EndOffsetsAt(t, p.brokers, p.topic); !maps.Equal(again, after) {
		t.Errorf("the second replay produced: end offsets %v, then %v", after, again)
	}

	// The consumer stores the replayed orders, each once.
	c = p.startConsumer()
	p.waitCaughtUp(conn, 2*time.Minute, c)
	s = c.stop(t)
	if s.Stored != toReplay || len(s.DeadLettered) != 0 {
		t.Errorf("after the replay the consumer stored %d, dead-lettered %v; want %d stored", s.Stored, s.DeadLettered, toReplay)
	}
	if rows, ids := p.count(conn), p.distinctIDs(conn); rows != r.count[""]+toReplay || ids != rows {
		t.Errorf("%d rows (%d ids), want every valid order but the huge one: %d", rows, ids, r.count[""]+toReplay)
	}

	checkReplayEveryClass(t, p, r, group)
}

// smallDeadLetterTopic makes dlq again with Kafka's default limit, so that
// an order as large as the orders topic takes becomes a marker.
func smallDeadLetterTopic(t *testing.T, dlq string) {
	t.Helper()
	if _, err := testenv.Admin(t).DeleteTopic(t.Context(), dlq); err != nil {
		t.Fatal(err)
	}
	testenv.WaitTopicGone(t, dlq)
	testenv.CreateTopic(t, dlq, 3)
}

// produceDeadLetterMix produces 400 orders, then records that cannot be
// decoded or validated, a costly order with a header of its own, and an
// order too large to dead-letter whole, which it returns.
func produceDeadLetterMix(t *testing.T, p *pipeline) (huge []byte) {
	t.Helper()
	p.produce(400)
	bad := func(file string) []byte {
		data, err := os.ReadFile("../testdata/orders/bad/" + file)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	huge = costlyOrder("ORD-20261129-HUGE-1", 1_048_000)
	produceRaw(t, p.brokers,
		&kgo.Record{Topic: p.topic, Key: []byte("CUST-00007"), Value: bad("decode-truncated.json")},
		&kgo.Record{Topic: p.topic, Key: []byte("CUST-00007"), Value: bad("decode-raw-control-character.json")},
		&kgo.Record{Topic: p.topic, Key: []byte("CUST-00008"), Value: bad("validate-subtotal-mismatch.json")},
		&kgo.Record{Topic: p.topic, Key: []byte("CUST-00042"), Value: costlyOrder("ORD-20261129-TRACED-1", 0),
			Headers: []kgo.RecordHeader{{Key: "trace-id", Value: []byte("4bf92f35")}}},
	)
	produceRaw(t, p.brokers, &kgo.Record{Topic: p.topic, Key: []byte("CUST-00001"), Value: huge})
	return huge
}

// deadLetterRun is what a consumer run made of the orders topic.
type deadLetterRun struct {
	source map[coords]testenv.Record // every record of the orders topic
	class  map[coords]string         // what each became: "" stored, else its dead-letter class
	count  map[string]int64          // records by class
	dead   []testenv.Record          // the dead-letter topic
	huge   []byte                    // the order too large to dead-letter whole
}

// sortDeadLetters decodes every record of the orders topic as the consumer
// should have, and checks that the summary and the dead-letter topic count
// the same dead letters by class.
func sortDeadLetters(t *testing.T, p *pipeline, s consumeSummary, huge []byte) *deadLetterRun {
	t.Helper()
	r := &deadLetterRun{source: map[coords]testenv.Record{}, class: map[coords]string{}, count: map[string]int64{}, huge: huge}
	for _, rec := range testenv.Records(t, p.topic) {
		at := coords{rec.Partition, rec.Offset}
		r.source[at] = rec
		var o order.Order
		switch err := order.DecodeAndValidate(rec.Value, &o); {
		case err != nil:
			r.class[at] = order.ErrorClass(err)
		case o.TotalAmount >= 4000:
			r.class[at] = order.ClassStore
		}
		r.count[r.class[at]]++
	}
	if r.count["decode"] != 2 || r.count["validate"] != 1 || r.count["store"] < 10 {
		t.Fatalf("classes of the source records: %v", r.count)
	}
	for _, k := range []string{"decode", "validate", "store"} {
		if s.DeadLettered[k] != r.count[k] {
			t.Errorf("consumer dead-lettered %v, want %v", s.DeadLettered, r.count)
		}
	}
	r.dead = testenv.Records(t, p.topic+".dlq")
	t.Logf("source records by class: %v; %d dead letters", r.count, len(r.dead))
	if int64(len(r.dead)) != r.count["decode"]+r.count["validate"]+r.count["store"] {
		t.Fatalf("%d dead letters, want %v", len(r.dead), r.count)
	}
	return r
}

// checkInspectAll: inspect lists exactly the dead letters, with every
// header, and one marker. It returns the first and the last failed_at.
func checkInspectAll(t *testing.T, p *pipeline, r *deadLetterRun) (failedFirst, failedLast time.Time) {
	t.Helper()
	lines, _ := p.inspect()
	if len(lines) != len(r.dead) {
		t.Fatalf("dlq inspect lists %d dead letters, the topic holds %d", len(lines), len(r.dead))
	}
	byDLQ := map[coords]inspectLine{}
	for _, l := range lines {
		byDLQ[coords{l.Partition, l.Offset}] = l
	}
	markers := 0
	for _, d := range r.dead {
		l, ok := byDLQ[coords{d.Partition, d.Offset}]
		if !ok {
			t.Errorf("dead letter %d@%d not listed", d.Partition, d.Offset)
			continue
		}
		orig, ok := checkListedSource(t, p, r, d, l)
		if !ok {
			continue
		}
		failed, err := time.Parse(time.RFC3339Nano, l.FailedAt)
		if err != nil {
			t.Errorf("failed_at %q: %v", l.FailedAt, err)
		}
		if failedFirst.IsZero() || failed.Before(failedFirst) {
			failedFirst = failed
		}
		if failed.After(failedLast) {
			failedLast = failed
		}
		if l.Truncated {
			markers++
		}
		checkListedValue(t, d, l, orig)
	}
	if markers != 1 {
		t.Errorf("%d markers listed, want the huge order's", markers)
	}
	return failedFirst, failedLast
}

// checkListedSource: the line l listed for dead letter d names a record of
// the orders topic as its source, and its class, reason, group, headers,
// failed_at and key are the dead letter's. It returns that record, and
// false when the source is not one.
func checkListedSource(t *testing.T, p *pipeline, r *deadLetterRun, d testenv.Record, l inspectLine) (testenv.Record, bool) {
	t.Helper()
	at := coords{l.Source.Partition, l.Source.Offset}
	orig, ok := r.source[at]
	if !ok || l.Source.Topic != p.topic {
		t.Errorf("dead letter %d@%d names source %s/%d@%d, which is not a record of %s", d.Partition, d.Offset,
			l.Source.Topic, at.partition, at.offset, p.topic)
		return orig, false
	}
	if l.Class != r.class[at] || l.Reason == "" || l.Group != p.group || !maps.Equal(l.Headers, d.Headers) ||
		l.FailedAt != d.Headers["foodpipe-failed-at"] || l.Key != string(orig.Key) {
		t.Errorf("dead letter %d@%d: listed %+v\nwant class %q, group %s, headers %v", d.Partition, d.Offset, l, r.class[at], p.group, d.Headers)
	}
	return orig, true
}

// checkListedValue: a marker names the original's size and digest; any
// other dead letter holds the original's bytes, previewed as text.
func checkListedValue(t *testing.T, d testenv.Record, l inspectLine, orig testenv.Record) {
	t.Helper()
	if l.Truncated {
		sum := sha256.Sum256(orig.Value)
		if l.OriginalSize != int64(len(orig.Value)) || l.OriginalSHA256 != hex.EncodeToString(sum[:]) || l.ValueBytes != 0 {
			t.Errorf("marker %+v, want the original's size %d and digest", l, len(orig.Value))
		}
		return
	}
	if l.ValueBytes != len(orig.Value) || !bytes.Equal(d.Value, orig.Value) {
		t.Errorf("dead letter %d@%d: %d bytes, the original %d", d.Partition, d.Offset, l.ValueBytes, len(orig.Value))
	}
	if preview := []rune(l.ValuePreview); l.Class == "store" &&
		(len(preview) != 61 || string(preview[:60]) != string([]rune(string(orig.Value))[:60]) || preview[60] != '…') {
		t.Errorf("preview %q of %q", l.ValuePreview, orig.Value)
	}
	if l.Class != "store" && !utf8.ValidString(l.ValuePreview) {
		t.Errorf("preview %q is not printable text", l.ValuePreview)
	}
}

// checkInspectFilters: --class and --since pick the dead letters they
// name, and the table counts them and the marker.
func checkInspectFilters(t *testing.T, p *pipeline, r *deadLetterRun, failedFirst, failedLast time.Time) {
	t.Helper()
	count, dead := r.count, r.dead
	if lines, _ := p.inspect("--class", "store"); int64(len(lines)) != count["store"] {
		t.Errorf("--class store lists %d, want %d", len(lines), count["store"])
	}
	if lines, _ := p.inspect("--class", "decode,validate", "--since", "1h"); int64(len(lines)) != count["decode"]+count["validate"] {
		t.Errorf("--class decode,validate --since 1h lists %d, want %d", len(lines), count["decode"]+count["validate"])
	}
	if lines, _ := p.inspect("--since", failedFirst.Format(time.RFC3339Nano)); len(lines) != len(dead) {
		t.Errorf("--since the first failure lists %d, want all %d", len(lines), len(dead))
	}
	if lines, _ := p.inspect("--since", failedLast.Add(time.Microsecond).Format(time.RFC3339Nano)); len(lines) != 0 {
		t.Errorf("--since after the last failure lists %d, want none", len(lines))
	}
	res := run(t, nil, "dlq", "inspect", p.brokersFlag(), "--topic", p.topic)
	if res.code != 0 || !strings.Contains(res.stdout, fmt.Sprintf("%d of %d dead letters shown", len(dead), len(dead))) ||
		!strings.Contains(res.stdout, fmt.Sprintf("(marker: the original is %d bytes", len(r.huge))) ||
		!strings.Contains(res.stdout, "DLQ OFFSET") {
		t.Errorf("dlq inspect table:\n%s", res)
	}
}

// checkDryRun: a dry run of the store dead letters counts what it would
// replay and skip, and neither produces nor commits.
func checkDryRun(t *testing.T, p *pipeline, r *deadLetterRun, group string, before map[int32]int64, toReplay int64) {
	t.Helper()
	rs := p.replay("--class", "store", "--dry-run", "--replay-group", group)
	if !rs.DryRun || rs.Read != int64(len(r.dead)) || rs.Replayed != toReplay || rs.Skipped["marker"] != 1 ||
		rs.OtherClasses != r.count["decode"]+r.count["validate"] {
		t.Errorf("dry run %+v, want %d to replay, 1 marker, %d of other classes", rs, toReplay, r.count["decode"]+r.count["validate"])
	}
	if after := testenv.EndOffsetsAt(t, p.brokers, p.topic); !maps.Equal(after, before) {
		t.Errorf("a dry run produced: end offsets %v, then %v", before, after)
	}
	if got := committedIn(t, p, group+".store", p.topic+".dlq"); len(got) != 0 {
		t.Errorf("a dry run committed %v", got)
	}
}

// checkStoreReplay replays the store dead letters: every one but the
// marker goes back, counted by source partition, and the replay's progress
// reaches the dead-letter topic's end.
func checkStoreReplay(t *testing.T, p *pipeline, r *deadLetterRun, group string, before map[int32]int64, toReplay int64) {
	t.Helper()
	dlq := p.topic + ".dlq"
	rs := p.replay("--class", "store", "--replay-group", group)
	bySource := map[int32]int64{}
	for at, c := range r.class {
		if c == "store" && len(r.source[at].Value) != len(r.huge) {
			bySource[at.partition]++
		}
	}
	gotBySource := map[int32]int64{}
	for _, s := range rs.Sources {
		if s.Topic == p.topic {
			gotBySource[s.Partition] = s.Replayed
		}
	}
	if rs.DryRun || rs.Replayed != toReplay || rs.Skipped["marker"] != 1 || !maps.Equal(gotBySource, bySource) {
		t.Errorf("replay %+v, want %d replayed (by source partition %v), 1 marker skipped", rs, toReplay, bySource)
	}
	checkReplayedRecords(t, p, r, before, toReplay)
	dlqEnd := testenv.EndOffsetsAt(t, p.brokers, dlq)
	if got := committedIn(t, p, group+".store", dlq); !endsEqual(got, dlqEnd) {
		t.Errorf("replay progress %v, want the dead-letter topic's end %v", got, dlqEnd)
	}
}

// checkReplayedRecords: what the orders topic gained since before is
// exactly the store dead letters but the marker, byte for byte, each in
// its original partition with its key and headers.
func checkReplayedRecords(t *testing.T, p *pipeline, r *deadLetterRun, before map[int32]int64, toReplay int64) {
	t.Helper()
	want := map[string]testenv.Record{}
	for at, c := range r.class {
		if rec := r.source[at]; c == "store" && len(rec.Value) != len(r.huge) {
			want[string(rec.Value)] = rec
		}
	}
	var replayed int64
	for _, rec := range testenv.Records(t, p.topic) {
		if rec.Offset < before[rec.Partition] {
			continue
		}
		replayed++
		o, ok := want[string(rec.Value)]
		if !ok {
			t.Errorf("replayed record %d@%d is not one of the store dead letters: %.80q", rec.Partition, rec.Offset, rec.Value)
			continue
		}
		delete(want, string(rec.Value))
		if string(rec.Key) != string(o.Key) || rec.Partition != o.Partition || !maps.Equal(rec.Headers, o.Headers) {
			t.Errorf("replayed %d@%d: key %q, headers %v; the original %d@%d: key %q, headers %v",
				rec.Partition, rec.Offset, rec.Key, rec.Headers, o.Partition, o.Offset, o.Key, o.Headers)
		}
	}
	if replayed != toReplay || len(want) != 0 {
		t.Errorf("%d records replayed to %s, want %d; %d store dead letters missing", replayed, p.topic, toReplay, len(want))
	}
}

// checkReplayEveryClass replays every class: the store ones were replayed
// before, the others go now; and then nothing is left.
func checkReplayEveryClass(t *testing.T, p *pipeline, r *deadLetterRun, group string) {
	t.Helper()
	rs := p.replay("--replay-group", group)
	if rs.Read != int64(len(r.dead)) || rs.Earlier != r.count["store"] || rs.Replayed != r.count["decode"]+r.count["validate"] {
		t.Errorf("replay of every class %+v, want %d read, %d replayed before, %d replayed", rs, len(r.dead), r.count["store"],
			r.count["decode"]+r.count["validate"])
	}
	if rs = p.replay("--replay-group", group); rs.Read != 0 || rs.Replayed != 0 {
		t.Errorf("replay of every class, again: %+v, want nothing", rs)
	}
}
