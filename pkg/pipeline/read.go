package pipeline

import (
	"context"
	"time"

	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/order"
)

// batch is one transaction's worth of records, decoded.
type batch struct {
	records []kafka.Record
	// epochs are the partitions' epochs while the batch was polled; a
	// partition whose epoch changed during the poll is absent (its records
	// could be from before or after the change).
	epochs map[int32]int64
	// straddled lists the owned partitions whose epoch changed during the
	// poll and that had records in it: they are read again.
	straddled  []int32
	outOfRange []int32       // partitions whose position is outside the partition
	orders     []order.Order // parallel to records
	bad        []badRecord   // parallel to records; class empty for a good order
	// polled is when the poll that filled the batch returned.
	polled time.Time
}

// badRecord says why a record cannot be stored.
type badRecord struct {
	class, reason string
}

// read polls and decodes batches into buffers from free and hands them to
// the writer through ready, until ctx ends or Until is satisfied. It is the
// only goroutine that polls and the only one that moves read positions, so
// a move never happens in the middle of a poll.
func (c *consumer) read(ctx context.Context, free chan *batch, ready chan<- *batch) {
	for ctx.Err() == nil && !c.done() {
		var b *batch
		select {
		case b = <-free:
		case <-ctx.Done():
			return
		}
		c.applyOps()
		c.poll(ctx, b)
		if ctx.Err() != nil {
			// Not written, so its offsets were not passed: it is read
			// again by whoever owns the partitions next.
			return
		}
		if len(b.records) == 0 && len(b.outOfRange) == 0 && len(b.straddled) == 0 {
			free <- b
			continue
		}
		c.decode(b)
		select {
		case ready <- b:
		case <-ctx.Done():
			return
		}
	}
}

// applyOps carries out the moves the writer asked for: pause a partition,
// or move it (and resume it). Each gives the partition a new epoch.
func (c *consumer) applyOps() {
	type pending struct {
		p  int32
		op *seekOp
	}
	var ops []pending
	c.mu.Lock()
	for p, ps := range c.parts {
		if ps.op != nil {
			ops = append(ops, pending{p, ps.op})
		}
	}
	c.mu.Unlock()
	for _, o := range ops {
		if o.op.pause {
			c.reader.Pause(o.p)
		} else {
			c.reader.Seek(map[int32]int64{o.p: o.op.offset})
			c.reader.Resume(o.p)
		}
		c.mu.Lock()
		if ps := c.parts[o.p]; ps != nil && ps.op == o.op {
			c.epochs++
			ps.epoch, ps.fresh, ps.op = c.epochs, true, nil
		}
		c.mu.Unlock()
	}
}

// poll fills b with the next records. The partitions' epochs are read
// before and after: a partition assigned or moved while the poll waited may
// have records from either side of the change, so it is not written from
// this batch but read again.
func (c *consumer) poll(ctx context.Context, b *batch) {
	b.records, b.straddled, b.outOfRange = b.records[:0], b.straddled[:0], b.outOfRange[:0]
	pollCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if c.opts.Until != nil {
		// Re-check Until now and then, even when no records come.
		var cancelT context.CancelFunc
		pollCtx, cancelT = context.WithTimeout(pollCtx, 500*time.Millisecond)
		defer cancelT()
	}
	c.mu.Lock()
	if c.opsPending() {
		// A move was asked after applyOps looked: apply it first. (The
		// check and the wake-up share c.mu, so no request is missed.)
		c.mu.Unlock()
		return
	}
	c.wake = cancel
	before := c.epochMap()
	c.mu.Unlock()

	b.records, b.outOfRange = c.reader.Poll(pollCtx, b.records, c.opts.BatchRows, c.opts.BatchBytes)
	b.polled = time.Now()

	c.mu.Lock()
	c.wake = nil
	after := c.epochMap()
	// A partition the group handed over during the poll, and not moved
	// since, has only records read from where the assignment put it: it
	// was not ours when the poll began, so nothing of an older position
	// could be buffered.
	fresh := map[int32]bool{}
	for p, ps := range c.parts {
		if _, owned := before[p]; !owned && ps.epoch == ps.assigned {
			fresh[p] = true
		}
	}
	c.mu.Unlock()
	clear(b.epochs)
	if b.epochs == nil {
		b.epochs = map[int32]int64{}
	}
	for p, e := range after {
		if before[p] == e || fresh[p] {
			b.epochs[p] = e
		}
	}
	seen := map[int32]bool{}
	for _, r := range b.records {
		if _, ok := b.epochs[r.Partition]; !ok && !seen[r.Partition] {
			seen[r.Partition] = true
			if _, owned := after[r.Partition]; owned {
				b.straddled = append(b.straddled, r.Partition)
			}
		}
	}
	if len(b.records) > 0 {
		c.obs.Consumed(len(b.records))
		c.mu.Lock()
		if c.stats.FirstRecords == 0 {
			c.stats.FirstRecords = time.Since(c.start)
		}
		c.mu.Unlock()
	}
}

// opsPending reports whether a move waits for the reader; c.mu is held.
func (c *consumer) opsPending() bool {
	for _, ps := range c.parts {
		if ps.op != nil {
			return true
		}
	}
	return false
}

// epochMap copies the owned partitions' epochs; c.mu is held.
func (c *consumer) epochMap() map[int32]int64 {
	m := make(map[int32]int64, len(c.parts))
	for p, ps := range c.parts {
		m[p] = ps.epoch
	}
	return m
}

// wakeReader interrupts a poll that waits for records, so that the
// reader applies a move at once.
func (c *consumer) wakeReader() {
	c.mu.Lock()
	if c.wake != nil {
		c.wake()
	}
	c.mu.Unlock()
}

// decode decodes and validates every record of b; bad ones get a class.
func (c *consumer) decode(b *batch) {
	n := len(b.records)
	if cap(b.orders) < n {
		b.orders = make([]order.Order, n)
		b.bad = make([]badRecord, n)
	}
	b.orders, b.bad = b.orders[:n], b.bad[:n]
	for i := range b.records {
		b.bad[i] = badRecord{}
		if err := order.DecodeAndValidate(b.records[i].Value, &b.orders[i]); err != nil {
			class := order.ErrorClass(err)
			if class == "" {
				class = order.ClassDecode
			}
			b.bad[i] = badRecord{class, err.Error()}
		}
	}
}
