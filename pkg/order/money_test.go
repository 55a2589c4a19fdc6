package order

import (
	"math"
	"strings"
	"testing"
)

func TestCentsString(t *testing.T) {
	tests := []struct {
		c    Cents
		want string
	}{
		{2198, "21.98"},
		{900, "9.00"},
		{5, "0.05"},
		{0, "0.00"},
		{-5, "-0.05"},
		{-1099, "-10.99"},
		{9999999999, "99999999.99"},
		{math.MaxInt64, "92233720368547758.07"},
		{math.MinInt64, "-92233720368547758.08"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("Cents(%d).String() = %q, want %q", int64(tt.c), got, tt.want)
		}
	}
}

func TestParseCents(t *testing.T) {
	tests := []struct {
		in      string
		want    Cents
		wantErr string // substring; "" means success
	}{
		{"10.99", 1099, ""},
		{"10.9", 1090, ""},
		{"10", 1000, ""},
		{"0", 0, ""},
		{"0.01", 1, ""},
		{"-0", 0, ""},
		{"-3.50", -350, ""},
		{"99999999.99", 9999999999, ""},
		{"92233720368547758.07", math.MaxInt64, ""},
		{"92233720368547758.08", 0, "out of range"},
		{"-92233720368547758.08", math.MinInt64, ""},
		{"-92233720368547758.09", 0, "out of range"},
		{"100000000000000000000000000", 0, "out of range"},
		{"10.999", 0, "at most 2 decimals"},
		{"10.990", 0, "at most 2 decimals"}, // exact, but not what the SPEC allows on the wire
		{"1e2", 0, "not an exponent"},
		{"1.5E+1", 0, "not an exponent"},
		{"", 0, "want a JSON number"},
		{"-", 0, "want a JSON number"},
		{"+1", 0, "want a JSON number"},
		{"01", 0, "want a JSON number"},
		{".5", 0, "want a JSON number"},
		{"1.", 0, "want a JSON number"},
		{"1.5x", 0, "want a JSON number"},
		{" 1", 0, "want a JSON number"},
		{"NaN", 0, "want a JSON number"},
		{"1_000", 0, "want a JSON number"},
	}
	for _, tt := range tests {
		got, err := ParseCents(tt.in)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ParseCents(%q) error %v, want %d", tt.in, err, int64(tt.want))
		case tt.wantErr == "" && got != tt.want:
			t.Errorf("ParseCents(%q) = %d, want %d", tt.in, int64(got), int64(tt.want))
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParseCents(%q) = %d, %v; want error containing %q", tt.in, int64(got), err, tt.wantErr)
		}
	}
}

// TestCentsStringParses checks that every amount String writes reads back
// exactly, the property the producer and consumer rely on.
func TestCentsStringParses(t *testing.T) {
	for _, c := range []Cents{0, 1, 9, 10, 99, 100, 101, 2198, -1, -100, 9999999999, math.MaxInt64, math.MinInt64} {
		got, err := ParseCents(c.String())
		if err != nil || got != c {
			t.Errorf("ParseCents(%q) = %d, %v; want %d", c.String(), int64(got), err, int64(c))
		}
	}
}

func TestMulCents(t *testing.T) {
	tests := []struct {
		p      Cents
		q      int
		want   Cents
		wantOK bool
	}{
		{1099, 2, 2198, true},
		{0, 5, 0, true},
		{math.MaxInt64, 1, math.MaxInt64, true},
		{math.MaxInt64, 2, 0, false},
		{math.MaxInt64/1000 + 1, 1000, 0, false},
		{-1, math.MinInt64, 0, false},
	}
	for _, tt := range tests {
		got, ok := mulCents(tt.p, tt.q)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("mulCents(%d, %d) = %d, %v; want %d, %v", int64(tt.p), tt.q, int64(got), ok, int64(tt.want), tt.wantOK)
		}
	}
}
