package pipeline

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/order"
)

// batch is one transaction's worth of records, decoded. While the writer
// is busy the reader keeps polling into the batch it fills, so that a slow
// commit is followed by one transaction that takes everything that came
// meanwhile, not by a queue of small ones.
type batch struct {
	records []kafka.Record
	bytes   int // keys and values of records
	// epochs are the partitions' epochs while the batch was polled; a
	// partition whose epoch changed during a poll is absent (its records
	// could be from before or after the change).
	epochs map[int32]int64
	// owned are the partitions owned, with their epochs, when the last
	// poll returned: a later poll appends to the batch only if nothing
	// moved since.
	owned map[int32]int64
	// straddled lists the owned partitions whose epoch changed during a
	// poll and that had records in the batch: they are read again.
	straddled  []int32
	outOfRange []int32       // partitions whose position is outside the partition
	orders     []order.Order // parallel to records
	bad        []badRecord   // parallel to records; class empty for a good order
	// polls says when each poll that filled the batch returned: records
	// from polls[i-1].end to polls[i].end came with polls[i].
	polls []pollMark
}

// pollMark is one poll of a batch: the records before end, and when it
// returned.
type pollMark struct {
	end int
	at  time.Time
}

// reset empties b for a new batch, keeping its buffers.
func (b *batch) reset() {
	b.records, b.straddled, b.outOfRange, b.polls = b.records[:0], b.straddled[:0], b.outOfRange[:0], b.polls[:0]
	b.bytes = 0
	clear(b.epochs)
	clear(b.owned)
}

// badRecord says why a record cannot be stored.
type badRecord struct {
	class, reason string
}

// read polls and decodes batches into buffers from free and hands them to
// the writer through ready, until ctx ends or Until is satisfied. It is the
// only goroutine that polls and the only one that moves read positions, so
// a move never happens in the middle of a poll. While the writer is busy
// it keeps adding to the batch in hand (see grow).
func (c *consumer) read(ctx context.Context, free chan *batch, ready chan<- *batch) {
	for ctx.Err() == nil && !c.done() {
		var b *batch
		select {
		case b = <-free:
		case <-ctx.Done():
			return
		}
		b.reset()
		c.applyOps()
		c.poll(ctx, b)
		for ctx.Err() == nil && c.grow(b) {
			c.poll(ctx, b)
		}
		if ctx.Err() != nil {
			// Not written, so its offsets were not passed: it is read
			// again by whoever owns the partitions next.
			return
		}
		if len(b.records) == 0 && len(b.outOfRange) == 0 && len(b.straddled) == 0 {
			free <- b
			continue
		}
		select {
		case ready <- b:
		case <-ctx.Done():
			return
		}
	}
}

// grow reports whether the reader should poll more into b before handing
// it over: it holds records, the writer is busy, the batch has room, no
// partition was assigned, revoked or moved since its last poll, and none
// waits to be moved or read again.
func (c *consumer) grow(b *batch) bool {
	if len(b.records) == 0 || len(b.straddled) > 0 || len(b.outOfRange) > 0 ||
		len(b.records) >= c.opts.BatchRows || b.bytes >= c.opts.BatchBytes {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.opsPending() && c.addable(b)
}

// addable reports whether a poll may add to b, which holds records: the
// writer is busy, and no partition was assigned, revoked or moved since
// b's last poll. c.mu is held.
func (c *consumer) addable(b *batch) bool {
	return !c.idle && maps.Equal(b.owned, c.epochMap())
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

// poll adds the next records to b. The partitions' epochs are read before
// and after: a partition assigned or moved while the poll waited may have
// records from either side of the change, so it is not written from this
// batch but read again. A poll that adds to a batch holding records does
// not wait for the writer: it returns at once when the writer is idle
// (or becomes idle), and does not poll at all when a partition moved since
// the batch's last poll.
func (c *consumer) poll(ctx context.Context, b *batch) {
	pollCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if c.opts.Until != nil {
		// Re-check Until now and then, even when no records come.
		var cancelT context.CancelFunc
		pollCtx, cancelT = context.WithTimeout(pollCtx, 500*time.Millisecond)
		defer cancelT()
	}
	adding := len(b.records) > 0
	c.mu.Lock()
	if c.opsPending() || adding && !c.addable(b) {
		// A move was asked after applyOps looked: apply it first. Or the
		// batch must go as it is (grow looked without the lock). (The
		// checks and the wake-ups share c.mu, so no request is missed.)
		c.mu.Unlock()
		return
	}
	c.wake, c.adding = cancel, adding
	before := c.epochMap()
	c.mu.Unlock()

	n := len(b.records)
	var added int
	var outOfRange []int32
	b.records, added, outOfRange = c.reader.Poll(pollCtx, b.records, c.opts.BatchRows, c.opts.BatchBytes-b.bytes)
	b.polls = append(b.polls, pollMark{end: len(b.records), at: time.Now()})
	b.bytes += added
	b.outOfRange = append(b.outOfRange, outOfRange...)

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
	b.settle(n, before, after, fresh)
	if len(b.records) > n {
		c.obs.Consumed(c.decode(b, n))
		c.mu.Lock()
		if c.stats.FirstRecords == 0 {
			c.stats.FirstRecords = time.Since(c.start)
		}
		c.mu.Unlock()
	}
}

// settle updates b's epochs after a poll that added the records from
// index n on. before and after are the owned partitions' epochs around the
// poll, fresh those the group handed over during it. A partition keeps an
// epoch only if it did not change during the poll (or is fresh) and, when
// the batch holds records of it from earlier polls, only if those were
// polled in the same epoch. Owned partitions with records and no epoch are
// straddled: read again.
func (b *batch) settle(n int, before, after map[int32]int64, fresh map[int32]bool) {
	earlier := map[int32]bool{}
	for _, r := range b.records[:n] {
		earlier[r.Partition] = true
	}
	if b.epochs == nil {
		b.epochs, b.owned = map[int32]int64{}, map[int32]int64{}
	}
	for p, e := range after {
		kept, had := b.epochs[p]
		switch {
		case before[p] != e && !fresh[p], earlier[p] && (!had || kept != e):
			delete(b.epochs, p)
		default:
			b.epochs[p] = e
		}
	}
	for p := range b.epochs {
		if _, owned := after[p]; !owned {
			delete(b.epochs, p)
		}
	}
	clear(b.owned)
	maps.Copy(b.owned, after)
	b.straddled = b.straddled[:0]
	seen := map[int32]bool{}
	for _, r := range b.records {
		if _, ok := b.epochs[r.Partition]; !ok && !seen[r.Partition] {
			seen[r.Partition] = true
			if _, owned := after[r.Partition]; owned {
				b.straddled = append(b.straddled, r.Partition)
			}
		}
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

// decode decodes and validates the records of b from index from on; bad
// ones get a class. It returns how many were records of orders, not
// transaction markers.
func (c *consumer) decode(b *batch, from int) (records int) {
	n := len(b.records)
	b.orders = slices.Grow(b.orders[:from], n-from)[:n]
	b.bad = slices.Grow(b.bad[:from], n-from)[:n]
	for i := from; i < n; i++ {
		b.bad[i] = badRecord{}
		if b.records[i].Control {
			continue // a transaction marker: no order, nothing to decode
		}
		records++
		if err := order.DecodeAndValidate(b.records[i].Value, &b.orders[i]); err != nil {
			class := order.ErrorClass(err)
			if class == "" {
				class = order.ClassDecode
			}
			b.bad[i] = badRecord{class, err.Error()}
		}
	}
	return records
}
