package pipeline

// ProduceOrders against a broker that fails under it: lost, slow to
// acknowledge, stalled, or with its topic deleted. franz-go's kfake, which
// the tests can stop or hold mid-run.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/kafka"
)

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
