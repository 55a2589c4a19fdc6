package config

import (
	"slices"
	"strings"
	"time"

	"github.com/foodpipe/foodpipe/pkg/order"
)

// Classes returns the dead-letter classes class names, in the order given
// and without repeats; none means every class.
func (d DLQ) Classes() []string {
	var out []string
	for _, c := range strings.Split(d.Class, ",") {
		if c = strings.ToLower(strings.TrimSpace(c)); c != "" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

func classes(value string) error {
	for _, c := range (DLQ{Class: value}).Classes() {
		if !slices.Contains(order.Classes, c) {
			return invalid("class", c, "must be one of "+strings.Join(order.Classes, ", ")+" (comma separated for several)")
		}
	}
	return nil
}

// Since is a point in time given as how long ago (Ago) or as a time (At).
// The zero Since means no bound.
type Since struct {
	Ago time.Duration
	At  time.Time
}

// ParseSince reads a duration ago ("90m", "1h") or an RFC 3339 time
// ("2026-11-27T13:00:00Z"); "" is the zero Since.
func ParseSince(s string) (Since, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Since{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return Since{}, invalid("since", s, "must be a positive duration ago, like 1h, or an RFC 3339 time")
		}
		return Since{Ago: d}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return Since{}, invalid("since", s, "want a duration ago, like 1h or 30m, or an RFC 3339 time, like 2026-11-27T13:00:00Z")
	}
	return Since{At: t}, nil
}

// Time is the point in time s names, for a clock that reads now; zero when
// s is zero.
func (s Since) Time(now time.Time) time.Time {
	if s.Ago > 0 {
		return now.Add(-s.Ago)
	}
	return s.At
}

// String spells s as it was given.
func (s Since) String() string {
	switch {
	case s.Ago > 0:
		return s.Ago.String() + " ago"
	case !s.At.IsZero():
		return s.At.Format(time.RFC3339Nano)
	}
	return "the start"
}
