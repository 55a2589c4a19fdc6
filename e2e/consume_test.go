package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestConsumeStoresEveryColumn(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	p.produce(2000)
	c := p.startConsumer()
	conn := p.db()
	p.waitCaughtUp(conn, 2*time.Minute, c)
	s := c.stop(t)
	if s.Stored != 2000 || s.Duplicates != 0 || len(s.DeadLettered) != 0 {
		t.Errorf("summary %+v, want 2000 stored", s)
	}

	// What was produced, read by a decoder that is not foodpipe's:
	// encoding/json, numbers kept as their text.
	type wire struct {
		OrderID       string            `json:"order_id"`
		CustomerID    string            `json:"customer_id"`
		CustomerName  string            `json:"customer_name"`
		CustomerEmail string            `json:"customer_email"`
		Items         []json.RawMessage `json:"items"`
		TotalAmount   json.Number       `json:"total_amount"`
		Status        string            `json:"status"`
		CreatedAt     string            `json:"created_at"`
	}
	want := map[string]wire{}
	for _, r := range testenv.Records(t, p.topic) {
		var w wire
		dec := json.NewDecoder(bytes.NewReader(r.Value))
		dec.UseNumber()
		if err := dec.Decode(&w); err != nil {
			t.Fatal(err)
		}
		want[w.OrderID] = w
	}
	rows, err := conn.Query(context.Background(), `
		SELECT order_id, customer_id, customer_name, customer_email, items::text, total_amount::text,
		       status, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), created_at, processed_at
		FROM orders`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
		var id, cust, name, email, items, total, status, createdText string
		var created, processed time.Time
		if err := rows.Scan(&id, &cust, &name, &email, &items, &total, &status, &createdText, &created, &processed); err != nil {
			t.Fatal(err)
		}
		w, ok := want[id]
		if !ok {
			t.Fatalf("row %s was never produced", id)
		}
		if cust != w.CustomerID || name != w.CustomerName || email != w.CustomerEmail || status != w.Status {
			t.Errorf("%s: got %q %q %q %q, want %q %q %q %q", id, cust, name, email, status, w.CustomerID, w.CustomerName, w.CustomerEmail, w.Status)
		}
		// Money as exact decimal text: 21.98 stored as 21.980 or 21.97999
		// would show.
		if total != w.TotalAmount.String() {
			t.Errorf("%s: total %s, want %s", id, total, w.TotalAmount)
		}
		if createdText != w.CreatedAt {
			t.Errorf("%s: created_at %s, want %s (microseconds kept)", id, createdText, w.CreatedAt)
		}
		if processed.Before(created) {
			t.Errorf("%s: processed_at %v before created_at %v", id, processed, created)
		}
		// Items as JSON values, numbers as their text: jsonb may reorder
		// keys and respace, but a price 10.99 stored as 10.990 would show.
		if got, want := jsonValue(t, []byte(items)), jsonValue(t, mustJSON(t, w.Items)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: items %s, want %v", id, items, want)
		}
	}
	if n != len(want) {
		t.Errorf("%d rows, %d orders produced", n, len(want))
	}
}

// TestConsumePoison mixes valid orders with every kind of bad record: each
// bad one lands in the dead-letter topic, untouched and with the right
// headers; every valid one is stored; the consumer keeps running.
func TestConsumePoison(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	bad, withID := badRecords(t)
	wantValid, source := producePoisonMix(t, p, bad, withID)

	c := p.startConsumer("--batch-rows", "100")
	conn := p.db()
	p.waitCaughtUp(conn, 2*time.Minute, c)
	if c.exited() {
		t.Fatalf("consumer exited on poison:\n%s", c.stderr.String())
	}
	s := c.stop(t)

	if got := p.count(conn); got != int64(len(wantValid)) {
		t.Errorf("%d rows stored, want %d", got, len(wantValid))
	}
	dead := testenv.Records(t, p.topic+".dlq")
	if len(dead) != len(bad) {
		t.Errorf("dead-letter topic holds %d records, want %d", len(dead), len(bad))
	}
	byCase := map[string]testenv.Record{}
	for _, d := range dead {
		byCase[d.Headers["test-case"]] = d
	}
	for _, b := range bad {
		d, ok := byCase[b.name]
		if !ok {
			t.Errorf("%s: not in the dead-letter topic", b.name)
			continue
		}
		checkPoisonDeadLetter(t, p, b, d, source[b.name])
	}
	if got := s.DeadLettered["decode"] + s.DeadLettered["validate"] + s.DeadLettered["store"]; got != int64(len(bad)) {
		t.Errorf("summary counts %v dead letters, want %d", s.DeadLettered, len(bad))
	}
}

// badRecord is one bad record of TestConsumePoison: a name for messages,
// the dead-letter class it must get, and its bytes.
type badRecord struct {
	name, class string
	value       []byte
}

// badRecords returns every bad-record fixture, and bad records made here,
// with a function that makes a valid order of the given id from the valid
// fixture (edited by edit, if not nil).
func badRecords(t *testing.T) ([]badRecord, func(id string, edit func(*order.Order)) []byte) {
	t.Helper()
	var bad []badRecord
	files, err := filepath.Glob("../testdata/orders/bad/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("bad-record fixtures: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		class, _, _ := strings.Cut(filepath.Base(f), "-")
		bad = append(bad, badRecord{filepath.Base(f), class, data})
	}
	valid, err := os.ReadFile("../testdata/orders/valid.json")
	if err != nil {
		t.Fatal(err)
	}
	var tmpl order.Order
	if err := order.DecodeAndValidate(valid, &tmpl); err != nil {
		t.Fatal(err)
	}
	tmpl.RawItems = nil
	withID := func(id string, edit func(*order.Order)) []byte {
		o := tmpl
		o.Items = append([]order.Item(nil), tmpl.Items...)
		o.OrderID = id
		if edit != nil {
			edit(&o)
		}
		return order.AppendJSON(nil, &o)
	}
	bad = append(bad,
		badRecord{"non-utf8", "decode", []byte("\xff\xfe{\"order_id\":1}")},
		badRecord{"null value", "decode", nil},
		badRecord{"json array", "decode", []byte(`[1,2,3]`)},
		badRecord{"json string", "decode", []byte(`"an order"`)},
		// Valid to foodpipe, refused by PostgreSQL: a number jsonb cannot hold.
		badRecord{"db rejects", "store", bytes.Replace(withID("ORD-20261127-DBREJECT-1", nil),
			[]byte(`"item_id":`), []byte(`"calories":1e200000,"item_id":`), 1)},
	)
	return bad, withID
}

// producePoisonMix produces 300 valid orders interleaved with the bad
// records, on one key so they share a partition and batch. It returns the
// valid orders' ids, and where each bad record landed, by name, as the
// broker acknowledged it: what its dead letter's source headers must say.
func producePoisonMix(t *testing.T, p *pipeline, bad []badRecord, withID func(string, func(*order.Order)) []byte) (
	wantValid map[string]bool, source map[string]*kgo.Record) {
	t.Helper()
	var recs []*kgo.Record
	wantValid = map[string]bool{}
	for i := range 300 {
		id := fmt.Sprintf("ORD-20261127-POISON-%d", i)
		wantValid[id] = true
		recs = append(recs, &kgo.Record{Topic: p.topic, Key: []byte("CUST-00042"), Value: withID(id, nil)})
		if i < len(bad) {
			recs = append(recs, &kgo.Record{Topic: p.topic, Key: []byte("CUST-00042"), Value: bad[i].value,
				Headers: []kgo.RecordHeader{{Key: "test-case", Value: []byte(bad[i].name)}}})
		}
	}
	if len(bad) > 300 {
		t.Fatalf("%d bad records, the test interleaves at most 300", len(bad))
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(testenv.Brokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	results := cl.ProduceSync(t.Context(), recs...)
	if err := results.FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	source = map[string]*kgo.Record{}
	for _, r := range results {
		for _, h := range r.Record.Headers {
			if h.Key == "test-case" {
				source[string(h.Value)] = r.Record
			}
		}
	}
	return wantValid, source
}

// checkPoisonDeadLetter: the dead letter d of the bad record b holds its
// bytes and key, its class, its own cause as the reason, and headers that
// name src, where it was read, and when it failed.
func checkPoisonDeadLetter(t *testing.T, p *pipeline, b badRecord, d testenv.Record, src *kgo.Record) {
	t.Helper()
	if !bytes.Equal(d.Value, b.value) || string(d.Key) != "CUST-00042" {
		t.Errorf("%s: dead letter bytes changed", b.name)
	}
	h := d.Headers
	if h["foodpipe-error-class"] != b.class {
		t.Errorf("%s: class %q, want %q (error %q)", b.name, h["foodpipe-error-class"], b.class, h["foodpipe-error"])
	}
	// The reason is the record's own cause: for what foodpipe refuses,
	// exactly what the validator says of these bytes; for what
	// PostgreSQL refuses, the server's SQLSTATE.
	reason := h["foodpipe-error"]
	if b.class == "store" {
		if !strings.Contains(reason, "SQLSTATE 22") {
			t.Errorf("%s: reason %q, want PostgreSQL's data exception", b.name, reason)
		}
	} else {
		var o order.Order
		cause := order.DecodeAndValidate(b.value, &o)
		if cause == nil || reason != cause.Error() || order.ErrorClass(cause) != b.class {
			t.Errorf("%s: reason %q, the record's cause is %v", b.name, reason, cause)
		}
	}
	// A fixture named after a field (decode-created_at-…) has a reason
	// that names it.
	if parts := strings.SplitN(strings.TrimSuffix(b.name, ".json"), "-", 3); len(parts) == 3 && strings.Contains(parts[1], "_") &&
		!strings.Contains(reason, parts[1]) {
		t.Errorf("%s: reason %q does not name %s", b.name, reason, parts[1])
	}
	if h["foodpipe-source-topic"] != p.topic || h["foodpipe-source-partition"] != fmt.Sprint(src.Partition) ||
		h["foodpipe-source-offset"] != fmt.Sprint(src.Offset) || h["foodpipe-group"] != p.group {
		t.Errorf("%s: source headers %v, the record is %s/%d@%d", b.name, h, p.topic, src.Partition, src.Offset)
	}
	if ts, err := time.Parse(time.RFC3339Nano, h["foodpipe-source-timestamp"]); err != nil || !ts.Equal(src.Timestamp) {
		t.Errorf("%s: source timestamp %q, the record's is %v", b.name, h["foodpipe-source-timestamp"], src.Timestamp)
	}
	if at, err := time.Parse(time.RFC3339Nano, h["foodpipe-failed-at"]); err != nil || at.Before(src.Timestamp) || time.Since(at) > time.Hour {
		t.Errorf("%s: failed-at %q is not a time after the record's", b.name, h["foodpipe-failed-at"])
	}
}

// TestConsumeMemoryBounded drains a backlog of 1,000,000 orders and reads
// the consumer's peak resident set (VmHWM) from /proc: it must stay under
// 200 MB, whatever the backlog.
func TestConsumeMemoryBounded(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	const n = 1_000_000
	p.produce(n)
	bin, err := plainBinary()
	if err != nil {
		t.Fatal(err)
	}
	p.bin = bin // the race detector's own memory would swamp the figure
	c := p.startConsumer("--log-level", "info")
	conn := p.db()
	p.waitCaughtUp(conn, 10*time.Minute, c)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var peakKB int64
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &peakKB)
		}
	}
	s := c.stop(t)
	if s.Stored != n {
		t.Errorf("stored %d, want %d", s.Stored, n)
	}
	t.Logf("peak RSS while draining %d orders: %d MB", n, peakKB/1024)
	if peakKB == 0 || peakKB > 200*1024 {
		t.Errorf("peak RSS %d kB, want under 200 MB", peakKB)
	}
}

// TestConsumeStopsOnPermanentErrors: a schema that is not migrated is
// refused at start, and an error no retry can fix (the table dropped under
// a running consumer) ends it with exit 1 and one line, instead of a retry
// loop that hides it.
func TestConsumeStopsOnPermanentErrors(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.Schema(t) // empty: never migrated
	r := run(t, nil, "consume", brokersFlag(t), "--database-url", dsn, "--topic", testenv.Name(t, "orders"))
	if r.code != 1 || !strings.Contains(errorLine(t, r), "run foodpipe db migrate") {
		t.Errorf("unmigrated schema: want exit 1 asking for db migrate\n%s", r)
	}

	p := newPipeline(t)
	c := p.startConsumer()
	c.stderr.wait(t, time.Minute)
	conn := p.db()
	if _, err := conn.Exec(context.Background(), "DROP TABLE orders"); err != nil {
		t.Fatal(err)
	}
	p.produce(10)
	select {
	case err := <-c.done:
		c.done <- err
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("consumer exit: %v, want exit code 1\n%s", err, c.stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("consumer still running a minute after its table was dropped\n%s", c.stderr.String())
	}
	if !strings.Contains(c.stderr.String(), `foodpipe: store batch: not retryable: `) {
		t.Errorf("no one-line permanent error:\n%s", c.stderr.String())
	}
}

// jsonValue decodes data with encoding/json, numbers kept as their text.
func jsonValue(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	return v
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
