package store

import (
	"cmp"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/pkg/order"
)

// TestReportQueries stores generated orders, some of them re-statused and
// spread over three hours, and checks the demo's answers against sums
// computed here from the orders themselves.
func TestReportQueries(t *testing.T) {
	t.Parallel()
	db := openMigrated(t, Options{})
	orders := genOrders(t, 11, 600)
	statuses := []string{order.StatusPending, order.StatusCompleted, order.StatusFailed}
	start := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for i, o := range orders {
		o.Status = statuses[i%len(statuses)]
		o.CreatedAt = start.Add(time.Duration(i%3)*time.Hour + time.Duration(i)*time.Second)
	}
	if _, err := db.WriteBatch(t.Context(), "g", orders, []Offset{{Topic: "t", Partition: 0, Expected: -1, Next: 600}}, nil); err != nil {
		t.Fatal(err)
	}

	wantStatus := map[string]StatusCount{}
	wantHour := map[time.Time]HourRevenue{}
	items := map[string]ItemSales{}
	for _, o := range orders {
		s := wantStatus[o.Status]
		s.Status, s.Orders, s.Revenue = o.Status, s.Orders+1, s.Revenue+o.TotalAmount
		wantStatus[o.Status] = s
		h := o.CreatedAt.Truncate(time.Hour)
		r := wantHour[h]
		r.Hour, r.Orders, r.Revenue = h, r.Orders+1, r.Revenue+o.TotalAmount
		wantHour[h] = r
		for _, it := range o.Items {
			x := items[it.ItemID]
			x.ItemID, x.Name = it.ItemID, it.Name
			x.Quantity += int64(it.Quantity)
			x.Orders++
			x.Revenue += it.Subtotal
			items[it.ItemID] = x
		}
	}

	byStatus, err := db.OrdersByStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(byStatus) != len(wantStatus) {
		t.Errorf("%d statuses, want %d", len(byStatus), len(wantStatus))
	}
	for _, s := range byStatus {
		if s != wantStatus[s.Status] {
			t.Errorf("status %s: got %+v, want %+v", s.Status, s, wantStatus[s.Status])
		}
	}

	byHour, err := db.RevenueByHour(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	hours := slices.SortedFunc(maps.Keys(wantHour), time.Time.Compare)
	if len(byHour) != len(hours) {
		t.Fatalf("%d hours, want %d", len(byHour), len(hours))
	}
	for i, h := range byHour {
		if h != wantHour[hours[i]] {
			t.Errorf("hour %d: got %+v, want %+v", i, h, wantHour[hours[i]])
		}
	}

	top, err := db.TopItems(t.Context(), 5)
	if err != nil {
		t.Fatal(err)
	}
	all := slices.SortedFunc(maps.Values(items), func(a, b ItemSales) int {
		return cmp.Or(cmp.Compare(b.Quantity, a.Quantity), cmp.Compare(a.ItemID, b.ItemID))
	})
	if !slices.Equal(top, all[:5]) {
		t.Errorf("top items\n got %+v\nwant %+v", top, all[:5])
	}
}
