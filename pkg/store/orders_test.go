package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/order"
)

// rawRecord is an order as another producer might send it: items with an
// unknown field, a nested object, escapes, money with one decimal and
// spacing that jsonb normalises away.
const rawRecord = `{"order_id":"ORD-20261127-RAW-1","customer_id":"CUST-00007",` +
	`"customer_name":"Zoë O'Brien","customer_email":"zoe.obrien.7@example.com",` +
	`"items":[ {"item_id":"ITEM-015","name":"Milk\"shake\" \u00e9","quantity":3,"price":4.9,"subtotal":14.70,` +
	`"extra":{"note":"no ice","tags":["a","b"],"n":1.50}} ,` +
	`{"item_id":"ITEM-001","name":"Classic Burger","quantity":1,"price":8.99,"subtotal":8.99}],` +
	`"total_amount":23.69,"status":"completed","created_at":"2026-01-02T03:04:05.000007Z"}`

type storedRow struct {
	OrderID, CustomerID, CustomerName, CustomerEmail string
	Items                                            []byte
	Total                                            string
	Status                                           string
	CreatedAt                                        time.Time
	ProcessedAt                                      time.Time
}

func readRow(t *testing.T, db *DB, id string) storedRow {
	t.Helper()
	var r storedRow
	err := db.pool.QueryRow(t.Context(), `SELECT order_id, customer_id, customer_name, customer_email, items::text,
		total_amount::text, status, created_at, processed_at FROM orders WHERE order_id = $1`, id).
		Scan(&r.OrderID, &r.CustomerID, &r.CustomerName, &r.CustomerEmail, &r.Items, &r.Total, &r.Status, &r.CreatedAt, &r.ProcessedAt)
	if err != nil {
		t.Fatalf("read %s: %v", id, err)
	}
	return r
}

// parseJSON parses JSON keeping numbers as their text, so money compares
// exactly.
func parseJSON(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("parse %s: %v", b, err)
	}
	return v
}

func TestWriteBatchRoundTrip(t *testing.T) {
	t.Parallel()
	db := openMigrated(t, Options{})
	ctx := t.Context()

	orders := append(genOrders(t, 7, 50), decoded(t, rawRecord))
	// An instant with nanoseconds: the column keeps microseconds, truncated.
	orders[0].CreatedAt = time.Date(2030, 5, 6, 7, 8, 9, 987654321, time.UTC)

	var before time.Time
	if err := db.pool.QueryRow(ctx, "SELECT now()").Scan(&before); err != nil {
		t.Fatal(err)
	}
	res, err := db.WriteBatch(ctx, "g", orders, []Offset{{Topic: "food-orders", Partition: 0, Expected: -1, Next: 51}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != len(orders) || res.Duplicates != 0 || len(res.Rejected) != 0 {
		t.Fatalf("result = %+v, want %d inserted", res, len(orders))
	}
	var after time.Time
	if err := db.pool.QueryRow(ctx, "SELECT now()").Scan(&after); err != nil {
		t.Fatal(err)
	}

	for i, o := range orders {
		got := readRow(t, db, o.OrderID)
		want := storedRow{
			OrderID: o.OrderID, CustomerID: o.CustomerID, CustomerName: o.CustomerName, CustomerEmail: o.CustomerEmail,
			Total: o.TotalAmount.String(), Status: o.Status, CreatedAt: o.CreatedAt.Truncate(time.Microsecond),
		}
		wantItems := o.RawItems
		if wantItems == nil {
			wantItems = order.AppendItemsJSON(nil, o.Items)
		}
		if g, w := parseJSON(t, got.Items), parseJSON(t, wantItems); !reflect.DeepEqual(g, w) {
			t.Errorf("order %d items:\n got %s\nwant %s", i, got.Items, wantItems)
		}
		if !got.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("order %d created_at = %s, want %s", i, got.CreatedAt.UTC().Format(time.RFC3339Nano), want.CreatedAt.Format(time.RFC3339Nano))
		}
		if got.ProcessedAt.Before(before) || got.ProcessedAt.After(after) {
			t.Errorf("order %d processed_at = %s, want between %s and %s", i, got.ProcessedAt, before, after)
		}
		got.Items, got.CreatedAt, got.ProcessedAt = nil, time.Time{}, time.Time{}
		want.CreatedAt = time.Time{}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("order %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
	// The decoded order's unknown fields and item order survive.
	raw := readRow(t, db, "ORD-20261127-RAW-1")
	if !bytes.Contains(raw.Items, []byte(`"extra": {"n": 1.50, "note": "no ice", "tags": ["a", "b"]}`)) ||
		bytes.Index(raw.Items, []byte("ITEM-015")) > bytes.Index(raw.Items, []byte("ITEM-001")) {
		t.Errorf("raw items stored as %s", raw.Items)
	}
}

// TestNumericEncoding stores amounts across the whole range of Cents in an
// unconstrained numeric column and reads them back as text.
func TestNumericEncoding(t *testing.T) {
	t.Parallel()
	db := openMigrated(t, Options{})
	ctx := t.Context()
	if err := db.CreateOrdersLike(ctx, "wide"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, `ALTER TABLE wide DROP CONSTRAINT orders_total_amount_check, ALTER COLUMN total_amount TYPE numeric`); err != nil {
		t.Fatal(err)
	}
	amounts := []order.Cents{0, 1, 5, 10, 99, 100, 101, 2198, 9999, 10000, 10001, 1000000, 99990000, 100000000,
		123456789, 9999999999, 10000000000, 1234567890123, -1, -100, -2198, math.MaxInt64, math.MinInt64}
	orders := genOrders(t, 1, len(amounts))
	for i, c := range amounts {
		orders[i].TotalAmount = c
	}
	n, err := db.RawCopy(ctx, "wide", orders)
	if err != nil || n != int64(len(orders)) {
		t.Fatalf("RawCopy = %d, %v", n, err)
	}
	for i, c := range amounts {
		var got string
		if err := db.pool.QueryRow(ctx, "SELECT total_amount::text FROM wide WHERE order_id = $1", orders[i].OrderID).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := c.String(); got != want {
			t.Errorf("cents %d stored as %s, want %s", int64(c), got, want)
		}
	}
}

func TestWriteBatchDuplicates(t *testing.T) {
	t.Parallel()
	db := openMigrated(t, Options{})
	ctx := t.Context()
	o := genOrders(t, 3, 6)
	type batch struct {
		orders         []*order.Order
		inserted, dups int
	}
	batches := []batch{
		{orders: []*order.Order{o[0], o[1]}, inserted: 2},
		// Repeated within the batch, and already stored.
		{orders: []*order.Order{o[2], o[2], o[1], o[3], o[2]}, inserted: 2, dups: 3},
		// Only duplicates.
		{orders: []*order.Order{o[0], o[3]}, dups: 2},
		// A re-produced order with other content: the first one stays.
		{orders: []*order.Order{o[4], changed(o[0])}, inserted: 1, dups: 1},
		{orders: []*order.Order{o[5]}, inserted: 1},
	}
	next := int64(-1)
	for i, b := range batches {
		off := Offset{Topic: "food-orders", Partition: 1, Expected: next, Next: next + 10}
		if next < 0 {
			off.Next = 10
		}
		res, err := db.WriteBatch(ctx, "g", b.orders, []Offset{off}, nil)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		next = off.Next
		if res.Inserted != b.inserted || res.Duplicates != b.dups || len(res.Rejected) != 0 {
			t.Errorf("batch %d: result %+v, want %d inserted, %d duplicates", i, res, b.inserted, b.dups)
		}
	}
	if got := storedCount(t, db); got != 6 {
		t.Errorf("stored %d rows, want 6", got)
	}
	if got := readRow(t, db, o[0].OrderID); got.CustomerName != o[0].CustomerName {
		t.Errorf("re-produced order overwrote the stored one: %+v", got)
	}
	if got := loadOffsets(t, db, "g", "food-orders"); got[1] != next {
		t.Errorf("offsets = %v, want partition 1 at %d", got, next)
	}
}

func changed(o *order.Order) *order.Order {
	c := *o
	c.CustomerName = "Someone Else"
	return &c
}

// TestWriteBatchRejectsContent mixes good orders with orders PostgreSQL
// refuses: good ones are stored, bad ones reported with their index and
// reason, offsets advanced, all in one batch.
func TestWriteBatchRejectsContent(t *testing.T) {
	t.Parallel()
	type bad struct {
		name   string
		spoil  func(o *order.Order)
		reason []string // substrings of the Reason
	}
	bads := []bad{
		{"total too large", func(o *order.Order) { o.TotalAmount = order.MaxTotal }, []string{"total_amount", "numeric field overflow", "22003"}},
		{"negative total", func(o *order.Order) { o.TotalAmount = -150 }, []string{"orders_total_amount_check", "23514"}},
		{"zero total", func(o *order.Order) { o.TotalAmount = 0 }, []string{"23514"}},
		{"name too long", func(o *order.Order) { o.CustomerName = strings.Repeat("é", 101) }, []string{"customer_name", "too long", "22001"}},
		{"id too long", func(o *order.Order) { o.OrderID += strings.Repeat("x", 50) }, []string{"order_id", "22001"}},
		{"huge number in items", func(o *order.Order) {
			o.RawItems = []byte(`[{"item_id":"ITEM-001","name":"Classic Burger","quantity":1,"price":8.99,"subtotal":8.99,"x":1e200000}]`)
		}, []string{"items", "22003"}},
		{"invalid items JSON", func(o *order.Order) { o.RawItems = []byte(`[{"item_id":`) }, []string{"items", "22P02"}},
		{"NUL in items", func(o *order.Order) {
			o.RawItems = []byte(`[{"item_id":"ITEM-001","name":"a\u0000b","quantity":1,"price":8.99,"subtotal":8.99}]`)
		}, []string{"items", "22P05"}},
		{"NUL in text", func(o *order.Order) { o.CustomerEmail = "a\x00b@example.com" }, []string{"customer_email", "0x00", "22021"}},
		{"invalid UTF-8", func(o *order.Order) { o.Status = "pend\xffing" }, []string{"status", "22021"}},
		{"time out of range", func(o *order.Order) { o.CreatedAt = time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC) }, []string{"created_at", "22008"}},
	}
	// Positions of the bad orders in each layout of the batch.
	layouts := map[string]func(n int) []int{
		"every third": func(n int) []int {
			var out []int
			for i := 1; i < n; i += 3 {
				out = append(out, i)
			}
			return out
		},
		"first and last": func(n int) []int { return []int{0, n - 1} },
		"adjacent":       func(n int) []int { return []int{10, 11, 12, 13} },
		"all": func(n int) []int {
			out := make([]int, n)
			for i := range out {
				out[i] = i
			}
			return out
		},
	}
	for name, layout := range layouts {
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			db := openMigrated(t, Options{})
			ctx := t.Context()
			// A duplicate of a stored order, so that the slow path runs as well.
			stored := genOrders(t, 11, 1)
			if _, err := db.WriteBatch(ctx, "g", stored, nil, nil); err != nil {
				t.Fatal(err)
			}
			orders := genOrders(t, 12, 40)
			orders[20] = stored[0]
			badAt := layout(len(orders))
			wantReason := map[int][]string{}
			for k, i := range badAt {
				b := bads[k%len(bads)]
				if i == 20 {
					orders[i] = genOrders(t, 13, 1)[0]
				}
				b.spoil(orders[i])
				wantReason[i] = b.reason
			}
			res, err := db.WriteBatch(ctx, "g", orders, []Offset{{Topic: "t", Partition: 0, Expected: -1, Next: 40}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Rejected) != len(badAt) {
				t.Fatalf("rejected %+v, want indexes %v", res.Rejected, badAt)
			}
			for _, r := range res.Rejected {
				t.Logf("rejected %d: %s", r.Index, r.Reason)
			}
			for k, r := range res.Rejected {
				if r.Index != badAt[k] {
					t.Errorf("rejected[%d].Index = %d, want %d", k, r.Index, badAt[k])
				}
				for _, want := range wantReason[r.Index] {
					if !strings.Contains(r.Reason, want) {
						t.Errorf("order %d reason %q lacks %q", r.Index, r.Reason, want)
					}
				}
				if strings.ContainsAny(r.Reason, "\n\r") || !strings.Contains(r.Reason, "SQLSTATE") {
					t.Errorf("order %d reason %q: want one line with the SQLSTATE", r.Index, r.Reason)
				}
			}
			dup := 0
			if !contains(badAt, 20) {
				dup = 1
			}
			if want := len(orders) - len(badAt) - dup; res.Inserted != want || res.Duplicates != dup {
				t.Errorf("result %+v, want %d inserted, %d duplicates", res, want, dup)
			}
			if got, want := storedCount(t, db), int64(res.Inserted+1); got != want {
				t.Errorf("stored %d rows, want %d", got, want)
			}
			for i, o := range orders {
				var n int
				if err := db.pool.QueryRow(ctx, "SELECT count(*) FROM orders WHERE order_id = $1", o.OrderID).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if want := !contains(badAt, i); (n == 1) != want {
					t.Errorf("order %d stored = %v, want %v", i, n == 1, want)
				}
			}
			if got := loadOffsets(t, db, "g", "t"); got[0] != 40 {
				t.Errorf("offsets = %v, want partition 0 at 40", got)
			}
		})
	}
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// blockOn makes a WriteBatch of db wait: another transaction inserts the
// order id o without committing, so the batch's COPY waits for it at that
// row, after the offset check and some rows. It returns a function that
// rolls the blocker back.
func blockOn(t *testing.T, db *DB, o *order.Order) func() {
	t.Helper()
	ctx := t.Context()
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO orders (order_id, customer_id, customer_name, customer_email, items, total_amount, status, created_at)
		VALUES ($1, 'c', 'n', 'e@x', '[]', 1, 'pending', now())`, o.OrderID); err != nil {
		t.Fatal(err)
	}
	return func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }
}

// waitBlocked waits until the backend of application app waits for a lock
// and returns its pid.
func waitBlocked(t *testing.T, db *DB, app string) int32 {
	t.Helper()
	for range 500 {
		var pid int32
		err := db.pool.QueryRow(t.Context(), `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, app).Scan(&pid)
		if err == nil {
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no backend of %s ever waited for a lock", app)
	return 0
}

// TestWriteBatchInterrupted stops a batch mid-COPY: the backend is
// terminated, or the caller's context is canceled or times out. The error
// says whether to retry, and nothing of the batch is stored.
func TestWriteBatchInterrupted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		interrupt func(t *testing.T, admin *DB, pid int32, cancel context.CancelFunc)
		timeout   bool
		retryable bool
		is        error
	}{
		{"terminate backend", func(t *testing.T, admin *DB, pid int32, _ context.CancelFunc) {
			if _, err := admin.pool.Exec(t.Context(), "SELECT pg_terminate_backend($1)", pid); err != nil {
				t.Fatal(err)
			}
		}, false, true, nil},
		{"cancel query", func(t *testing.T, admin *DB, pid int32, _ context.CancelFunc) {
			if _, err := admin.pool.Exec(t.Context(), "SELECT pg_cancel_backend($1)", pid); err != nil {
				t.Fatal(err)
			}
		}, false, true, nil},
		{"context canceled", func(_ *testing.T, _ *DB, _ int32, cancel context.CancelFunc) { cancel() }, false, false, context.Canceled},
		{"context deadline", nil, true, true, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			dsn, _ := testenv.Schema(t)
			app := testenv.Name(t, "writer")
			admin := openDSN(t, dsn, Options{}, true)
			writer := openDSN(t, dsn, Options{AppName: app}, false)
			orders := genOrders(t, 5, 2000)
			release := blockOn(t, admin, orders[1500])
			defer release()

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.timeout {
				ctx, cancel = context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
			}
			done := make(chan error, 1)
			go func() {
				_, err := writer.WriteBatch(ctx, "g", orders, []Offset{{Topic: "t", Partition: 2, Expected: -1, Next: 2000}}, nil)
				done <- err
			}()
			if !tt.timeout {
				pid := waitBlocked(t, admin, app)
				tt.interrupt(t, admin, pid, cancel)
			}
			err := <-done
			release()
			if err == nil {
				t.Fatal("WriteBatch succeeded, want an error")
			}
			t.Logf("error: %v", err)
			if got := IsRetryable(err); got != tt.retryable {
				t.Errorf("IsRetryable(%v) = %v, want %v", err, got, tt.retryable)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if !strings.HasPrefix(err.Error(), "store orders: ") {
				t.Errorf("error %q does not start with \"store orders: \"", err)
			}
			if n := storedCount(t, admin); n != 0 {
				t.Errorf("%d rows stored, want none", n)
			}
			if got := loadOffsets(t, admin, "g", "t"); len(got) != 0 {
				t.Errorf("offsets %v stored, want none", got)
			}
			// The pool recovers: the same batch succeeds now.
			res, err := writer.WriteBatch(t.Context(), "g", orders, []Offset{{Topic: "t", Partition: 2, Expected: -1, Next: 2000}}, nil)
			if err != nil || res.Inserted != len(orders) {
				t.Fatalf("retry: %+v, %v", res, err)
			}
		})
	}
}

func TestIsRetryable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "57P03"}, true},
		{&pgconn.PgError{Code: "57014"}, true},
		{&pgconn.PgError{Code: "53300"}, true},
		{&pgconn.PgError{Code: "40001"}, true},
		{&pgconn.PgError{Code: "40P01"}, true},
		{&pgconn.PgError{Code: "25006"}, true},
		{&pgconn.PgError{Code: "42P01"}, false},
		{&pgconn.PgError{Code: "22001"}, false},
		{&pgconn.PgError{Code: "23505"}, false},
		{&pgconn.PgError{Code: "XX000"}, false},
		{describe(&pgconn.PgError{Code: "57P01"}), true},
		{io.ErrUnexpectedEOF, true},
		{context.DeadlineExceeded, true},
		{context.Canceled, false},
		{&FencedError{Partitions: []TopicPartition{{"t", 1}}}, false},
		{errors.New("store orders: order 3 is nil"), false},
	}
	for _, tt := range tests {
		if got := IsRetryable(tt.err); got != tt.want {
			t.Errorf("IsRetryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestWriteBatchRefusesBadArguments(t *testing.T) {
	t.Parallel()
	var db DB // no pool: every case fails before using it
	o := genOrders(t, 1, 1)
	tests := []struct {
		name    string
		orders  []*order.Order
		offsets []Offset
		want    string
	}{
		{"nil order", []*order.Order{nil}, nil, "order 0 is nil"},
		{"no topic", o, []Offset{{Expected: -1, Next: 1}}, "no topic"},
		{"negative partition", o, []Offset{{Topic: "t", Partition: -1, Expected: -1, Next: 1}}, "negative partition"},
		{"expected below -1", o, []Offset{{Topic: "t", Expected: -2, Next: 1}}, "expected -2"},
		{"next before expected", o, []Offset{{Topic: "t", Expected: 5, Next: 4}}, "next 4 before expected 5"},
		{"negative next", o, []Offset{{Topic: "t", Expected: -1, Next: -1}}, "next -1"},
		{"twice", o, []Offset{{Topic: "t", Expected: 1, Next: 2}, {Topic: "t", Expected: 2, Next: 3}}, "t/0 given twice"},
	}
	for _, tt := range tests {
		_, err := db.WriteBatch(t.Context(), "g", tt.orders, tt.offsets, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) || IsRetryable(err) {
			t.Errorf("%s: error %v, want one containing %q, not retryable", tt.name, err, tt.want)
		}
	}
}

// TestSlowPathAttempts pins down how much work the slow path costs: a
// duplicate sends the batch through the staging table once, and a refused
// row is cut out around the row the COPY error names instead of by
// bisection.
func TestSlowPathAttempts(t *testing.T) {
	t.Parallel()
	db := openMigrated(t, Options{})
	ctx := t.Context()
	stored := genOrders(t, 61, 1)
	if _, err := db.WriteBatch(ctx, "g", stored, nil, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		spoil    func(orders []*order.Order)
		attempts int
		rejected []int
		dups     int
	}{
		{"clean batch", func([]*order.Order) {}, 1, nil, 0},
		{"stored duplicate", func(o []*order.Order) { o[700] = stored[0] }, 2, nil, 1},
		{"duplicate within the batch", func(o []*order.Order) { o[1999] = o[3] }, 2, nil, 1},
		// Copy of all (fails), rows before it, it alone, rows after it.
		{"one refused row", func(o []*order.Order) { o[1234].CustomerName = strings.Repeat("x", 101) }, 4, []int{1234}, 0},
		{"refused first row", func(o []*order.Order) { o[0].TotalAmount = -1 }, 3, []int{0}, 0},
		// The first occurrence of an id is refused: the later, good one is
		// stored, not counted as its duplicate.
		{"refused row repeated later", func(o []*order.Order) {
			bad := *o[1500]
			bad.CustomerName = strings.Repeat("x", 101)
			o[100] = &bad
		}, 4, []int{100}, 0},
	}
	for i, tt := range tests {
		orders := genOrders(t, uint64(70+i), 2000)
		tt.spoil(orders)
		res, attempts, err := db.writeBatch(ctx, "g", orders, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var rejected []int
		for _, r := range res.Rejected {
			rejected = append(rejected, r.Index)
		}
		if attempts != tt.attempts || !reflect.DeepEqual(rejected, tt.rejected) || res.Duplicates != tt.dups ||
			res.Inserted != len(orders)-len(tt.rejected)-tt.dups {
			t.Errorf("%s: %d attempts, result %+v; want %d attempts, rejected %v, %d duplicates",
				tt.name, attempts, res, tt.attempts, tt.rejected, tt.dups)
		}
	}
}

// TestBeforeCommit: the hook sees the rejected orders while nothing is
// committed yet, its error rolls everything back, and a fenced batch never
// calls it.
func TestBeforeCommit(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.Schema(t)
	db := openDSN(t, dsn, Options{}, true)
	other := openDSN(t, dsn, Options{}, false)
	ctx := t.Context()
	errDLQ := errors.New("dead-letter topic unavailable")

	tests := []struct {
		name     string
		offset   Offset
		hookErr  error
		calls    int
		rejected []int
		stored   int64
		next     int64 // stored offset afterwards
	}{
		{"hook fails: nothing commits", Offset{Topic: "t", Expected: -1, Next: 10}, errDLQ, 1, []int{3}, 0, -1},
		{"hook succeeds: rows and offsets commit", Offset{Topic: "t", Expected: -1, Next: 10}, nil, 1, []int{3}, 9, 10},
		{"fenced: hook not called", Offset{Topic: "t", Expected: 5, Next: 20}, nil, 0, nil, 9, 10},
	}
	for _, tt := range tests {
		orders := genOrders(t, 90, 10)
		orders[3].CustomerName = strings.Repeat("x", 101)
		calls := 0
		var seen []int
		res, err := db.WriteBatch(ctx, "g", orders, []Offset{tt.offset}, func(rejected []Rejected) error {
			calls++
			for _, r := range rejected {
				seen = append(seen, r.Index)
			}
			// Not committed yet: another connection sees none of the batch.
			if n := storedCount(t, other); n != 0 {
				t.Errorf("%s: during the hook another connection sees %d rows", tt.name, n)
			}
			return tt.hookErr
		})
		if calls != tt.calls || !reflect.DeepEqual(seen, tt.rejected) {
			t.Errorf("%s: hook called %d times with rejected %v, want %d times with %v", tt.name, calls, seen, tt.calls, tt.rejected)
		}
		switch {
		case tt.hookErr != nil:
			if !errors.Is(err, tt.hookErr) || IsRetryable(err) {
				t.Errorf("%s: error %v, want the hook's, not retryable", tt.name, err)
			}
		case tt.calls == 0:
			var fe *FencedError
			if !errors.As(err, &fe) {
				t.Errorf("%s: error %v, want *FencedError", tt.name, err)
			}
		default:
			if err != nil || res.Inserted != 9 || len(res.Rejected) != 1 {
				t.Errorf("%s: %+v, %v", tt.name, res, err)
			}
		}
		if n := storedCount(t, other); n != tt.stored {
			t.Errorf("%s: %d rows stored, want %d", tt.name, n, tt.stored)
		}
		next, ok := loadOffsets(t, other, "g", "t")[0]
		if !ok {
			next = -1
		}
		if next != tt.next {
			t.Errorf("%s: stored offset %d, want %d", tt.name, next, tt.next)
		}
	}
}
