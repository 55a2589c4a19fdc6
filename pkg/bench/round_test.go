package bench

import "testing"

func TestRound(t *testing.T) {
	tests := []struct {
		x, want3, want1 float64
	}{
		{0, 0, 0},
		{1.23449, 1.234, 1.2},
		{1.2345, 1.235, 1.2},
		{2.05, 2.05, 2.1},
		{1234.5678, 1234.568, 1234.6},
	}
	for _, tt := range tests {
		if got := Round3(tt.x); got != tt.want3 {
			t.Errorf("Round3(%v) = %v, want %v", tt.x, got, tt.want3)
		}
		if got := Round1(tt.x); got != tt.want1 {
			t.Errorf("Round1(%v) = %v, want %v", tt.x, got, tt.want1)
		}
	}
}
