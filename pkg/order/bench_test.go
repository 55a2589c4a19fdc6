package order

import (
	"testing"
	"time"
)

// Measure on one core, as the targets are stated:
//
//	go test -run x -bench . -cpu 1 ./pkg/order
//
// The producer's budget is BenchmarkGenerateEncode ≥ 500,000 orders/s.

func reportOrders(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
}

func benchGenerator(b *testing.B) *Generator {
	b.Helper()
	// The real clock: the producer pays for it on every order.
	return newGen(b, GeneratorConfig{Seed: 42, Now: time.Now})
}

func BenchmarkGenerate(b *testing.B) {
	g := benchGenerator(b)
	var o Order
	b.ReportAllocs()
	for b.Loop() {
		g.Next(&o)
	}
	reportOrders(b)
}

func BenchmarkGenerateEncode(b *testing.B) {
	g := benchGenerator(b)
	var o Order
	buf := make([]byte, 0, 1024)
	total := 0
	b.ReportAllocs()
	for b.Loop() {
		g.Next(&o)
		buf = AppendJSON(buf[:0], &o)
		total += len(buf)
	}
	reportOrders(b)
	b.ReportMetric(float64(total)/float64(b.N), "bytes/order")
}

// encodedOrders returns n generated orders on the wire, to decode in turn
// so the benchmark sees the variety of real records.
func encodedOrders(b *testing.B, n int) [][]byte {
	g := benchGenerator(b)
	var o Order
	out := make([][]byte, n)
	for i := range out {
		g.Next(&o)
		out[i] = AppendJSON(nil, &o)
	}
	return out
}

func BenchmarkDecode(b *testing.B) {
	records := encodedOrders(b, 1024)
	var o Order
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := Decode(records[i%len(records)], &o); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportOrders(b)
}

func BenchmarkDecodeValidate(b *testing.B) {
	records := encodedOrders(b, 1024)
	var o Order
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := DecodeAndValidate(records[i%len(records)], &o); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportOrders(b)
}
