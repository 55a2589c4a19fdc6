package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

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

// TestProduceOrdersBrokerLost runs against franz-go's in-process kfake
// cluster, which the test can shut down mid-run: orders that cannot be
// delivered within the delivery timeout are counted failed, never produced.
// The broker goes as soon as the first orders are acknowledged (a state,
// not a time: how many a machine acknowledges first is not asserted).
func TestProduceOrdersBrokerLost(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	fake, cluster := kfakeCluster(t, topic)
	cfg := testProducerConfig()
	cfg.DeliveryTimeout = 2 * time.Second

	var closed atomic.Bool
	stats, err := ProduceOrders(t.Context(), cluster, cfg, topic, newTestGenerator(t, 2), ProduceOptions{
		Rate: 2000, Duration: 4 * time.Second, FlushTimeout: 5 * time.Second, ProgressInterval: 20 * time.Millisecond,
		Progress: func(s ProduceStats) {
			if s.Produced > 0 && !closed.Swap(true) {
				fake.Close() // the broker is gone for good
			}
		},
	})
	if !errors.Is(err, ErrNotDelivered) {
		t.Fatalf("err = %v, want ErrNotDelivered", err)
	}
	// The one line says why, not only how many: the last delivery error,
	// or (franz-go keeps records for a broker it cannot dial until the
	// client closes) that they were unacknowledged when the flush ended.
	if msg := err.Error(); !strings.Contains(msg, "(the last: ") && !strings.Contains(msg, "when flush-timeout 5s ran out") {
		t.Errorf("err = %q, want the last delivery error or the flush timeout in it", err)
	}
	if stats.Failed == 0 || stats.Produced == 0 {
		t.Errorf("stats = %+v, want some produced before the loss and some failed after", stats)
	}
}

// TestProduceOrdersFlushTimeout: stopped while the broker holds its
// acknowledgements longer than FlushTimeout, ProduceOrders counts the
// orders in flight as failed and says they were not acknowledged in time
// (they may be in the topic), not that the broker refused them.
func TestProduceOrdersFlushTimeout(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	fake, cluster := kfakeCluster(t, topic)
	var holding atomic.Bool
	held, release := make(chan struct{}, 1), make(chan struct{})
	t.Cleanup(func() { close(release) }) // before fake.Close, which needs the handler back
	fake.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		fake.KeepControl()
		if holding.Load() {
			select {
			case held <- struct{}{}:
			default:
			}
			<-release
		}
		return nil, nil, false
	})
	ctx, stop := context.WithCancel(t.Context())
	go func() {
		<-held // a produce request waits for its answer
		stop()
	}()
	var acked atomic.Int64
	go func() {
		for acked.Load() < 200 {
			time.Sleep(5 * time.Millisecond)
		}
		holding.Store(true)
	}()
	stats, err := ProduceOrders(ctx, cluster, testProducerConfig(), topic, newTestGenerator(t, 3), ProduceOptions{
		Rate: 2000, FlushTimeout: 50 * time.Millisecond, ProgressInterval: 10 * time.Millisecond,
		Progress: func(s ProduceStats) { acked.Store(s.Produced) },
	})
	if !errors.Is(err, ErrNotDelivered) || stats.Failed == 0 {
		t.Fatalf("stats %+v, err %v; want orders failed and ErrNotDelivered", stats, err)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("%d of %d were still unacknowledged when flush-timeout 50ms ran out",
		stats.Failed, stats.Failed+stats.Produced)) || !strings.Contains(msg, "some may have reached the topic") ||
		strings.Contains(msg, "client closed") {
		t.Errorf("err = %q, want it to say the orders were not acknowledged in time", msg)
	}
}

// readiness is a ProduceObserver that keeps the readiness it was told last.
type readiness struct {
	ready   atomic.Bool
	stalled atomic.Int64 // Stalled calls
	reason  atomic.Value // the last Stalled reason
}

func (r *readiness) Delivered(err error) { r.ready.Store(err == nil) }
func (r *readiness) Stalled(reason string) {
	r.stalled.Add(1)
	r.reason.Store(reason)
	r.ready.Store(false)
}

// TestProduceOrdersStalledBrokerIsNotReady: a broker that stops answering
// produce requests fails no record until delivery-timeout (minutes), so
// readiness kept by deliveries alone stayed "ready" all that while. With
// records waiting and none acknowledged for StallAfter, the observer hears
// the producer is stalled; the first acknowledgement after makes it ready
// again, and nothing is lost.
func TestProduceOrdersStalledBrokerIsNotReady(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	fake, cluster := kfakeCluster(t, topic)
	var holding atomic.Bool
	release := make(chan struct{})
	var once sync.Once
	unhold := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unhold) // before fake.Close, which needs the handler back
	fake.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		fake.KeepControl()
		if holding.Load() {
			<-release
		}
		return nil, nil, false
	})
	obs := &readiness{}
	var acked atomic.Int64
	go func() {
		wait := func(cond func() bool) bool {
			for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					return false
				}
			}
			return true
		}
		if !wait(func() bool { return acked.Load() >= 100 && obs.ready.Load() }) {
			t.Error("no order acknowledged")
		}
		holding.Store(true)
		if !wait(func() bool { return obs.stalled.Load() > 0 }) {
			t.Error("the producer never said it was stalled while the broker held every request")
		}
		holding.Store(false)
		unhold()
	}()
	stats, err := ProduceOrders(t.Context(), cluster, testProducerConfig(), topic, newTestGenerator(t, 4), ProduceOptions{
		Rate: 2000, Count: 1000, FlushTimeout: 30 * time.Second, StallAfter: 100 * time.Millisecond,
		ProgressInterval: 10 * time.Millisecond, Progress: func(s ProduceStats) { acked.Store(s.Produced) }, Observer: obs,
	})
	if err != nil || stats.Produced != 1000 || stats.Failed != 0 {
		t.Fatalf("stats %+v, err %v; want all 1000 produced", stats, err)
	}
	if reason, _ := obs.reason.Load().(string); !strings.Contains(reason, "acknowledged no record for") || !strings.Contains(reason, "waiting") {
		t.Errorf("stalled reason %q, want it to say no record was acknowledged and how many wait", reason)
	}
	if !obs.ready.Load() {
		t.Error("not ready after every order was acknowledged")
	}
	var n int64
	for _, end := range testenv.EndOffsetsAt(t, fake.ListenAddrs(), topic) {
		n += end
	}
	if n != 1000 {
		t.Errorf("%d records in the topic, want 1000", n)
	}
}

// TestProduceOrdersTopicDeleted: the topic is deleted under a producer
// with no end. Generation stops once deliveries fail for that reason and
// the cluster confirms it; the error names the topic and the fix, and the
// orders acknowledged before are counted produced.
func TestProduceOrdersTopicDeleted(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	fake, cluster := kfakeCluster(t, topic)
	var acked atomic.Int64
	go func() {
		for acked.Load() < 200 {
			time.Sleep(5 * time.Millisecond)
		}
		if _, err := testenv.AdminAt(t, fake.ListenAddrs()).DeleteTopic(context.Background(), topic); err != nil {
			t.Error(err)
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cfg := testProducerConfig()
	cfg.DeliveryTimeout = 2 * time.Second
	stats, err := ProduceOrders(ctx, cluster, cfg, topic, newTestGenerator(t, 4), ProduceOptions{
		Rate: 1000, FlushTimeout: 5 * time.Second, ProgressInterval: 20 * time.Millisecond,
		Progress: func(s ProduceStats) { acked.Store(s.Produced) },
	})
	if ctx.Err() != nil {
		t.Fatalf("still producing a minute after the topic was deleted: %+v", stats)
	}
	if !errors.Is(err, kafka.ErrTopicMissing) || !strings.Contains(err.Error(), "run foodpipe topics init") {
		t.Fatalf("err = %v, want ErrTopicMissing naming the fix", err)
	}
	if stats.Stopped != StoppedError || stats.Produced < 200 || stats.Failed == 0 {
		t.Errorf("stats = %+v, want stopped by error, ≥200 produced before and some failed after", stats)
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
