package order

import (
	"flag"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files and bad records in testdata/orders")

// ordersDir holds the fixtures shared with other packages' tests (the
// consumer's poison-record test reads bad/).
var ordersDir = filepath.Join("..", "..", "testdata", "orders")

// exampleJSON is the SPEC's example order on the wire, as AppendJSON writes it.
const exampleJSON = `{"order_id":"ORD-20261127-7ZQ3K9M2X4V8N6PD-42","customer_id":"CUST-00042",` +
	`"customer_name":"Jane Smith","customer_email":"jane.smith.42@example.com",` +
	`"items":[{"item_id":"ITEM-003","name":"Bacon Burger","quantity":2,"price":10.99,"subtotal":21.98}],` +
	`"total_amount":21.98,"status":"pending","created_at":"2026-11-27T13:27:42.123456Z"}`

// exampleOrder is the SPEC's example order. RawItems is left nil: tests
// that decode set it from the input they used.
func exampleOrder() Order {
	return Order{
		OrderID:       "ORD-20261127-7ZQ3K9M2X4V8N6PD-42",
		CustomerID:    "CUST-00042",
		CustomerName:  "Jane Smith",
		CustomerEmail: "jane.smith.42@example.com",
		Items: []Item{
			{ItemID: "ITEM-003", Name: "Bacon Burger", Quantity: 2, Price: 1099, Subtotal: 2198},
		},
		TotalAmount: 2198,
		Status:      StatusPending,
		CreatedAt:   time.Date(2026, 11, 27, 13, 27, 42, 123456000, time.UTC),
	}
}

// orderDiff describes how got differs from want, ignoring RawItems (which
// tests check against the input bytes); "" means equal. Times must be
// equal instants and in UTC.
func orderDiff(got, want *Order) string {
	var d string
	field := func(name string, g, w any) {
		if g != w {
			d += fmt.Sprintf("\n  %s: got %#v, want %#v", name, g, w)
		}
	}
	field("OrderID", got.OrderID, want.OrderID)
	field("CustomerID", got.CustomerID, want.CustomerID)
	field("CustomerName", got.CustomerName, want.CustomerName)
	field("CustomerEmail", got.CustomerEmail, want.CustomerEmail)
	field("TotalAmount", got.TotalAmount, want.TotalAmount)
	field("Status", got.Status, want.Status)
	if !got.CreatedAt.Equal(want.CreatedAt) || got.CreatedAt.Location() != time.UTC {
		d += fmt.Sprintf("\n  CreatedAt: got %v, want %v (UTC)", got.CreatedAt, want.CreatedAt)
	}
	if len(got.Items) != len(want.Items) {
		return d + fmt.Sprintf("\n  len(Items): got %d, want %d", len(got.Items), len(want.Items))
	}
	for i := range got.Items {
		field(fmt.Sprintf("Items[%d]", i), got.Items[i], want.Items[i])
	}
	return d
}

func assertOrder(t *testing.T, got, want *Order) {
	t.Helper()
	if d := orderDiff(got, want); d != "" {
		t.Errorf("order differs:%s", d)
	}
}

// fixedClock returns a clock that starts at start and advances by step on
// every call, so generated timestamps are distinct and reproducible.
func fixedClock(start time.Time, step time.Duration) func() time.Time {
	t := start
	return func() time.Time {
		now := t
		t = t.Add(step)
		return now
	}
}
