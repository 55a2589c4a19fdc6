package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/store"
)

// partition is what the consumer knows of a partition it owns.
//
// Records reach the writer in batches polled ahead of time, so every batch
// carries the epoch each partition had while it was polled. The epoch
// changes whenever the partition's read position is set (assignment, seek)
// or its fetching paused; a batch polled under another epoch than the
// current one is never written for that partition. Within one epoch the
// client returns the partition's records in order from where it was
// positioned, so a batch of the current epoch continues the stored offset.
type partition struct {
	// stored is the next offset stored in PostgreSQL as far as we know (-1:
	// no row yet): the compare-and-set token of the next write.
	stored int64
	// next is the offset the next record written must have: stored, or
	// the start of the partition when nothing is stored.
	next int64
	// topicID is the topic's id to store with the offsets ("" unknown).
	topicID string
	epoch   int64
	// assigned is the epoch the assignment gave: while epoch is still it,
	// the partition has not been moved since the group handed it over.
	assigned int64
	// fresh is set while nothing was written in this epoch: the first
	// record may then lie beyond next when the broker holds none between
	// (transaction markers, aborted records).
	fresh bool
	// op is a change of position the reader applies between polls.
	op *seekOp
	// heldUntil, when set, keeps the partition paused and unwritten until
	// then: its offset row is locked by a stalled writer.
	heldUntil time.Time
	holds     int // consecutive holds, for the backoff
}

// seekOp asks the reader to pause a partition, or to move it to offset
// (and resume it).
type seekOp struct {
	pause  bool
	offset int64
}

// writable reports whether records of epoch may be written now.
func (ps *partition) writable(epoch int64) bool {
	return ps.op == nil && ps.heldUntil.IsZero() && ps.epoch == epoch
}

// joinedGroup makes the consumer ready once it is in the group, whether it
// got partitions or not: a member without any takes over when another
// leaves.
func (c *consumer) joinedGroup() {
	c.mu.Lock()
	c.joined = true
	ready, reason := c.readiness()
	c.mu.Unlock()
	c.obs.Ready(ready, reason)
}

// leftGroup makes the consumer not ready while it is out of the group: its
// session was lost, and it is joining again (joinedGroup).
func (c *consumer) leftGroup() {
	c.mu.Lock()
	c.joined, c.lostSession = false, c.joined || c.lostSession // a first join that failed is still joining
	ready, reason := c.readiness()
	c.mu.Unlock()
	c.obs.Ready(ready, reason)
}

// assigned decides where each newly assigned partition starts and takes
// ownership of it. It runs in the group's goroutine, before fetching starts.
func (c *consumer) assigned(ctx context.Context, r *kafka.GroupReader, parts []int32) (map[int32]int64, error) {
	c.mu.Lock()
	for _, p := range parts {
		c.pending[p] = true // counted in the lag while its offset loads
	}
	c.mu.Unlock()
	starts, err := c.startsFor(ctx, r, parts)
	c.mu.Lock()
	for _, p := range parts {
		delete(c.pending, p)
	}
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := make(map[int32]int64, len(parts))
	c.mu.Lock()
	c.joined = true
	ready, reason := c.readiness()
	for _, p := range parts {
		s := starts[p]
		c.epochs++
		c.parts[p] = &partition{stored: s.stored, next: s.next, topicID: s.topicID, epoch: c.epochs, assigned: c.epochs, fresh: true}
		out[p] = s.next
	}
	c.mu.Unlock()
	c.obs.Ready(ready, reason)
	c.rebalanced.Store(true)
	c.log.Info("partitions assigned", "topic", c.opts.Topic, "group", c.opts.Group, "partitions", parts,
		"start_offsets", maps.Clone(out))
	return out, nil
}

func (c *consumer) revoked(parts []int32) {
	c.mu.Lock()
	for _, p := range parts {
		delete(c.parts, p)
		for pos := range c.acked {
			if pos.partition == p {
				delete(c.acked, pos)
			}
		}
	}
	c.mu.Unlock()
	c.rebalanced.Store(true)
	c.log.Info("partitions revoked", "topic", c.opts.Topic, "group", c.opts.Group, "partitions", parts)
}

// shutOut stops the consumer once its group refused it for good (another
// consumer took its instance id, the broker refuses its session timeout,
// ...): the fix is the operator's, and err says which.
func (c *consumer) shutOut(err error) {
	c.fail(fmt.Errorf("%w: %w", ErrPermanent, err))
}

// start is where a partition is read from, and the stored offset the first
// write compares with.
type start struct {
	next    int64
	stored  int64
	topicID string
}

// startsFor reads where the group stands in parts from PostgreSQL and checks
// it against what the partitions hold now. A partition with no stored offset
// starts at its first record. A stored offset outside the partition — its
// records deleted by retention before they were consumed, or the topic
// deleted and created again (the stored topic id differs, or the offset is
// past the end) — is handled by the out-of-range policy: fail (a permanent
// error naming the group, partition and offsets), or move the stored offset
// to the first or the end offset, loudly. Failures of a service are retried
// until ctx ends.
func (c *consumer) startsFor(ctx context.Context, r *kafka.GroupReader, parts []int32) (map[int32]start, error) {
	var stored map[int32]store.StoredOffset
	err := c.retry(ctx, "load stored offsets", func(ctx context.Context) error {
		var err error
		stored, err = c.sink.LoadOffsets(ctx, c.opts.Group, c.opts.Topic)
		return sinkError(err)
	})
	if err != nil {
		return nil, err
	}
	var bounds map[int32]kafka.Bounds
	var topicID string
	err = c.retry(ctx, "list the topic's offsets", func(ctx context.Context) error {
		var err error
		if topicID, err = r.TopicID(ctx); err != nil {
			return err
		}
		bounds, err = r.Bounds(ctx, parts...)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[int32]start, len(parts))
	for _, p := range parts {
		b, ok := bounds[p]
		if !ok {
			return nil, fmt.Errorf("%w: topic %s has no partition %d", ErrPermanent, c.opts.Topic, p)
		}
		s, ok := stored[p]
		switch {
		case !ok:
			c.log.Warn("no offset stored for this group and partition: reading it from its first record",
				"topic", c.opts.Topic, "group", c.opts.Group, "partition", p, "offset", b.Start)
			out[p] = start{next: b.Start, stored: -1, topicID: topicID}
			continue
		case s.TopicID == "" || topicID == "" || s.TopicID == topicID:
			if s.Next >= b.Start && s.Next <= b.End {
				out[p] = start{next: s.Next, stored: s.Next, topicID: topicID}
				continue
			}
		}
		st, err := c.outOfRange(ctx, r, p, s, topicID, b)
		if err != nil {
			return nil, err
		}
		out[p] = st
	}
	return out, nil
}

// outOfRange applies the policy to a stored offset that does not fit its
// partition.
func (c *consumer) outOfRange(ctx context.Context, r *kafka.GroupReader, p int32, s store.StoredOffset, topicID string, b kafka.Bounds) (start, error) {
	var why string
	place := fmt.Sprintf("is outside the partition's offsets [%d, %d)", b.Start, b.End)
	switch {
	case s.TopicID != "" && topicID != "" && s.TopicID != topicID:
		place = fmt.Sprintf("belongs to an earlier topic of this name (the partition's offsets are now [%d, %d))", b.Start, b.End)
		why = fmt.Sprintf("the topic was deleted and created again (topic id %s, stored with id %s)", topicID, s.TopicID)
	case s.Next < 0:
		why = "a negative offset (set by hand?)"
	case s.Next < b.Start:
		why = fmt.Sprintf("%d records were deleted (retention) before they were consumed", b.Start-s.Next)
	default:
		why = "the stored offset is past the end of the partition (the topic was deleted and created again, or truncated)"
	}
	msg := fmt.Sprintf("group %s, topic %s, partition %d: stored offset %d %s: %s", c.opts.Group, c.opts.Topic, p, s.Next, place, why)
	var to int64
	switch c.opts.OutOfRange {
	case OutOfRangeEarliest:
		to = b.Start
	case OutOfRangeLatest:
		to = b.End
	default:
		err := fmt.Errorf("%w: %s; rerun with --offset-out-of-range=earliest or latest to resume", ErrPermanent, msg)
		c.fail(err)
		return start{}, err
	}
	c.log.Error("stored offset out of range: moving it as --offset-out-of-range says",
		"topic", c.opts.Topic, "group", c.opts.Group, "partition", p, "stored_offset", s.Next,
		"start_offset", b.Start, "end_offset", b.End, "policy", c.opts.OutOfRange, "moved_to", to, "why", why)
	var fenced *store.FencedError
	err := c.retry(ctx, "move the stored offset", func(ctx context.Context) error {
		err := sinkError(c.sink.MoveOffset(ctx, c.opts.Group, store.Offset{
			Topic: c.opts.Topic, Partition: p, Expected: s.Next, Next: to, TopicID: topicID}))
		if errors.As(err, &fenced) {
			return nil // another consumer moved it first: see where to below
		}
		return err
	})
	if err != nil {
		return start{}, err
	}
	if fenced != nil {
		starts, err := c.startsFor(ctx, r, []int32{p})
		return starts[p], err
	}
	return start{next: to, stored: to, topicID: topicID}, nil
}

// reposition reloads where partitions stand (after fencing, a hold, or an
// out-of-range fetch) and asks the reader to move them there. Batches polled
// before are not written for them.
func (c *consumer) reposition(ctx context.Context, parts []int32) error {
	c.mu.Lock()
	parts = slices.DeleteFunc(slices.Clone(parts), func(p int32) bool { return c.parts[p] == nil })
	c.mu.Unlock()
	if len(parts) == 0 {
		return nil
	}
	starts, err := c.startsFor(ctx, c.reader, parts)
	if err != nil {
		return err
	}
	c.mu.Lock()
	for _, p := range parts {
		ps := c.parts[p]
		if ps == nil {
			continue // revoked meanwhile
		}
		s := starts[p]
		ps.stored, ps.next, ps.topicID = s.stored, s.next, s.topicID
		ps.heldUntil = time.Time{}
		ps.op = &seekOp{offset: s.next}
	}
	c.mu.Unlock()
	c.wakeReader()
	return nil
}

// reread asks the reader to read partitions again from where they stand:
// their records in a batch could not be told from records of before a
// change of position.
func (c *consumer) reread(parts []int32) {
	if len(parts) == 0 {
		return
	}
	c.mu.Lock()
	for _, p := range parts {
		if ps := c.parts[p]; ps != nil && ps.op == nil && ps.heldUntil.IsZero() {
			ps.op = &seekOp{offset: ps.next}
		}
	}
	c.mu.Unlock()
	c.wakeReader()
}

// hold pauses partitions whose offset row another transaction holds locked
// (a stalled writer): the other partitions keep being written meanwhile, and
// the partitions are tried again after a growing wait.
func (c *consumer) hold(parts []int32) {
	c.mu.Lock()
	for _, p := range parts {
		ps := c.parts[p]
		if ps == nil {
			continue
		}
		ps.holds++
		d := backoff(ps.holds, time.Second, c.opts.RetryMax)
		ps.heldUntil = time.Now().Add(d)
		ps.op = &seekOp{pause: true}
		c.log.Warn("partition held: its stored offset is locked by another transaction (a stalled consumer?); writing the others",
			"topic", c.opts.Topic, "group", c.opts.Group, "partition", p, "retry_in", d.Round(time.Millisecond).String())
	}
	c.mu.Unlock()
	c.wakeReader()
}

// heldDue returns the held partitions whose wait is over, and how long until
// the next one is (0: none held).
func (c *consumer) heldDue(now time.Time) (due []int32, next time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, ps := range c.parts {
		switch {
		case ps.heldUntil.IsZero():
		case !now.Before(ps.heldUntil):
			due = append(due, p)
		case next == 0 || ps.heldUntil.Sub(now) < next:
			next = ps.heldUntil.Sub(now)
		}
	}
	slices.Sort(due)
	return due, next
}

// sinkError marks errors of the sink that retrying cannot fix as permanent.
func sinkError(err error) error {
	var fenced *store.FencedError
	switch {
	case err == nil, errors.As(err, &fenced), store.IsRetryable(err),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("%w: %w", ErrPermanent, err)
}
