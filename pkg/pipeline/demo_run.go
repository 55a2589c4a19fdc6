package pipeline

// The demo's run: the producer, the consumers, the trimming of the broker,
// the drain at the end, the live view and the database's answers.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/foodpipe/foodpipe/pkg/store"
)

// run produces, consumes and injects the poison, and returns once every
// consumer stopped. The consumers outlive a signal by a bounded drain, so
// that a stopped run still ends with every record it produced stored.
func (d *Demo) run(ctx context.Context) (stats ProduceStats, drained bool, err error) {
	d.mu.Lock()
	d.running = time.Now()
	d.mu.Unlock()
	consumeCtx, stopConsumers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsumers()
	var wg sync.WaitGroup
	errs := make([]error, d.opts.Consumers)
	for i := range d.opts.Consumers {
		wg.Go(func() { errs[i] = d.consume(consumeCtx, i) })
	}
	// Not consumeCtx: the last trim runs after the consumers stopped.
	stopTrim := every(d.opts.TrimInterval, func() { d.trim(context.WithoutCancel(ctx)) })
	stopView := every(d.opts.ViewInterval, d.view)
	defer stopView()

	poisoned := make(chan error, 1)
	go func() { poisoned <- d.injectPoison(ctx) }()
	stats, err = d.produce(ctx)
	if perr := <-poisoned; err == nil {
		err = perr
	}
	if err == nil {
		d.setPhase("draining")
		timeout := d.opts.DrainTimeout
		if ctx.Err() != nil {
			timeout = d.opts.StopDrainTimeout
		}
		drained, err = d.drain(consumeCtx, timeout, ctx.Err() != nil)
	}
	stopConsumers()
	wg.Wait()
	stopTrim()
	d.setPhase("done")
	if err != nil {
		return stats, false, err
	}
	return stats, drained, errors.Join(errs...)
}

func (d *Demo) setPhase(p string) {
	d.mu.Lock()
	d.phase = p
	d.mu.Unlock()
}

func (d *Demo) produce(ctx context.Context) (ProduceStats, error) {
	gen, err := NewGenerator(d.opts.Seed, d.opts.Customers)
	if err != nil {
		return ProduceStats{}, err
	}
	d.setPhase("producing")
	return ProduceOrders(ctx, d.cluster, d.opts.Producer, d.opts.Kafka.Topic, gen, ProduceOptions{
		Rate: d.opts.Rate, Duration: d.opts.Duration, FlushTimeout: d.opts.Producer.FlushTimeout,
		Observer: deliveries{acked: &d.acked, failed: &d.failed, next: d.opts.Observer},
		Hold:     d.hold(),
	})
}

// deliveries counts the producer's deliveries for the view and passes them
// on to the demo's observer (metrics, readiness), if there is one.
type deliveries struct {
	acked, failed *atomic.Int64
	next          ProduceObserver
}

func (o deliveries) Delivered(err error) {
	if err == nil {
		o.acked.Add(1)
	} else {
		o.failed.Add(1)
	}
	if o.next != nil {
		o.next.Delivered(err)
	}
}

func (o deliveries) Stalled(reason string) {
	if o.next != nil {
		o.next.Stalled(reason)
	}
}

// memberInterval is how often the producer and the consumers report to the
// view: at least every second, whatever the view's interval (0: none).
func (d *Demo) memberInterval() time.Duration {
	if v := d.opts.ViewInterval; v > 0 && v < time.Second {
		return v
	}
	return time.Second
}

// hold is the producer's wait for the backlog bound, if there is one.
func (d *Demo) hold() func(context.Context) error {
	if d.backlog == nil {
		return nil
	}
	return d.backlog.wait
}

// consume runs consumer i of the group until ctx ends.
func (d *Demo) consume(ctx context.Context, i int) error {
	opts := d.opts.Consume
	opts.Topic, opts.DLQTopic = d.opts.Kafka.Topic, d.opts.Kafka.DLQ()
	opts.ProgressInterval = d.memberInterval()
	name := fmt.Sprintf("consumer-%d", i+1)
	log := d.opts.Log.With("consumer", name)
	opts.Progress = func(s Stats) {
		d.mu.Lock()
		defer d.mu.Unlock()
		v := ConsumerView{Name: name, Partitions: s.Partitions, Stored: s.Stored, Duplicates: s.Duplicates,
			DeadLettered: s.DeadLettered, Batches: s.Batches, Lag: s.Lag}
		if len(v.Partitions) == 0 && ctx.Err() != nil {
			v.Partitions = d.consumers[i].Partitions // what it owned before it left the group
		}
		d.consumers[i] = v
	}
	d.mu.Lock()
	d.consumers[i] = ConsumerView{Name: name, DeadLettered: map[string]int64{}}
	d.mu.Unlock()
	if d.opts.Observer != nil {
		opts.Observer = d.opts.Observer.Member(name)
	}
	cluster := d.cluster
	cluster.Logger = log
	_, err := Consume(ctx, cluster, d.db, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// trim deletes the broker's records that every consumer stored: the
// in-process broker keeps records in memory, and the stored offsets in
// PostgreSQL say which ones nobody needs again. It also tells the backlog
// bound how far PostgreSQL got.
func (d *Demo) trim(ctx context.Context) {
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	stored, err := d.db.LoadOffsets(tctx, d.opts.Consume.Group, d.opts.Kafka.Topic)
	if err != nil {
		return
	}
	below := make(map[int32]int64, len(stored))
	var total int64
	for p, s := range stored {
		below[p] = s.Next
		total += s.Next
	}
	if d.backlog != nil {
		d.backlog.storedUpTo(total)
	}
	if err := d.admin.DeleteBefore(tctx, d.opts.Kafka.Topic, below); err != nil && ctx.Err() == nil {
		d.opts.Log.Debug("trimming the broker's stored records failed", "err", err)
	}
}

// drain waits until PostgreSQL holds the offsets of every record produced,
// at most timeout. Past it, a drain after a signal gives up quietly
// (drained false); one after the end of the duration is an error.
func (d *Demo) drain(ctx context.Context, timeout time.Duration, stopping bool) (bool, error) {
	end, err := d.admin.EndOffsets(ctx, d.opts.Kafka.Topic)
	if err != nil {
		return false, err
	}
	deadline := time.Now().Add(timeout)
	for {
		stored, err := d.db.LoadOffsets(ctx, d.opts.Consume.Group, d.opts.Kafka.Topic)
		if err == nil {
			next := make(map[int32]int64, len(stored))
			for p, s := range stored {
				next[p] = s.Next
			}
			if CaughtUp(end)(next) {
				return true, nil
			}
		}
		if time.Now().After(deadline) {
			if stopping {
				d.opts.Log.Warn("stopping before every record produced was stored", "stored_offsets", storedNext(stored),
					"end_offsets", end)
				return false, nil
			}
			return false, fmt.Errorf("the consumers did not store every record within %s of the end of producing (stored offsets %s, end offsets %s)",
				timeout, fmtOffsets(storedNext(stored)), fmtOffsets(end))
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return false, err
		}
	}
}

// fmtOffsets spells offsets as the flags and text logs do: 0:12,1:40.
func fmtOffsets(m map[int32]int64) string {
	s := ""
	for _, p := range slices.Sorted(maps.Keys(m)) {
		if s != "" {
			s += ","
		}
		s += fmt.Sprintf("%d:%d", p, m[p])
	}
	return s
}

// storedNext is the next offset of each stored partition.
func storedNext(m map[int32]store.StoredOffset) map[int32]int64 {
	out := make(map[int32]int64, len(m))
	for p, s := range m {
		out[p] = s.Next
	}
	return out
}

func (d *Demo) view() {
	if d.opts.View == nil {
		return
	}
	d.mu.Lock()
	v := DemoView{Elapsed: time.Since(d.running), Duration: d.opts.Duration, Phase: d.phase,
		Produced: d.acked.Load(), Failed: d.failed.Load(), Poisoned: len(d.poison)}
	for _, c := range d.consumers {
		c.DeadLettered = maps.Clone(c.DeadLettered)
		v.Consumers = append(v.Consumers, c)
	}
	d.mu.Unlock()
	d.opts.View(v)
}

// answers asks the database what it holds, and the dead-letter topic how
// many records it has.
func (d *Demo) answers(ctx context.Context, res *DemoResult) (err error) {
	if res.Rows, err = d.db.CountOrders(ctx); err != nil {
		return err
	}
	if res.ByStatus, err = d.db.OrdersByStatus(ctx); err != nil {
		return err
	}
	if res.TopItems, err = d.db.TopItems(ctx, 5); err != nil {
		return err
	}
	if res.RevenueByHour, err = d.db.RevenueByHour(ctx); err != nil {
		return err
	}
	end, err := d.admin.EndOffsets(ctx, d.opts.Kafka.DLQ())
	if err != nil {
		return err
	}
	for _, n := range end {
		res.DeadLetters += n
	}
	start, err := d.admin.StartOffsets(ctx, d.opts.Kafka.Topic)
	if err != nil {
		return err
	}
	for _, n := range start {
		res.Trimmed += n
	}
	return nil
}
