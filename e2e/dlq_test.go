package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/order"
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
