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

	want := map[string]order.Order{}
	for _, r := range testenv.Records(t, p.topic) {
		var o order.Order
		if err := order.DecodeAndValidate(r.Value, &o); err != nil {
			t.Fatal(err)
		}
		o.RawItems = append([]byte(nil), o.RawItems...)
		want[o.OrderID] = o
	}
	rows, err := conn.Query(context.Background(), `
		SELECT order_id, customer_id, customer_name, customer_email, items::text, total_amount::text,
		       status, created_at, processed_at
		FROM orders`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
		var id, cust, name, email, items, total, status string
		var created, processed time.Time
		if err := rows.Scan(&id, &cust, &name, &email, &items, &total, &status, &created, &processed); err != nil {
			t.Fatal(err)
		}
		w, ok := want[id]
		if !ok {
			t.Fatalf("row %s was never produced", id)
		}
		if cust != w.CustomerID || name != w.CustomerName || email != w.CustomerEmail || status != w.Status {
			t.Errorf("%s: got %q %q %q %q, want %q %q %q %q", id, cust, name, email, status, w.CustomerID, w.CustomerName, w.CustomerEmail, w.Status)
		}
		if total != w.TotalAmount.String() {
			t.Errorf("%s: total %s, want %s", id, total, w.TotalAmount)
		}
		if !created.Equal(w.CreatedAt) {
			t.Errorf("%s: created_at %v, want %v (microseconds kept)", id, created, w.CreatedAt)
		}
		if processed.Before(created) {
			t.Errorf("%s: processed_at %v before created_at %v", id, processed, created)
		}
		var gotItems, wantItems []map[string]any
		if err := json.Unmarshal([]byte(items), &gotItems); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(w.RawItems, &wantItems); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(gotItems) != fmt.Sprint(wantItems) {
			t.Errorf("%s: items %s, want %s", id, items, w.RawItems)
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

	type poison struct {
		name, class string
		value       []byte
	}
	var bad []poison
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
		bad = append(bad, poison{filepath.Base(f), class, data})
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
		poison{"non-utf8", "decode", []byte("\xff\xfe{\"order_id\":1}")},
		poison{"null value", "decode", nil},
		poison{"json array", "decode", []byte(`[1,2,3]`)},
		poison{"json string", "decode", []byte(`"an order"`)},
		// Valid to foodpipe, refused by PostgreSQL: a number jsonb cannot hold.
		poison{"db rejects", "store", bytes.Replace(withID("ORD-20261127-DBREJECT-1", nil),
			[]byte(`"item_id":`), []byte(`"calories":1e200000,"item_id":`), 1)},
	)

	// Interleave 300 valid orders with the bad records, on one key so they
	// share a partition and batch.
	var recs []*kgo.Record
	wantValid := map[string]bool{}
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
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()

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
		if !bytes.Equal(d.Value, b.value) || string(d.Key) != "CUST-00042" {
			t.Errorf("%s: dead letter bytes changed", b.name)
		}
		h := d.Headers
		if h["foodpipe-error-class"] != b.class {
			t.Errorf("%s: class %q, want %q (error %q)", b.name, h["foodpipe-error-class"], b.class, h["foodpipe-error"])
		}
		if h["foodpipe-error"] == "" || strings.Contains(h["foodpipe-error"], "\n") {
			t.Errorf("%s: error header %q", b.name, h["foodpipe-error"])
		}
		if h["foodpipe-source-topic"] != p.topic || h["foodpipe-source-partition"] == "" || h["foodpipe-source-offset"] == "" ||
			h["foodpipe-source-timestamp"] == "" || h["foodpipe-group"] != p.group || h["foodpipe-failed-at"] == "" {
			t.Errorf("%s: headers %v", b.name, h)
		}
	}
	if got := s.DeadLettered["decode"] + s.DeadLettered["validate"] + s.DeadLettered["store"]; got != int64(len(bad)) {
		t.Errorf("summary counts %v dead letters, want %d", s.DeadLettered, len(bad))
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
