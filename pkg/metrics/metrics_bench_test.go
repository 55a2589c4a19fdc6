package metrics

import (
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/foodpipe/foodpipe/pkg/pipeline"
)

// BenchmarkCommitted is what the metrics add to each committed batch of
// 5,000 rows (the default batch-rows): the counters and one latency
// observation per row. Compare it with a batch's write time from bench
// sink (about 100 ms for 4,500 rows on the test bed) for the share of the
// sink's time the metrics take:
//
//	go test -run x -bench Committed ./pkg/metrics
func BenchmarkCommitted(b *testing.B) {
	m := New()
	orders := make([]*order.Order, 5000)
	now := time.Now()
	for i := range orders {
		orders[i] = &order.Order{CreatedAt: now.Add(-time.Duration(i) * time.Microsecond)}
	}
	polled := make([]time.Time, len(orders))
	for i := range polled {
		polled[i] = now.Add(-100 * time.Millisecond)
	}
	c := pipeline.Commit{Inserted: len(orders), Records: len(orders), Took: 90 * time.Millisecond,
		At: now, Polled: polled, Orders: orders,
		DeadLetters: map[string]int{"validate": 1}}
	b.ReportAllocs()
	for b.Loop() {
		m.Committed(c)
		m.Consumed(len(orders))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(orders)), "ns/row")
}
