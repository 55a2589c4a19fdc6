package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/order"
)

// ProduceOptions bound and pace ProduceOrders.
type ProduceOptions struct {
	Rate     float64       // orders per second; 0: as fast as the broker accepts
	Count    int64         // stop after this many orders; 0: no limit
	Duration time.Duration // stop after this long; 0: no limit
	// FlushTimeout bounds the wait for outstanding deliveries at the end.
	FlushTimeout time.Duration
	// ProgressInterval is how often Progress is called; 0: never.
	ProgressInterval time.Duration
	Progress         func(ProduceStats)
	// Started, if set, is called once connected, before the first order.
	Started func()
	// Observer, if set, is told of every delivery (metrics, readiness),
	// and when records wait StallAfter with none acknowledged (default
	// DefaultStallAfter).
	Observer   ProduceObserver
	StallAfter time.Duration
	// Hold, if set, is called before each order and may wait: it holds
	// the producer back while the consumers are too far behind (the
	// demo's in-memory broker). An error ends generation, as a stop does.
	Hold func(context.Context) error
}

// ProduceStats counts what was produced. Only acknowledged orders count as
// produced.
type ProduceStats struct {
	Produced   int64
	Failed     int64
	Partitions map[int32]int64 // acknowledged orders per partition
	Elapsed    time.Duration
	// Stopped says why generation ended: "count", "duration", "signal",
	// "error" (the topic was deleted).
	Stopped string
}

// Stop reasons of ProduceStats.
const (
	StoppedCount    = "count"
	StoppedDuration = "duration"
	StoppedSignal   = "signal"
	StoppedError    = "error"
	// StoppedEnd: a reader (dlq replay) read all it was to read.
	StoppedEnd = "end"
)

// ErrNotDelivered is returned when some orders were not acknowledged.
var ErrNotDelivered = errors.New("orders not delivered")

// deliveryLog logs failed deliveries with their order_id, at most
// maxFailureLogs per progress interval so a broker outage at 5,000 orders/s
// does not bury the terminal; the rest are counted and summarised.
const maxFailureLogs = 20

// orderCounter is the delivery side of ProduceOrders: it counts what the
// broker acknowledged and recycles the value buffers.
type orderCounter struct {
	log        *slog.Logger
	obs        ProduceObserver
	produced   atomic.Int64
	failed     atomic.Int64
	mu         sync.Mutex
	partitions map[int32]int64
	logged     int
	suppressed int64
	lastErr    error // the last failure other than the producer's closing
	pool       sync.Pool
}

func (c *orderCounter) delivered(d kafka.Delivery) {
	if c.obs != nil {
		c.obs.Delivered(d.Err)
	}
	if d.Err != nil {
		c.failed.Add(1)
		c.mu.Lock()
		if !errors.Is(d.Err, kafka.ErrClosed) {
			c.lastErr = d.Err
		}
		if c.logged < maxFailureLogs {
			c.logged++
			c.log.Error("order not delivered", "order_id", orderID(d.Value), "err", d.Err)
		} else {
			c.suppressed++
		}
		c.mu.Unlock()
	} else {
		c.produced.Add(1)
		c.mu.Lock()
		c.partitions[d.Partition]++
		c.mu.Unlock()
	}
	buf := d.Value[:0]
	c.pool.Put(&buf)
}

func (c *orderCounter) buffer() []byte {
	if b, ok := c.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 0, 1024)
}

// snapshot returns the counts so far and resets the failure-log budget.
func (c *orderCounter) snapshot() ProduceStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.suppressed > 0 {
		c.log.Error("more orders not delivered", "count", c.suppressed)
		c.suppressed = 0
	}
	c.logged = 0
	parts := make(map[int32]int64, len(c.partitions))
	for p, n := range c.partitions {
		parts[p] = n
	}
	return ProduceStats{Produced: c.produced.Load(), Failed: c.failed.Load(), Partitions: parts}
}

// orderID finds the order_id in an encoded order without decoding it all;
// only failed deliveries need it.
func orderID(value []byte) string {
	const prefix = `{"order_id":"`
	if !bytes.HasPrefix(value, []byte(prefix)) {
		return ""
	}
	rest := value[len(prefix):]
	if i := bytes.IndexByte(rest, '"'); i >= 0 {
		return string(rest[:i])
	}
	return ""
}

// ProduceOrders connects a producer and produces orders from src, keyed by
// customer_id, paced at opts.Rate, until Count or Duration is reached or ctx
// is cancelled (the first SIGINT/SIGTERM). It then stops generating and
// waits up to FlushTimeout for every order sent to be acknowledged; what is
// still unacknowledged then counts as failed. Only acknowledged orders count
// as produced. The error is ErrNotDelivered when any order failed, or the
// connection error when Kafka could not be reached at start.
func ProduceOrders(ctx context.Context, cluster kafka.Cluster, cfg config.KafkaProducer, topic string, src order.Source, opts ProduceOptions) (ProduceStats, error) {
	c := &orderCounter{log: cluster.Logger, obs: opts.Observer, partitions: map[int32]int64{}}
	// Generation also ends when the topic is deleted under the producer:
	// every order after that would fail.
	genCtx, stopGen := context.WithCancelCause(ctx)
	defer stopGen(nil)
	p, err := kafka.NewProducer(ctx, cluster, cfg, kafka.ProducerOptions{Topic: topic, Headers: order.WireHeaders,
		OnDelivery: c.delivered, TopicGone: stopGen})
	if err != nil {
		return ProduceStats{}, err
	}
	if opts.Started != nil {
		opts.Started()
	}
	start := time.Now()
	said := context.AfterFunc(ctx, func() {
		cluster.Logger.Info("stopping: flushing the orders in flight; a second signal ends the process at once")
	})
	defer said()
	stopProgress := c.progress(opts, start)
	stopWatch := c.watchAcks(p, opts.StallAfter)
	stopped := produceLoop(genCtx, p, c, src, opts)

	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.FlushTimeout)
	defer cancel()
	flushErr := p.Flush(fctx)
	if flushErr != nil {
		cluster.Logger.Warn("flush timed out: orders not yet acknowledged count as failed",
			"unacknowledged", p.Buffered(), "flush_timeout", opts.FlushTimeout)
	}
	stopWatch()
	p.Close() // fails whatever is still buffered; its deliveries are counted
	stopProgress()

	stats := c.snapshot()
	stats.Elapsed = time.Since(start)
	stats.Stopped = stopped
	if stopped == StoppedError {
		return stats, context.Cause(genCtx)
	}
	if stats.Failed == 0 {
		return stats, nil
	}
	c.mu.Lock()
	last := c.lastErr
	c.mu.Unlock()
	failure := fmt.Errorf("%w: %d of %d", ErrNotDelivered, stats.Failed, stats.Failed+stats.Produced)
	if flushErr != nil {
		// Failed by the producer's closing, not by the broker: sent or not,
		// written or not, unconfirmed.
		failure = fmt.Errorf("%w were still unacknowledged when flush-timeout %s ran out, and some may have reached "+
			"the topic (raise --flush-timeout)", failure, opts.FlushTimeout)
	}
	if last != nil {
		failure = fmt.Errorf("%w (the last: %w)", failure, last)
	}
	return stats, failure
}

// produceLoop generates and sends until a stop condition and says which.
func produceLoop(ctx context.Context, p *kafka.Producer, c *orderCounter, src order.Source, opts ProduceOptions) string {
	// The pacer and the deadline share one start, so the pacer's last slot,
	// 1/R before the end, lies before the deadline however late the loop
	// runs; and a paced run stops at R·D orders, so the slot at D itself,
	// which the deadline's timer may not have marked yet, sends nothing.
	start := time.Now()
	pace := pacer(opts.Rate, start)
	genCtx, paced := ctx, int64(-1)
	if opts.Duration > 0 {
		var cancel context.CancelFunc
		genCtx, cancel = context.WithDeadline(ctx, start.Add(opts.Duration))
		defer cancel()
		if opts.Rate > 0 {
			paced = int64(math.Ceil(opts.Rate*opts.Duration.Seconds() - 1e-9))
		}
	}
	// Keys are per customer and never change: make each []byte once.
	keys := map[string][]byte{}
	var o order.Order
	for n := int64(0); ; n++ {
		if opts.Count > 0 && n == opts.Count {
			return StoppedCount
		}
		if n == paced {
			<-genCtx.Done() // the run lasts its duration
			return stopReason(ctx)
		}
		if opts.Hold != nil && opts.Hold(genCtx) != nil {
			return stopReason(ctx)
		}
		// Wait fails early when the next slot lies past the duration's end.
		if pace(genCtx) != nil || genCtx.Err() != nil {
			return stopReason(ctx)
		}
		src.Next(&o)
		key, ok := keys[o.CustomerID]
		if !ok {
			key = []byte(o.CustomerID)
			keys[o.CustomerID] = key
		}
		if p.Send(genCtx, key, order.AppendJSON(c.buffer(), &o)) != nil {
			return stopReason(ctx)
		}
	}
}

// stopReason tells a stop by signal (ctx cancelled) or for the topic's
// deletion (ctx cancelled with ErrTopicMissing) from the end of --duration.
func stopReason(ctx context.Context) string {
	switch {
	case errors.Is(context.Cause(ctx), kafka.ErrTopicMissing):
		return StoppedError
	case ctx.Err() != nil:
		return StoppedSignal
	}
	return StoppedDuration
}

// progress calls opts.Progress every ProgressInterval until stopped; the
// returned func stops it and makes one last call.
func (c *orderCounter) progress(opts ProduceOptions, start time.Time) (stop func()) {
	if opts.Progress == nil || opts.ProgressInterval <= 0 { // 0: never
		return func() {}
	}
	return every(opts.ProgressInterval, func() {
		s := c.snapshot()
		s.Elapsed = time.Since(start)
		opts.Progress(s)
	})
}

// DefaultStallAfter is how long records may wait with none acknowledged
// before the producer tells its observer it is stalled (not ready). A broker
// that answers acknowledges within milliseconds (bench e2e's worst latency
// is a quarter of a second); one that is away fails no record until
// delivery-timeout, two minutes by default, and readiness kept by
// deliveries alone would say "ready" all that while.
const DefaultStallAfter = 5 * time.Second

// watchAcks tells the observer, while records wait and none has been
// acknowledged (or failed) for after, that the producer is stalled.
func (c *orderCounter) watchAcks(p *kafka.Producer, after time.Duration) (stop func()) {
	if c.obs == nil {
		return func() {}
	}
	if after <= 0 {
		after = DefaultStallAfter
	}
	last, since := int64(-1), time.Now()
	return every(after/5, func() {
		n, waiting := c.produced.Load()+c.failed.Load(), p.Buffered()
		if n != last || waiting == 0 {
			last, since = n, time.Now()
			return
		}
		if d := time.Since(since); d >= after {
			c.obs.Stalled(fmt.Sprintf("the broker has acknowledged no record for %s, %d waiting", d.Round(after/5), waiting))
		}
	})
}

// Pacer returns a wait function that lets perSecond calls through per
// second, spread evenly (a token bucket, golang.org/x/time/rate); for
// perSecond ≤ 0 it never waits. The bucket holds one second of tokens, so
// a stall of the caller up to a second long (a GC pause, a busy CPU, a
// checkpoint of the database beside it) is caught up at once instead of
// lost: the orders due meanwhile go out late rather than never, and over a
// run the rate does not drift below the target. (With 50 ms of tokens,
// 10,000 orders/s for 60 s on a busy machine lost up to 10.) It starts
// with one token, so the run does not open with a burst but its first call
// goes at once: R calls per second for D seconds let R·D calls through,
// the first at 0 and the last at D − 1/R.
func Pacer(perSecond float64) func(context.Context) error {
	return pacer(perSecond, time.Now())
}

// pacer is Pacer started at start.
func pacer(perSecond float64, start time.Time) func(context.Context) error {
	if perSecond <= 0 {
		return func(context.Context) error { return nil }
	}
	l := pacerLimiter(perSecond, start)
	return func(ctx context.Context) error { return l.Wait(ctx) }
}

// pacerLimiter is Pacer's token bucket, as it stands at start.
func pacerLimiter(perSecond float64, start time.Time) *rate.Limiter {
	burst := max(1, int(perSecond))
	l := rate.NewLimiter(rate.Limit(perSecond), burst)
	l.AllowN(start, burst-1)
	return l
}
