package pipeline

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/order"
)

// murmur2 is Kafka's key hash (org.apache.kafka.common.utils.Utils.murmur2),
// written here independently of franz-go to check the partitioning.
func murmur2(data []byte) int32 {
	const seed, m, r = uint32(0x9747b28c), uint32(0x5bd1e995), 24
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

func TestMurmur2MatchesKafka(t *testing.T) {
	// Vectors from Kafka's UtilsTest.testMurmur2.
	tests := map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	}
	for in, want := range tests {
		if got := murmur2([]byte(in)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", in, got, want)
		}
	}
}

func testProducerConfig() config.KafkaProducer {
	return config.Default().KafkaProducer
}

func newTestGenerator(t *testing.T, seed uint64) *order.Generator {
	t.Helper()
	g, err := order.NewGenerator(order.GeneratorConfig{Seed: seed, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// seq returns the per-generator sequence number at the end of an order id.
func seq(t *testing.T, id string) int {
	t.Helper()
	n, err := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
	if err != nil {
		t.Fatalf("order id %q has no sequence: %v", id, err)
	}
	return n
}

func TestProduceOrdersLandsExactlyWhatWasAcknowledged(t *testing.T) {
	t.Parallel()
	topic := testenv.Name(t, "produce")
	testenv.CreateTopic(t, topic, 3)
	const n = 5000

	stats, err := ProduceOrders(t.Context(), testCluster(t), testProducerConfig(), topic, newTestGenerator(t, 42),
		ProduceOptions{Count: n, FlushTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Produced != n || stats.Failed != 0 || stats.Stopped != StoppedCount {
		t.Fatalf("stats = %+v, want %d produced, 0 failed, stopped by count", stats, n)
	}

	records := testenv.Records(t, topic)
	if len(records) != n {
		t.Fatalf("topic holds %d records, want %d", len(records), n)
	}
	ids := map[string]bool{}
	keyPartition := map[string]int32{}
	lastSeq := map[string]int{}
	perPartition := map[int32]int64{}
	var o order.Order
	for _, r := range records {
		if err := order.DecodeAndValidate(r.Value, &o); err != nil {
			t.Fatalf("record %d/%d: %v", r.Partition, r.Offset, err)
		}
		if ids[o.OrderID] {
			t.Fatalf("order id %s twice", o.OrderID)
		}
		ids[o.OrderID] = true
		if string(r.Key) != o.CustomerID {
			t.Errorf("key %q, want customer_id %q", r.Key, o.CustomerID)
		}
		if r.Headers["content-type"] != "application/json" || r.Headers["schema"] != "food-order/v1" {
			t.Errorf("headers = %v", r.Headers)
		}
		if want := (murmur2(r.Key) & 0x7fffffff) % 3; r.Partition != want {
			t.Errorf("key %s in partition %d, murmur2 says %d", r.Key, r.Partition, want)
		}
		if p, ok := keyPartition[o.CustomerID]; ok && p != r.Partition {
			t.Errorf("customer %s in partitions %d and %d", o.CustomerID, p, r.Partition)
		}
		keyPartition[o.CustomerID] = r.Partition
		// Records arrive in offset order per partition; a customer's orders
		// must be in the order they were generated.
		s := seq(t, o.OrderID)
		if s <= lastSeq[o.CustomerID] {
			t.Errorf("customer %s: order seq %d after %d", o.CustomerID, s, lastSeq[o.CustomerID])
		}
		lastSeq[o.CustomerID] = s
		perPartition[r.Partition]++
	}
	if len(perPartition) < 2 {
		t.Errorf("only partitions %v used", perPartition)
	}
	for p, c := range perPartition {
		if stats.Partitions[p] != c {
			t.Errorf("partition %d: stats say %d, topic holds %d", p, stats.Partitions[p], c)
		}
	}
}

func TestProduceOrdersStopsOnCancelAndLosesNothing(t *testing.T) {
	t.Parallel()
	topic := testenv.Name(t, "produce")
	testenv.CreateTopic(t, topic, 3)
	ctx, cancel := context.WithCancel(t.Context())
	var progressCalls atomic.Int32
	done := make(chan struct{})
	var stats ProduceStats
	var err error
	cluster := testCluster(t) // in the test's goroutine: it may skip
	go func() {
		defer close(done)
		stats, err = ProduceOrders(ctx, cluster, testProducerConfig(), topic, newTestGenerator(t, 1), ProduceOptions{
			Rate: 5000, FlushTimeout: 30 * time.Second, ProgressInterval: 100 * time.Millisecond,
			Progress: func(ProduceStats) { progressCalls.Add(1) },
		})
	}()
	// Cancel once orders are flowing (as a SIGTERM would).
	for progressCalls.Load() < 3 {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if stats.Stopped != StoppedSignal || stats.Produced == 0 {
		t.Fatalf("stats = %+v, want stopped by signal after producing", stats)
	}
	if got := int64(len(testenv.Records(t, topic))); got != stats.Produced {
		t.Errorf("topic holds %d records, stats claim %d produced", got, stats.Produced)
	}
}

// kfakeCluster starts franz-go's in-process broker with topic (3
// partitions), closed when the test ends, and a Cluster that reaches it.
func kfakeCluster(t *testing.T, topic string) (*kfake.Cluster, kafka.Cluster) {
	t.Helper()
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close) // Close may come earlier: it is idempotent
	return fake, kafka.Cluster{
		Config:   config.Kafka{Brokers: fake.ListenAddrs(), ConnectTimeout: 5 * time.Second},
		ClientID: "foodpipe-test",
		Logger:   testenv.Logger(t),
	}
}

func TestProduceOrdersUnreachable(t *testing.T) {
	t.Parallel()
	cluster := kafka.Cluster{
		Config:   config.Kafka{Brokers: []string{"127.0.0.1:1"}, ConnectTimeout: time.Second},
		ClientID: "foodpipe-test",
		Logger:   testenv.Logger(t),
	}
	_, err := ProduceOrders(t.Context(), cluster, testProducerConfig(), "orders", newTestGenerator(t, 3), ProduceOptions{Count: 1})
	if !errors.Is(err, kafka.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
}

// testCluster is the test bed's broker.
func testCluster(t *testing.T) kafka.Cluster {
	t.Helper()
	return kafka.Cluster{
		Config:   config.Kafka{Brokers: testenv.Brokers(t), ConnectTimeout: 10 * time.Second},
		ClientID: "foodpipe-test",
		Logger:   testenv.Logger(t),
	}
}

// TestPacerLetsRateTimesDurationThrough: R calls per second for D seconds
// are R·D calls, the first at once, even when the caller stalls for up to
// a second once (the calls due meanwhile then go at once). The caller is
// simulated on the limiter's own clock, each call made exactly when its
// wait ends, so the count does not depend on the machine's speed.
func TestPacerLetsRateTimesDurationThrough(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		rate     float64
		duration time.Duration
		stall    time.Duration // after the tenth call
	}{
		{10, 10 * time.Second, 0}, {50, time.Second, 0}, {200, 1500 * time.Millisecond, 0}, {1000, 60 * time.Second, 0},
		{10000, 5 * time.Second, 180 * time.Millisecond}, {1000, 3 * time.Second, time.Second}, {10, 10 * time.Second, 700 * time.Millisecond},
	} {
		start := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
		l := pacerLimiter(tt.rate, start)
		now, n := start, 0
		for {
			wait := l.ReserveN(now, 1).DelayFrom(now)
			if !now.Add(wait).Before(start.Add(tt.duration)) {
				break // the run ends at start+duration, as the context's deadline does
			}
			now = now.Add(wait)
			n++
			if n == 10 {
				now = now.Add(tt.stall)
			}
		}
		if want := int(tt.rate * tt.duration.Seconds()); n != want {
			t.Errorf("rate %g for %v with a stall of %v: %d calls, want %d", tt.rate, tt.duration, tt.stall, n, want)
		}
	}
}

// TestProduceOrdersProgressIntervalZero: --progress-interval 0 means no
// progress line at all, not one at the end.
func TestProduceOrdersProgressIntervalZero(t *testing.T) {
	t.Parallel()
	_, cluster := kfakeCluster(t, "orders")
	var calls atomic.Int32
	stats, err := ProduceOrders(t.Context(), cluster, testProducerConfig(), "orders", newTestGenerator(t, 5), ProduceOptions{
		Count: 50, FlushTimeout: 10 * time.Second, Progress: func(ProduceStats) { calls.Add(1) },
	})
	if err != nil || stats.Produced != 50 || calls.Load() != 0 {
		t.Errorf("stats %+v, err %v, %d progress calls; want 50 produced and no progress call", stats, err, calls.Load())
	}
}
