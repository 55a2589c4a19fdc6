package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 27, 13, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		err  string
	}{
		{"", time.Time{}, ""},
		{"1h", now.Add(-time.Hour), ""},
		{" 90m ", now.Add(-90 * time.Minute), ""},
		{"2026-11-27T12:00:00Z", time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), ""},
		{"2026-11-27T12:00:00.5+01:00", time.Date(2026, 11, 27, 11, 0, 0, 5e8, time.UTC), ""},
		{"-1h", time.Time{}, "positive duration"},
		{"0s", time.Time{}, "positive duration"},
		{"yesterday", time.Time{}, "want a duration ago"},
		{"2026-11-27", time.Time{}, "want a duration ago"},
	}
	for _, tt := range tests {
		s, err := ParseSince(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "invalid since") {
				t.Errorf("ParseSince(%q) error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSince(%q): %v", tt.in, err)
			continue
		}
		if got := s.Time(now); !got.Equal(tt.want) {
			t.Errorf("ParseSince(%q).Time = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestDLQClasses(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"", nil, false},
		{"store", []string{"store"}, false},
		{"Decode, validate,decode", []string{"decode", "validate"}, false},
		{"store,poison", nil, true},
	}
	for _, tt := range tests {
		got := DLQ{Class: tt.in}.Classes()
		err := classes(tt.in)
		if (err != nil) != tt.err || !tt.err && !slices.Equal(got, tt.want) {
			t.Errorf("class %q: got %v, error %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}
