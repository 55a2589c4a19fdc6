package store

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/pkg/order"
)

type contentError struct {
	name   string
	spoil  func(o *order.Order)
	reason []string // substrings of the Reason
}

// contentErrors are orders PostgreSQL refuses for what they hold, with
// what the rejection reason must say.
var contentErrors = []contentError{
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

// badLayouts are where the bad orders stand in a batch of n, by name.
func badLayouts() map[string]func(n int) []int {
	return map[string]func(n int) []int{
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
}

// TestWriteBatchRejectsContent mixes good orders with orders PostgreSQL
// refuses: good ones are stored, bad ones reported with their index and
// reason, offsets advanced, all in one batch.
func TestWriteBatchRejectsContent(t *testing.T) {
	t.Parallel()
	bads := contentErrors
	layouts := badLayouts()
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
