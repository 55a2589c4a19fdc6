package order

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"
)

// TestGeneratedOrders checks 100,000 generated orders one by one (valid,
// SPEC shape, exact sums, JSON round trip) and as a whole (chi-square tests
// that customers, item counts, items and quantities are uniform). The seed
// is fixed, so the test is deterministic; the thresholds are at p ≈ 10⁻⁶ so
// a correct generator passes whatever seed is chosen here.
func TestGeneratedOrders(t *testing.T) {
	const n = 100_000
	g := newGen(t, GeneratorConfig{Seed: 20261127})
	byCustomer := make([]float64, len(g.Customers()))
	byCount := make([]float64, maxItemsGenerated)
	byItem := make([]float64, len(Menu))
	byQty := make([]float64, maxQtyGenerated)
	price := map[string]Cents{}
	for _, m := range Menu {
		price[m.ID] = m.Price
	}
	var o, back Order
	var buf []byte
	var prev time.Time
	for i := 0; i < n; i++ {
		g.Next(&o)
		if err := o.Validate(); err != nil {
			t.Fatalf("order %d invalid: %v", i, err)
		}
		if o.Status != StatusPending || !o.CreatedAt.After(prev) || o.CreatedAt.Nanosecond()%1000 != 0 || o.RawItems != nil {
			t.Fatalf("order %d: status %q, created_at %v after %v: want pending, increasing, whole microseconds, no RawItems",
				i, o.Status, o.CreatedAt, prev)
		}
		prev = o.CreatedAt
		var num int
		if _, err := fmt.Sscanf(o.CustomerID, "CUST-%d", &num); err != nil {
			t.Fatalf("order %d: customer %s: %v", i, o.CustomerID, err)
		}
		byCustomer[num-1]++
		byCount[len(o.Items)-1]++
		var sum Cents
		ids := map[string]bool{}
		for _, it := range o.Items {
			if ids[it.ItemID] {
				t.Fatalf("order %d: item %s twice", i, it.ItemID)
			}
			ids[it.ItemID] = true
			if it.Price != price[it.ItemID] || it.Subtotal != it.Price*Cents(it.Quantity) {
				t.Fatalf("order %d: item %+v disagrees with the menu", i, it)
			}
			var k int
			fmt.Sscanf(it.ItemID, "ITEM-%d", &k)
			byItem[k-1]++
			byQty[it.Quantity-1]++
			sum += it.Subtotal
		}
		if sum != o.TotalAmount {
			t.Fatalf("order %d: total %v, sum %v", i, o.TotalAmount, sum)
		}
		if i%10 == 0 { // the round trip is exercised enough on a sample
			buf = AppendJSON(buf[:0], &o)
			if !json.Valid(buf) {
				t.Fatalf("order %d: invalid JSON %s", i, buf)
			}
			if err := DecodeAndValidate(buf, &back); err != nil {
				t.Fatalf("order %d: %v\n%s", i, err, buf)
			}
			assertOrder(t, &back, &o)
			if want := AppendItemsJSON(nil, o.Items); !bytes.Equal(back.RawItems, want) {
				t.Fatalf("order %d: RawItems %s, want %s", i, back.RawItems, want)
			}
		}
	}

	items := 0.0
	for _, c := range byItem {
		items += c
	}
	qtys := 0.0
	for _, c := range byQty {
		qtys += c
	}
	chiSquare(t, "customers", byCustomer, uniform(byCustomer, n))
	chiSquare(t, "item count", byCount, uniform(byCount, n))
	chiSquare(t, "menu items", byItem, uniform(byItem, items))
	chiSquare(t, "quantities", byQty, uniform(byQty, qtys))
}

// uniform is the expected count of each class when total spreads evenly.
func uniform(counts []float64, total float64) []float64 {
	e := make([]float64, len(counts))
	for i := range e {
		e[i] = total / float64(len(counts))
	}
	return e
}

// TestMeanOrderValue: with this menu the mean order is about $32.8, as the
// SPEC says.
func TestMeanOrderValue(t *testing.T) {
	meanCents := 0.0
	for _, m := range Menu {
		meanCents += float64(m.Price)
	}
	meanCents = meanCents / float64(len(Menu)) * 3 * 2 // E[items] × E[quantity] × mean price
	if got := fmt.Sprintf("%.1f", meanCents/100); got != "32.8" {
		t.Errorf("expected mean order = $%s, SPEC says about $32.8", got)
	}
}

// chiSquare fails when the observed counts are implausible under the
// expected ones at p ≈ 10⁻⁶ (Wilson–Hilferty approximation of the critical
// value, z = 4.75), and also when they are implausibly close to them, which
// catches a generator that cycles instead of drawing.
func chiSquare(t *testing.T, what string, observed, expected []float64) {
	t.Helper()
	var x float64
	for i := range observed {
		d := observed[i] - expected[i]
		x += d * d / expected[i]
	}
	k := float64(len(observed) - 1)
	critical := func(z float64) float64 {
		a := 2 / (9 * k)
		return k * math.Pow(1-a+z*math.Sqrt(a), 3)
	}
	hi, lo := critical(4.75), critical(-4.75)
	if x > hi || x < math.Max(lo, 0) {
		t.Errorf("%s: chi-square %.1f with %v degrees of freedom, want between %.2f and %.1f; counts %v",
			what, x, k, math.Max(lo, 0), hi, observed)
	}
}
