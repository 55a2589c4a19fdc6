package order

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

func TestOrderIDFormat(t *testing.T) {
	g := newGen(t, GeneratorConfig{IDSource: bytes.NewReader(bytes.Repeat([]byte{0xFF}, 10))})
	var o Order
	g.Next(&o)
	if want := "ORD-20261127-ZZZZZZZZZZZZZZZZ-1"; o.OrderID != want {
		t.Errorf("first id = %s, want %s", o.OrderID, want)
	}
	g.seq = math.MaxUint64 - 1
	g.Next(&o)
	if !idPattern.MatchString(o.OrderID) || len(o.OrderID) != MaxIDLen {
		t.Errorf("id with the largest sequence = %s (%d characters), want %d characters", o.OrderID, len(o.OrderID), MaxIDLen)
	}
}

func TestCrockford(t *testing.T) {
	tests := []struct {
		in   [10]byte
		want string
	}{
		{[10]byte{}, "0000000000000000"},
		{[10]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, "ZZZZZZZZZZZZZZZZ"},
		{[10]byte{9: 1}, "0000000000000001"},
		{[10]byte{9: 32}, "0000000000000010"},
		{[10]byte{0: 0x80}, "G000000000000000"},
	}
	for _, tt := range tests {
		if got := crockford(tt.in); got != tt.want {
			t.Errorf("crockford(%x) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestOrderIDsUnique covers one generator over 200,000 orders, two
// generators started with the same seed (two producers, or a restart), and
// a day boundary.
func TestOrderIDsUnique(t *testing.T) {
	const n = 200_000
	seen := make(map[string]struct{}, 2*n)
	midnight := time.Date(2026, 11, 27, 23, 59, 59, 0, time.UTC)
	clock := fixedClock(midnight, 10*time.Microsecond)
	a := newGen(t, GeneratorConfig{Seed: 42, Now: clock})
	b := newGen(t, GeneratorConfig{Seed: 42, Now: clock})
	var o Order
	days := map[string]bool{}
	for i := 0; i < n; i++ {
		for _, g := range []*Generator{a, b} {
			g.Next(&o)
			if _, dup := seen[o.OrderID]; dup {
				t.Fatalf("order %d: duplicate id %s", i, o.OrderID)
			}
			seen[o.OrderID] = struct{}{}
			if !idPattern.MatchString(o.OrderID) {
				t.Fatalf("id %q does not match %s", o.OrderID, idPattern)
			}
			if want := "ORD-" + o.CreatedAt.Format("20060102") + "-"; !strings.HasPrefix(o.OrderID, want) {
				t.Fatalf("id %s created at %v, want prefix %s", o.OrderID, o.CreatedAt, want)
			}
			days[o.OrderID[4:12]] = true
		}
	}
	if !days["20261127"] || !days["20261128"] {
		t.Errorf("ids span days %v, want 20261127 and 20261128", days)
	}
}
