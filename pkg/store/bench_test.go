package store

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/pkg/order"
)

// Sink benchmarks. Each iteration drains the same benchRows generated
// orders (FOODPIPE_BENCH_ROWS, default 200,000) into an empty table with
// the SPEC's indexes, GIN on items included, and reports rows/s:
//
//	go test -run x -bench 'WriteBatch|RawCopy' -count 3 ./pkg/store
//
// BenchmarkWriteBatch/batch=N is the consumer's path: WriteBatch per N
// rows, each a transaction with its offset check. BenchmarkRawCopy/batch=N
// copies the same rows, encoded the same way, per N rows in autocommit;
// batch=all in one COPY, the raw baseline. BenchmarkSinkRatio runs a
// WriteBatch drain and a one-COPY drain back to back per iteration and
// reports their ratio, less exposed to drift on a shared server.

var benchBatchSizes = []int{500, 1000, 2000, 5000, 10000}

func benchRows(b *testing.B) int {
	if s := os.Getenv("FOODPIPE_BENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("FOODPIPE_BENCH_ROWS=%q: want a positive number", s)
		}
		return n
	}
	return 200_000
}

// benchOrders generates the benchmark's rows once per benchmark.
func benchOrders(b *testing.B) []*order.Order {
	b.Helper()
	return genOrders(b, 42, benchRows(b))
}

func truncate(b *testing.B, db *DB, table string) {
	b.Helper()
	if _, err := db.pool.Exec(b.Context(), "TRUNCATE "+table); err != nil {
		b.Fatal(err)
	}
	// Start every drain from the same state: no dead tuples, no pending
	// GIN entries, nothing left to flush from the previous one.
	if _, err := db.pool.Exec(b.Context(), "CHECKPOINT"); err != nil {
		b.Logf("checkpoint: %v", err)
	}
}

// drainWriteBatch stores orders in batches of size through WriteBatch,
// advancing one partition's offset as the consumer would.
func drainWriteBatch(b *testing.B, db *DB, orders []*order.Order, size int) {
	b.Helper()
	expected := int64(-1)
	for lo := 0; lo < len(orders); lo += size {
		hi := min(lo+size, len(orders))
		res, err := db.WriteBatch(b.Context(), "bench", orders[lo:hi], []Offset{{Topic: "t", Partition: 0, Expected: expected, Next: int64(hi)}}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if res.Inserted != hi-lo {
			b.Fatalf("batch at %d: %+v", lo, res)
		}
		expected = int64(hi)
	}
}

func drainRawCopy(b *testing.B, db *DB, table string, orders []*order.Order, size int) {
	b.Helper()
	for lo := 0; lo < len(orders); lo += size {
		hi := min(lo+size, len(orders))
		if _, err := db.RawCopy(b.Context(), table, orders[lo:hi]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteBatch(b *testing.B) {
	db := openMigrated(b, Options{})
	orders := benchOrders(b)
	for _, size := range benchBatchSizes {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			var elapsed time.Duration
			for range b.N {
				b.StopTimer()
				truncate(b, db, "orders")
				truncate(b, db, "consumer_offsets")
				b.StartTimer()
				start := time.Now()
				drainWriteBatch(b, db, orders, size)
				elapsed += time.Since(start)
			}
			b.ReportMetric(float64(b.N*len(orders))/elapsed.Seconds(), "rows/s")
		})
	}
}

func BenchmarkRawCopy(b *testing.B) {
	db := openMigrated(b, Options{})
	if err := db.CreateOrdersLike(b.Context(), "orders_raw"); err != nil {
		b.Fatal(err)
	}
	orders := benchOrders(b)
	sizes := append([]int{len(orders)}, benchBatchSizes...)
	for _, size := range sizes {
		name := fmt.Sprintf("batch=%d", size)
		if size == len(orders) {
			name = "batch=all"
		}
		b.Run(name, func(b *testing.B) {
			var elapsed time.Duration
			for range b.N {
				b.StopTimer()
				truncate(b, db, "orders_raw")
				b.StartTimer()
				start := time.Now()
				drainRawCopy(b, db, "orders_raw", orders, size)
				elapsed += time.Since(start)
			}
			b.ReportMetric(float64(b.N*len(orders))/elapsed.Seconds(), "rows/s")
		})
	}
}

func BenchmarkSinkRatio(b *testing.B) {
	db := openMigrated(b, Options{})
	if err := db.CreateOrdersLike(b.Context(), "orders_raw"); err != nil {
		b.Fatal(err)
	}
	orders := benchOrders(b)
	for _, size := range benchBatchSizes {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			var sink, raw time.Duration
			for range b.N {
				truncate(b, db, "orders")
				truncate(b, db, "consumer_offsets")
				start := time.Now()
				drainWriteBatch(b, db, orders, size)
				sink += time.Since(start)

				truncate(b, db, "orders_raw")
				start = time.Now()
				drainRawCopy(b, db, "orders_raw", orders, len(orders))
				raw += time.Since(start)
			}
			n := float64(b.N * len(orders))
			b.ReportMetric(n/sink.Seconds(), "sink_rows/s")
			b.ReportMetric(n/raw.Seconds(), "copy_rows/s")
			b.ReportMetric(raw.Seconds()/sink.Seconds(), "ratio")
		})
	}
}
