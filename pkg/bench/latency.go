// Package bench measures foodpipe: rates, HDR latency histograms and the
// reports that print them. It knows Kafka and PostgreSQL only through small
// interfaces, which cmd fills with the real clients.
package bench

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram records latencies with HdrHistogram: every value counts (no
// sampling), from 1 µs to 1 hour, with 3 significant digits.
type Histogram struct {
	h *hdrhistogram.Histogram
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{h: hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)}
}

// Record adds one latency; values outside the range are clamped into it.
func (h *Histogram) Record(d time.Duration) {
	us := min(max(d.Microseconds(), 1), h.h.HighestTrackableValue())
	_ = h.h.RecordValue(us) // cannot fail: us is within the range
}

// Reset empties the histogram.
func (h *Histogram) Reset() { h.h.Reset() }

// Count is the number of values recorded.
func (h *Histogram) Count() int64 { return h.h.TotalCount() }

// Latency summarises a histogram in milliseconds.
type Latency struct {
	Avg  float64 `json:"avg"`
	Max  float64 `json:"max"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
}

// Summary returns the mean, maximum and percentiles, in milliseconds.
func (h *Histogram) Summary() Latency {
	if h.h.TotalCount() == 0 {
		return Latency{}
	}
	ms := func(us int64) float64 { return Round3(float64(us) / 1000) }
	return Latency{
		Avg:  Round3(h.h.Mean() / 1000),
		Max:  ms(h.h.Max()),
		P50:  ms(h.h.ValueAtQuantile(50)),
		P95:  ms(h.h.ValueAtQuantile(95)),
		P99:  ms(h.h.ValueAtQuantile(99)),
		P999: ms(h.h.ValueAtQuantile(99.9)),
	}
}
