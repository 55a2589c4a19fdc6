package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/foodpipe/foodpipe/pkg/store"
)

// run reads ahead of writing: while PostgreSQL stores batch n, batch n+1
// is polled and decoded, and grown until it is full or the writer is free.
// Three batch buffers go round: one being written, one full and waiting
// (a backlog), one being filled.
func (c *consumer) run(ctx context.Context) error {
	ready := make(chan *batch, 1)
	free := make(chan *batch, 3)
	for range 3 {
		free <- &batch{}
	}
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(ready)
		c.read(rctx, free, ready)
	})
	// Stop the reader before waiting for it: it may be waiting in a poll.
	defer func() {
		stop()
		wg.Wait()
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		due, next := c.heldDue(time.Now())
		if len(due) > 0 {
			if err := c.reposition(ctx, due); err != nil {
				return stopping(ctx, err)
			}
		}
		var wait <-chan time.Time
		if next > 0 {
			timer.Reset(next)
			wait = timer.C
		}
		c.setIdle(true)
		var b *batch
		select {
		case x, ok := <-ready:
			if !ok {
				return nil
			}
			b = x
		case <-wait:
			c.setIdle(false)
			continue
		case <-ctx.Done():
			return nil
		}
		c.setIdle(false)
		err := c.process(ctx, b)
		free <- b
		if err != nil {
			return stopping(ctx, err)
		}
		if ctx.Err() != nil || c.done() {
			return nil
		}
	}
}

// setIdle says whether the writer waits for a batch; becoming idle ends a
// poll that only adds to a batch in hand, so that the writer gets it now.
func (c *consumer) setIdle(idle bool) {
	c.mu.Lock()
	c.idle = idle
	if idle && c.wake != nil && c.adding {
		c.wake()
	}
	c.mu.Unlock()
}

// stopping turns an error caused by the stop itself into a clean stop.
func stopping(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ErrPermanent) {
		return nil
	}
	return err
}

// process writes a decoded batch, retrying while the database is
// unavailable, until it is stored, fenced away or ctx ends.
func (c *consumer) process(ctx context.Context, b *batch) error {
	if len(b.outOfRange) > 0 {
		c.log.Warn("fetch position outside the partition; checking the stored offsets",
			"topic", c.opts.Topic, "partitions", b.outOfRange)
		if err := c.reposition(ctx, b.outOfRange); err != nil {
			return err
		}
	}
	c.reread(b.straddled)
	var lost *lostCommit // an attempt whose commit's answer never came
	for attempt := 0; ctx.Err() == nil; attempt++ {
		w, again := c.prepare(b)
		if len(again) > 0 {
			if err := c.reposition(ctx, again); err != nil {
				return err
			}
		}
		if len(w.offsets) == 0 {
			return nil // nothing left that we own
		}
		res, err := c.write(ctx, &w)
		var fenced *store.FencedError
		switch {
		case err == nil:
			c.committed(&w, res)
			if attempt > 0 {
				c.setOutage("")
			}
			return nil
		case errors.As(err, &fenced) && lost != nil && c.landed(ctx, lost):
			// Our own commit, whose answer was lost, moved the offsets.
			c.landedAfterAll(lost)
			c.setOutage("")
			return nil
		case errors.As(err, &fenced):
			lost = nil
			parts := make([]int32, len(fenced.Partitions))
			for i, tp := range fenced.Partitions {
				parts[i] = tp.Partition
			}
			if fenced.Locked {
				c.hold(parts)
				continue
			}
			c.log.Warn("batch fenced: another consumer wrote these partitions; reloading their offsets",
				"topic", c.opts.Topic, "partitions", parts)
			if err := c.reposition(ctx, parts); err != nil {
				return err
			}
			continue
		case ctx.Err() != nil:
			// Stopping: the batch was rolled back, unless its commit was
			// sent and the answer lost on the way.
			if errors.Is(err, store.ErrCommitUnknown) {
				lost = &lostCommit{w: w, res: res}
			}
			c.settle(ctx, lost)
			return nil
		case errors.Is(err, ErrPermanent):
			return fmt.Errorf("store batch: %w", err)
		case errors.Is(err, store.ErrCommitUnknown):
			lost = &lostCommit{w: w, res: res}
		}
		d := backoff(attempt, c.opts.RetryMin, c.opts.RetryMax)
		c.log.Warn("storing batch failed; retrying", "attempt", attempt+1, "retry_in", d.Round(time.Millisecond).String(),
			"records", len(w.orders)+len(w.dead), "err", err)
		c.obs.Retrying("store batch", err)
		c.setOutage(outageReason("storing batches", err))
		if err := sleep(ctx, d); err != nil {
			c.settle(ctx, lost)
			return nil
		}
	}
	c.settle(ctx, lost)
	return nil // stopping: what was not committed is read again by the next owner
}

// settle decides, when a stop comes while a commit's outcome is unknown,
// whether it landed, asking the database for at most StopGrace (a second
// at least): counted as stored if it did; if the database cannot say, its
// orders are counted in doubt. Either way the stored offsets decide where
// the next owner resumes: nothing is lost or stored twice.
func (c *consumer) settle(ctx context.Context, l *lostCommit) {
	if l == nil {
		return
	}
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(c.opts.StopGrace, time.Second))
	defer cancel()
	landed, known := c.outcome(qctx, l)
	switch {
	case landed:
		c.landedAfterAll(l)
	case !known:
		c.mu.Lock()
		c.stats.InDoubt += int64(len(l.w.orders))
		c.mu.Unlock()
		c.log.Warn("stopping with a commit whose answer never came and a database that cannot say whether it landed: "+
			"its orders are stored or not as the stored offsets say, and the next owner resumes from those",
			"topic", c.opts.Topic, "orders", len(l.w.orders), "offsets", l.w.offsets)
	}
}

// landedAfterAll counts a lost commit found to have landed as stored.
func (c *consumer) landedAfterAll(l *lostCommit) {
	c.log.Info("the database's answer to a commit was lost, but the commit had landed: the batch is stored",
		"topic", c.opts.Topic, "offsets", l.w.offsets)
	c.committed(&l.w, l.res)
}

// lostCommit is a write attempt whose commit may have landed: the
// connection was lost before the database answered.
type lostCommit struct {
	w   work
	res store.WriteResult
}

// landed reports whether the stored offsets of every partition of the lost
// commit's batch are where that batch left them: then it was that commit,
// not another consumer, that moved them.
func (c *consumer) landed(ctx context.Context, l *lostCommit) bool {
	landed, _ := c.outcome(ctx, l) // unknown: the fence path reloads and tells
	return landed
}

// outcome reads the stored offsets to learn whether a lost commit landed;
// known is false when they cannot be read.
func (c *consumer) outcome(ctx context.Context, l *lostCommit) (landed, known bool) {
	stored, err := c.sink.LoadOffsets(ctx, c.opts.Group, c.opts.Topic)
	if err != nil {
		return false, false
	}
	for _, o := range l.w.offsets {
		if s, ok := stored[o.Partition]; !ok || s.Next != o.Next {
			return false, true
		}
	}
	return true, true
}

// work is a batch prepared for one write attempt.
type work struct {
	records []*kafka.Record // the records of orders, parallel to orders
	orders  []*order.Order
	dead    []kafka.DeadLetter // records that failed decode or validate
	offsets []store.Offset
	parts   map[int32]*partition // the states the offsets were computed from
	// rejected are the orders PostgreSQL refused, filled in by write.
	rejected []kafka.DeadLetter
	// polled is when each order's record was polled, parallel to orders;
	// took is how long the write took to its commit, at when it committed.
	polled []time.Time
	took   time.Duration
	at     time.Time
}

// prepare keeps the records of partitions we own, polled in their current
// epoch and not stored yet, and computes the offsets each partition
// advances from and to. A partition whose first record is not the one the
// stored offset names (and that is not the first read after positioning it,
// where the broker may hold nothing between) is returned in again, unwritten.
func (c *consumer) prepare(b *batch) (w work, again []int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w.parts = map[int32]*partition{}
	next := map[int32]int64{}
	skip := map[int32]bool{}
	poll := 0 // the poll that brought record i
	for i := range b.records {
		for poll < len(b.polls)-1 && i >= b.polls[poll].end {
			poll++
		}
		r := &b.records[i]
		p := r.Partition
		ps := c.parts[p]
		if ps == nil || skip[p] || !ps.writable(b.epochs[p]) || r.Offset < ps.next {
			continue // not ours, moved, held, or already stored
		}
		if end, ok := c.opts.StopAt[p]; ok && r.Offset >= end {
			continue // past the end of a batch job
		}
		want, seen := next[p]
		if !seen {
			want = ps.next
		}
		if r.Offset != want && !seen {
			// Before a transaction marker, the gap is the records of the
			// transaction it aborts (read_committed hides them).
			if !ps.fresh && !r.Control {
				c.log.Warn("records missing between two batches; reading the partition again from its stored offset",
					"topic", c.opts.Topic, "partition", p, "want_offset", want, "got_offset", r.Offset)
				skip[p] = true
				again = append(again, p)
				continue
			}
			c.log.Debug("the broker holds no records to read between the stored offset and the first record (transaction markers or aborted records)",
				"topic", c.opts.Topic, "partition", p, "stored_offset", want, "first_offset", r.Offset)
		}
		w.parts[p] = ps
		next[p] = r.Offset + 1
		if r.Control {
			continue // a transaction marker: its offset is passed, nothing stored
		}
		if bad := b.bad[i]; bad.class != "" {
			w.dead = append(w.dead, kafka.DeadLetter{Record: *r, Class: bad.class, Reason: bad.reason})
			continue
		}
		w.records = append(w.records, r)
		w.orders = append(w.orders, &b.orders[i])
		w.polled = append(w.polled, b.polls[poll].at)
	}
	for _, p := range again {
		delete(w.parts, p)
		delete(next, p)
	}
	if len(again) > 0 {
		dropPartitions(&w, skip)
	}
	for p, n := range next {
		ps := w.parts[p]
		w.offsets = append(w.offsets, store.Offset{Topic: c.opts.Topic, Partition: p, Expected: ps.stored, Next: n, TopicID: ps.topicID})
	}
	slices.SortFunc(w.offsets, func(a, b store.Offset) int { return int(a.Partition - b.Partition) })
	return w, again
}

// dropPartitions removes the records of the skipped partitions that were
// taken before the partition was found wanting.
func dropPartitions(w *work, skip map[int32]bool) {
	k := 0
	for i, r := range w.records {
		if !skip[r.Partition] {
			w.records[k], w.orders[k], w.polled[k] = r, w.orders[i], w.polled[i]
			k++
		}
	}
	w.records, w.orders, w.polled = w.records[:k], w.orders[:k], w.polled[:k]
	w.dead = slices.DeleteFunc(w.dead, func(d kafka.DeadLetter) bool { return skip[d.Record.Partition] })
}

// write stores one prepared batch. Dead letters are produced, and
// acknowledged, inside the database transaction before it commits: an
// offset is never passed before its record is either stored or in the
// dead-letter topic. A dead letter acknowledged in an attempt that did not
// commit is not sent again by the next attempt; only a crash between the
// acknowledgement and the commit can make one appear twice (its headers
// name the source offset). A stored row never does.
func (c *consumer) write(ctx context.Context, w *work) (store.WriteResult, error) {
	// The batch in hand finishes even when a stop is asked meanwhile, but
	// within a bound: a database that hangs must not hang the shutdown.
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(c.opts.StopGrace, cancel) })
	defer stop()
	began := time.Now()
	c.obs.Writing(began)
	defer c.obs.Writing(time.Time{})

	var dlqErr error
	res, err := c.sink.WriteBatch(wctx, c.opts.Group, w.orders, w.offsets, func(rejected []store.Rejected) error {
		w.rejected = w.rejected[:0]
		for _, r := range rejected {
			w.rejected = append(w.rejected, kafka.DeadLetter{Record: *w.records[r.Index], Class: order.ClassStore, Reason: r.Reason})
		}
		if dlqErr = c.deadLetter(wctx, append(slices.Clip(w.rejected), w.dead...)); dlqErr != nil {
			return dlqErr
		}
		c.pause(PauseInTx)
		return nil
	})
	w.at = time.Now()
	w.took = w.at.Sub(began)
	if err != nil && dlqErr != nil {
		if errors.Is(dlqErr, kafka.ErrTopicMissing) {
			// Deleted under us: no retry brings it back, and every
			// partition would wait behind this batch.
			return res, fmt.Errorf("%w: %w", ErrPermanent, dlqErr)
		}
		// Kafka refused or lost the dead letters: the batch is retried, as
		// everything is while Kafka is away, and its offsets wait.
		return res, err
	}
	return res, sinkError(err)
}

// deadLetter produces the dead letters not yet acknowledged and waits for
// them.
func (c *consumer) deadLetter(ctx context.Context, dead []kafka.DeadLetter) error {
	c.mu.Lock()
	dead = slices.DeleteFunc(dead, func(d kafka.DeadLetter) bool {
		return c.acked[position{d.Record.Partition, d.Record.Offset}]
	})
	c.mu.Unlock()
	// The writer does not hold c.mu while producing: acked takes it.
	return c.dlq.Write(ctx, dead, func(i int) {
		c.mu.Lock()
		c.acked[position{dead[i].Record.Partition, dead[i].Record.Offset}] = true
		c.mu.Unlock()
	})
}
