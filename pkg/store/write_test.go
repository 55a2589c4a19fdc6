package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

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
