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
	// A dead-letter topic with Kafka's default limit, so that an order as
	// large as the orders topic takes becomes a marker.
	if _, err := testenv.Admin(t).DeleteTopic(t.Context(), dlq); err != nil {
		t.Fatal(err)
	}
	testenv.WaitTopicGone(t, dlq)
	testenv.CreateTopic(t, dlq, 3)
	conn := p.db()
	if _, err := conn.Exec(context.Background(), "ALTER TABLE orders ADD CONSTRAINT only_small_orders CHECK (total_amount < 40)"); err != nil {
		t.Fatal(err)
	}

	p.produce(400)
	bad := func(file string) []byte {
		data, err := os.ReadFile("../testdata/orders/bad/" + file)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	huge := costlyOrder("ORD-20261129-HUGE-1", 1_048_000)
	produceRaw(t, p.brokers,
		&kgo.Record{Topic: p.topic, Key: []byte("CUST-00007"), Value: bad("decode-truncated.json")},
		&kgo.Record{Topic: p.topic, Key: []byte("CUST-00007"), Value: bad("decode-raw-control-character.json")},
		&kgo.Record{Topic: p.topic, Key: []byte("CUST-00008"), Value: bad("validate-subtotal-mismatch.json")},
		&kgo.Record{Topic: p.topic, Key: []byte("CUST-00042"), Value: costlyOrder("ORD-20261129-TRACED-1", 0),
			Headers: []kgo.RecordHeader{{Key: "trace-id", Value: []byte("4bf92f35")}}},
	)
	produceRaw(t, p.brokers, &kgo.Record{Topic: p.topic, Key: []byte("CUST-00001"), Value: huge})

	c := p.startConsumer()
	p.waitCaughtUp(conn, 2*time.Minute, c)
	s := c.stop(t)

	// What each record of the orders topic became: "" stored, else its
	// dead-letter class.
	source := map[coords]testenv.Record{}
	class := map[coords]string{}
	count := map[string]int64{}
	for _, r := range testenv.Records(t, p.topic) {
		at := coords{r.Partition, r.Offset}
		source[at] = r
		var o order.Order
		switch err := order.DecodeAndValidate(r.Value, &o); {
		case err != nil:
			class[at] = order.ErrorClass(err)
		case o.TotalAmount >= 4000:
			class[at] = order.ClassStore
		}
		count[class[at]]++
	}
	if count["decode"] != 2 || count["validate"] != 1 || count["store"] < 10 {
		t.Fatalf("classes of the source records: %v", count)
	}
	for _, k := range []string{"decode", "validate", "store"} {
		if s.DeadLettered[k] != count[k] {
			t.Errorf("consumer dead-lettered %v, want %v", s.DeadLettered, count)
		}
	}
	dead := testenv.Records(t, dlq)
	t.Logf("source records by class: %v; %d dead letters", count, len(dead))
	if int64(len(dead)) != count["decode"]+count["validate"]+count["store"] {
		t.Fatalf("%d dead letters, want %v", len(dead), count)
	}

	// inspect lists exactly the dead letters, with every header.
	lines, _ := p.inspect()
	if len(lines) != len(dead) {
		t.Fatalf("dlq inspect lists %d dead letters, the topic holds %d", len(lines), len(dead))
	}
	byDLQ := map[coords]inspectLine{}
	for _, l := range lines {
		byDLQ[coords{l.Partition, l.Offset}] = l
	}
	var failedFirst, failedLast time.Time
	markers := 0
	for _, d := range dead {
		l, ok := byDLQ[coords{d.Partition, d.Offset}]
		if !ok {
			t.Errorf("dead letter %d@%d not listed", d.Partition, d.Offset)
			continue
		}
		at := coords{l.Source.Partition, l.Source.Offset}
		orig, ok := source[at]
		if !ok || l.Source.Topic != p.topic {
			t.Errorf("dead letter %d@%d names source %s/%d@%d, which is not a record of %s", d.Partition, d.Offset,
				l.Source.Topic, at.partition, at.offset, p.topic)
			continue
		}
		if l.Class != class[at] || l.Reason == "" || l.Group != p.group || !maps.Equal(l.Headers, d.Headers) ||
			l.FailedAt != d.Headers["foodpipe-failed-at"] || l.Key != string(orig.Key) {
			t.Errorf("dead letter %d@%d: listed %+v\nwant class %q, group %s, headers %v", d.Partition, d.Offset, l, class[at], p.group, d.Headers)
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
			sum := sha256.Sum256(orig.Value)
			if l.OriginalSize != int64(len(orig.Value)) || l.OriginalSHA256 != hex.EncodeToString(sum[:]) || l.ValueBytes != 0 {
				t.Errorf("marker %+v, want the original's size %d and digest", l, len(orig.Value))
			}
			continue
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
	if markers != 1 {
		t.Errorf("%d markers listed, want the huge order's", markers)
	}

	// Filters.
	if lines, _ = p.inspect("--class", "store"); int64(len(lines)) != count["store"] {
		t.Errorf("--class store lists %d, want %d", len(lines), count["store"])
	}
	if lines, _ = p.inspect("--class", "decode,validate", "--since", "1h"); int64(len(lines)) != count["decode"]+count["validate"] {
		t.Errorf("--class decode,validate --since 1h lists %d, want %d", len(lines), count["decode"]+count["validate"])
	}
	if lines, _ = p.inspect("--since", failedFirst.Format(time.RFC3339Nano)); len(lines) != len(dead) {
		t.Errorf("--since the first failure lists %d, want all %d", len(lines), len(dead))
	}
	if lines, _ = p.inspect("--since", failedLast.Add(time.Microsecond).Format(time.RFC3339Nano)); len(lines) != 0 {
		t.Errorf("--since after the last failure lists %d, want none", len(lines))
	}
	r := run(t, nil, "dlq", "inspect", p.brokersFlag(), "--topic", p.topic)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("%d of %d dead letters shown", len(dead), len(dead))) ||
		!strings.Contains(r.stdout, fmt.Sprintf("(marker: the original is %d bytes", len(huge))) ||
		!strings.Contains(r.stdout, "DLQ OFFSET") {
		t.Errorf("dlq inspect table:\n%s", r)
	}

	// A dry run counts and changes nothing.
	group := testenv.Name(t, "replay")
	before := testenv.EndOffsetsAt(t, p.brokers, p.topic)
	toReplay := count["store"] - 1 // not the marker
	rs := p.replay("--class", "store", "--dry-run", "--replay-group", group)
	if !rs.DryRun || rs.Read != int64(len(dead)) || rs.Replayed != toReplay || rs.Skipped["marker"] != 1 ||
		rs.OtherClasses != count["decode"]+count["validate"] {
		t.Errorf("dry run %+v, want %d to replay, 1 marker, %d of other classes", rs, toReplay, count["decode"]+count["validate"])
	}
	if after := testenv.EndOffsetsAt(t, p.brokers, p.topic); !maps.Equal(after, before) {
		t.Errorf("a dry run produced: end offsets %v, then %v", before, after)
	}
	if got := committedIn(t, p, group+".store", dlq); len(got) != 0 {
		t.Errorf("a dry run committed %v", got)
	}

	// The cause is fixed: replay the store dead letters.
	if _, err := conn.Exec(context.Background(), "ALTER TABLE orders DROP CONSTRAINT only_small_orders"); err != nil {
		t.Fatal(err)
	}
	rs = p.replay("--class", "store", "--replay-group", group)
	bySource := map[int32]int64{}
	for at, c := range class {
		if c == "store" && len(source[at].Value) != len(huge) {
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
	// Exactly those, byte for byte, each in its original partition.
	want := map[string]testenv.Record{}
	for at, c := range class {
		if r := source[at]; c == "store" && len(r.Value) != len(huge) {
			want[string(r.Value)] = r
		}
	}
	var replayed int64
	for _, r := range testenv.Records(t, p.topic) {
		if r.Offset < before[r.Partition] {
			continue
		}
		replayed++
		o, ok := want[string(r.Value)]
		if !ok {
			t.Errorf("replayed record %d@%d is not one of the store dead letters: %.80q", r.Partition, r.Offset, r.Value)
			continue
		}
		delete(want, string(r.Value))
		if string(r.Key) != string(o.Key) || r.Partition != o.Partition || !maps.Equal(r.Headers, o.Headers) {
			t.Errorf("replayed %d@%d: key %q, headers %v; the original %d@%d: key %q, headers %v",
				r.Partition, r.Offset, r.Key, r.Headers, o.Partition, o.Offset, o.Key, o.Headers)
		}
	}
	if replayed != toReplay || len(want) != 0 {
		t.Errorf("%d records replayed to %s, want %d; %d store dead letters missing", replayed, p.topic, toReplay, len(want))
	}
	dlqEnd := testenv.EndOffsetsAt(t, p.brokers, dlq)
	if got := committedIn(t, p, group+".store", dlq); !endsEqual(got, dlqEnd) {
		t.Errorf("replay progress %v, want the dead-letter topic's end %v", got, dlqEnd)
	}

	// A second replay sends nothing.
	after := testenv.EndOffsetsAt(t, p.brokers, p.topic)
	if rs = p.replay("--class", "store", "--replay-group", group); rs.Read != 0 || rs.Replayed != 0 {
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
	if rows, ids := p.count(conn), p.distinctIDs(conn); rows != count[""]+toReplay || ids != rows {
		t.Errorf("%d rows (%d ids), want every valid order but the huge one: %d", rows, ids, count[""]+toReplay)
	}

	// Every class: the store ones were replayed before, the others go now;
	// and then nothing is left.
	rs = p.replay("--replay-group", group)
	if rs.Read != int64(len(dead)) || rs.Earlier != count["store"] || rs.Replayed != count["decode"]+count["validate"] {
		t.Errorf("replay of every class %+v, want %d read, %d replayed before, %d replayed", rs, len(dead), count["store"],
			count["decode"]+count["validate"])
	}
	if rs = p.replay("--replay-group", group); rs.Read != 0 || rs.Replayed != 0 {
		t.Errorf("replay of every class, again: %+v, want nothing", rs)
	}
}
