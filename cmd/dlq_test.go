package cmd

import "testing"

func TestEscape(t *testing.T) {
	tests := []struct {
		in    string
		limit int
		want  string
	}{
		{`{"order_id":"ORD-1"}`, 0, `{"order_id":"ORD-1"}`},
		{"a\nb\tc\r\\", 0, `a\nb\tc\r\\`},
		{"\x00\x1b[31m\x7f", 0, `\x00\x1b[31m\x7f`},
		{"\xff\xfe{", 0, `\xff\xfe{`},
		{"Zoë ☕ \u0085 \u2028", 0, `Zoë ☕ \u0085 \u2028`},
		{"0123456789", 4, "0123…"},
		{"0123", 4, "0123"},
		{"ééééé", 2, "éé…"},
		{"", 60, ""},
	}
	for _, tt := range tests {
		if got := escape([]byte(tt.in), tt.limit); got != tt.want {
			t.Errorf("escape(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
		}
	}
}
