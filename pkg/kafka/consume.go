package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/order"
)

// Sink is where the consumer stores orders: PostgreSQL, through an adapter
// in cmd (this package and pkg/store do not know each other).
type Sink interface {
	// LoadOffsets returns, per partition, the next offset stored for group
	// and topic; partitions with nothing stored are absent.
	LoadOffsets(ctx context.Context, group, topic string) (map[int32]int64, error)
	// Write stores orders and advances offsets in ONE transaction. Before
	// committing it calls beforeCommit with the orders the database refused
	// for their content (they are not stored); if beforeCommit fails,
	// nothing is committed. An offset whose stored value is not Expected
	// fails the whole transaction with a *FencedError.
	Write(ctx context.Context, group string, orders []*order.Order, offsets []PartitionOffset,
		beforeCommit func(rejected []RejectedOrder) error) (SinkResult, error)
}

// PartitionOffset advances one partition's stored offset from Expected (-1:
// nothing stored yet) to Next.
type PartitionOffset struct {
	Topic     string
	Partition int32
	Expected  int64
	Next      int64
}

// RejectedOrder is an order the database refused for its content.
type RejectedOrder struct {
	Index  int // into the orders given to Write
	Reason string
}

// SinkResult counts what one Write stored.
type SinkResult struct {
	Inserted   int
	Duplicates int
}

// FencedError reports partitions whose stored offset moved under us: another
// consumer owns them now (or owned them meanwhile). Nothing was written.
type FencedError struct {
	Partitions []int32
}

func (e *FencedError) Error() string {
	return fmt.Sprintf("partitions %v were written by another consumer", e.Partitions)
}

// ErrPermanent marks a sink error that retrying cannot fix (a missing
// table, a permission revoked, a bug): the consumer stops with it instead
// of retrying for ever. Every other sink error is retried with backoff.
var ErrPermanent = errors.New("not retryable")

// Dead-letter classes (SPEC "Topics").
const (
	ClassDecode   = "decode"
	ClassValidate = "validate"
	ClassStore    = "store"
)

// ConsumeOptions configure Consume.
type ConsumeOptions struct {
	Topic      string
	DLQTopic   string
	Group      string
	InstanceID string
	// BatchRows and BatchBytes bound one database transaction.
	BatchRows  int
	BatchBytes int
	// FetchMaxBytes bounds what the client buffers from Kafka.
	FetchMaxBytes int
	// DLQ tunes the dead-letter producer.
	DLQ config.Producer
	// RetryMin and RetryMax bound the backoff while the database is down.
	RetryMin, RetryMax time.Duration
	// Until, when set, is asked after every batch (and every half second)
	// with the offsets stored so far; Consume ends when it returns true.
	// The bench drains a backlog with it.
	Until func(stored map[int32]int64) bool
	// Progress is called every ProgressInterval and once at the end.
	ProgressInterval time.Duration
	Progress         func(ConsumeStats)
	// Started, if set, is called once connected.
	Started func()
}

// ConsumeStats counts what this consumer did.
type ConsumeStats struct {
	Stored       int64            // rows inserted
	Duplicates   int64            // orders whose order_id was already stored
	DeadLettered map[string]int64 // records sent to the dead-letter topic, by class
	Batches      int64            // database transactions committed
	Offsets      map[int32]int64  // next offset stored by this consumer, per partition
	Lag          int64            // records behind the high watermarks seen last
	MaxLag       int64            // the largest Lag seen
	Elapsed      time.Duration
	// FirstRecords is how long after the start the first records arrived
	// (group join and first fetch): the bench leaves it out of rates.
	FirstRecords time.Duration
	// LastCommit is how long after the start the last batch committed.
	LastCommit time.Duration
}

// consumer is the state of one Consume call.
type consumer struct {
	opts  ConsumeOptions
	log   *slog.Logger
	sink  Sink
	cl    *kgo.Client
	dlq   *kgo.Client
	start time.Time
	// bg outlives the caller's context, for the Kafka commits and the
	// group leave of a graceful stop.
	bg context.Context

	mu sync.Mutex
	// owned maps each partition we own to the next offset stored in the
	// database, as far as we know (-1: none). Records below it are already
	// stored; a write claims to advance from it (the fencing token).
	owned map[int32]int64
	// epoch counts the assignments (and re-seeks) of each partition.
	// Records polled under an older epoch are never written: after a
	// re-assignment or a seek they might not continue the stored offset.
	epoch map[int32]int64
	hwm   map[int32]int64 // high watermarks seen in fetches
	stats ConsumeStats
}

// Consume joins the consumer group and stores the topic's orders through
// sink, exactly once, until ctx is cancelled (then it finishes the batch in
// hand, commits and leaves the group) or StopAt is reached.
func Consume(ctx context.Context, conn Conn, sink Sink, opts ConsumeOptions) (ConsumeStats, error) {
	c := &consumer{
		opts:  opts,
		log:   conn.Logger,
		sink:  sink,
		owned: map[int32]int64{},
		epoch: map[int32]int64{},
		hwm:   map[int32]int64{},
		stats: ConsumeStats{DeadLettered: map[string]int64{}, Offsets: map[int32]int64{}},
		bg:    context.WithoutCancel(ctx),
	}
	var err error
	c.dlq, err = conn.newClient(ctx, dlqOptions(opts)...)
	if err != nil {
		return ConsumeStats{}, err
	}
	defer c.dlq.Close()
	c.cl, err = conn.newClient(ctx, c.consumerOptions()...)
	if err != nil {
		return ConsumeStats{}, err
	}
	if opts.Started != nil {
		opts.Started()
	}
	c.start = time.Now()
	stopProgress := c.progress()
	err = c.run(ctx)
	c.close()
	stopProgress()
	return c.snapshot(), err
}

func dlqOptions(opts ConsumeOptions) []kgo.Opt {
	o, _ := producerOptions(opts.DLQ, opts.DLQTopic)
	return o
}

func (c *consumer) consumerOptions() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.ConsumerGroup(c.opts.Group),
		kgo.ConsumeTopics(c.opts.Topic),
		// Cooperative rebalancing moves only the partitions that must move;
		// the others keep being consumed during a rebalance.
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		// Offsets live in PostgreSQL, committed with the rows. Kafka's copy
		// is written by hand after each database commit, for lag tools.
		kgo.DisableAutoCommit(),
		// Bounds what the client buffers: memory stays flat under any backlog.
		kgo.FetchMaxBytes(int32(c.opts.FetchMaxBytes)),
		kgo.FetchMaxPartitionBytes(int32(min(c.opts.FetchMaxBytes, 8<<20))),
		// On assignment, start from the offsets stored in PostgreSQL, not
		// from Kafka's committed offsets.
		kgo.AdjustFetchOffsetsFn(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.revoked),
	}
	if c.opts.InstanceID != "" {
		// Static membership: a restart within the session timeout gets the
		// same partitions back without a rebalance.
		opts = append(opts, kgo.InstanceID(c.opts.InstanceID))
	}
	return opts
}

// assigned replaces the fetch offsets of newly assigned partitions with the
// ones stored in PostgreSQL, retrying while the database is unreachable
// (until the group moves on and cancels ctx).
func (c *consumer) assigned(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	var stored map[int32]int64
	err := c.retry(ctx, "load stored offsets", func(ctx context.Context) error {
		var err error
		stored, err = c.sink.LoadOffsets(ctx, c.opts.Group, c.opts.Topic)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]map[int32]kgo.Offset{c.opts.Topic: {}}
	var parts []int32
	for p := range offsets[c.opts.Topic] {
		next, ok := stored[p]
		if ok {
			// Epoch -1: the offset comes from elsewhere, so skip the
			// client's data-loss detection for it.
			out[c.opts.Topic][p] = kgo.NewOffset().At(next).WithEpoch(-1)
			c.owned[p] = next
		} else {
			out[c.opts.Topic][p] = kgo.NewOffset().AtStart()
			c.owned[p] = -1
		}
		c.epoch[p]++
		parts = append(parts, p)
	}
	slices.Sort(parts)
	c.log.Info("partitions assigned", "topic", c.opts.Topic, "group", c.opts.Group, "partitions", parts, "stored_offsets", stored)
	return out, nil
}

func (c *consumer) revoked(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range lost[c.opts.Topic] {
		delete(c.owned, p)
	}
	c.log.Info("partitions revoked", "topic", c.opts.Topic, "partitions", lost[c.opts.Topic])
}

// batch is one transaction's worth of records, decoded.
type batch struct {
	records []*kgo.Record
	bytes   int
	epochs  map[int32]int64 // the partitions' epochs when polled
	orders  []order.Order   // parallel to records
	bad     []deadLetter    // by record index; class empty for a good order
}

func (c *consumer) run(ctx context.Context) error {
	// Decoding runs one batch ahead of writing: while PostgreSQL stores
	// batch n, batch n+1 is polled and decoded. Three batch buffers go
	// round: one being written, one ready, one being filled.
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
	// Stop the reader before waiting for it: it may be blocked in a poll.
	defer func() {
		stop()
		wg.Wait()
	}()
	for b := range ready {
		err := c.process(ctx, b)
		free <- b
		if err != nil {
			return err
		}
		if ctx.Err() != nil || c.done() {
			return nil
		}
	}
	return nil
}

// read polls and decodes batches into buffers from free and hands them
// to the writer through ready, until ctx ends or Until is satisfied.
func (c *consumer) read(ctx context.Context, free chan *batch, ready chan<- *batch) {
	for ctx.Err() == nil && !c.done() {
		var b *batch
		select {
		case b = <-free:
		case <-ctx.Done():
			return
		}
		c.poll(ctx, b)
		if ctx.Err() != nil {
			// Not written, so its offsets were not passed: it is consumed
			// again by whoever owns the partitions next.
			return
		}
		if len(b.records) == 0 {
			free <- b
			continue
		}
		c.mu.Lock()
		if c.stats.FirstRecords == 0 {
			c.stats.FirstRecords = time.Since(c.start)
		}
		c.mu.Unlock()
		c.decode(b)
		select {
		case ready <- b:
		case <-ctx.Done():
			return
		}
	}
}

// decode decodes and validates every record of b; bad ones get a class.
func (c *consumer) decode(b *batch) {
	n := len(b.records)
	if cap(b.orders) < n {
		b.orders = make([]order.Order, n)
		b.bad = make([]deadLetter, n)
	}
	b.orders, b.bad = b.orders[:n], b.bad[:n]
	for i, r := range b.records {
		b.bad[i] = deadLetter{}
		o := &b.orders[i]
		if err := order.Decode(r.Value, o); err != nil {
			b.bad[i] = deadLetter{r, ClassDecode, err.Error()}
		} else if err := o.Validate(); err != nil {
			b.bad[i] = deadLetter{r, ClassValidate, err.Error()}
		}
	}
}

// done asks opts.Until whether to stop.
func (c *consumer) done() bool {
	if c.opts.Until == nil {
		return false
	}
	c.mu.Lock()
	stored := maps.Clone(c.stats.Offsets)
	c.mu.Unlock()
	return c.opts.Until(stored)
}

// CaughtUp returns an Until func that stops once every partition's stored
// offset reached end.
func CaughtUp(end map[int32]int64) func(map[int32]int64) bool {
	return func(stored map[int32]int64) bool {
		for p, e := range end {
			if e > 0 && stored[p] < e {
				return false
			}
		}
		return true
	}
}

// poll blocks for records, then takes what is already buffered until the
// batch bounds: a backlog yields full batches, a quiet stream small ones
// written at once.
func (c *consumer) poll(ctx context.Context, b *batch) {
	b.records, b.bytes = b.records[:0], 0
	pollCtx := ctx
	if c.opts.Until != nil {
		// Re-check Until now and then, even when no records come.
		var cancel context.CancelFunc
		pollCtx, cancel = context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
	}
	for len(b.records) < c.opts.BatchRows && b.bytes < c.opts.BatchBytes {
		var fs kgo.Fetches
		if len(b.records) == 0 {
			fs = c.cl.PollRecords(pollCtx, c.opts.BatchRows)
		} else {
			//lint:ignore SA1012 a nil context asks franz-go for what is buffered, without waiting
			fs = c.cl.PollRecords(nil, c.opts.BatchRows-len(b.records))
		}
		if fs.Empty() {
			break
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, kgo.ErrClientClosed) {
				c.log.Warn("fetch failed; the client retries", "topic", topic, "partition", p, "err", err)
			}
		})
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if p.Topic == c.opts.Topic && p.HighWatermark >= 0 {
				c.mu.Lock()
				c.hwm[p.Partition] = p.HighWatermark
				c.mu.Unlock()
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			b.records = append(b.records, r)
			b.bytes += len(r.Key) + len(r.Value)
		})
		if len(b.records) == 0 {
			break
		}
	}
	c.mu.Lock()
	b.epochs = maps.Clone(c.epoch)
	c.mu.Unlock()
}

// process writes a decoded batch, retrying while the database is
// unavailable, until it is stored, fenced away or ctx ends.
func (c *consumer) process(ctx context.Context, b *batch) error {
	for attempt := 0; ; attempt++ {
		w := c.prepare(b)
		if len(w.offsets) == 0 {
			return nil // nothing left that we own
		}
		res, err := c.write(ctx, w)
		var fenced *FencedError
		switch {
		case err == nil:
			c.committed(w, res)
			return nil
		case errors.As(err, &fenced):
			c.log.Warn("batch fenced: another consumer wrote these partitions; reloading their offsets",
				"partitions", fenced.Partitions)
			c.reload(ctx, fenced.Partitions)
			continue
		case ctx.Err() != nil:
			return nil // stopping: the batch was rolled back
		case errors.Is(err, ErrPermanent):
			return fmt.Errorf("store batch: %w", err)
		}
		d := backoff(attempt, c.opts.RetryMin, c.opts.RetryMax)
		c.log.Warn("storing batch failed; retrying", "attempt", attempt+1, "retry_in", d.Round(time.Millisecond),
			"records", len(w.records), "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
	}
}

// work is a batch prepared for one write attempt.
type work struct {
	records []*kgo.Record // the records written, parallel to orders
	orders  []*order.Order
	dead    []deadLetter // records that failed decode or validate
	offsets []PartitionOffset
}

type deadLetter struct {
	rec    *kgo.Record
	class  string
	reason string
}

// prepare keeps the records of partitions we still own, polled under the
// current assignment, and not stored yet, and computes the offsets each
// partition advances from and to.
func (c *consumer) prepare(b *batch) work {
	c.mu.Lock()
	owned := make(map[int32]int64, len(c.owned))
	for p, o := range c.owned {
		if b.epochs[p] == c.epoch[p] {
			owned[p] = o
		}
	}
	c.mu.Unlock()

	var w work
	next := map[int32]int64{}
	for i, r := range b.records {
		expected, ok := owned[r.Partition]
		if !ok || r.Topic != c.opts.Topic || r.Offset < expected {
			continue // revoked, re-seeked, or already stored
		}
		next[r.Partition] = max(next[r.Partition], r.Offset+1)
		if b.bad[i].class != "" {
			w.dead = append(w.dead, b.bad[i])
			continue
		}
		w.records = append(w.records, r)
		w.orders = append(w.orders, &b.orders[i])
	}
	for p, n := range next {
		w.offsets = append(w.offsets, PartitionOffset{Topic: c.opts.Topic, Partition: p, Expected: owned[p], Next: n})
	}
	slices.SortFunc(w.offsets, func(a, b PartitionOffset) int { return int(a.Partition - b.Partition) })
	return w
}

// write stores one prepared batch. Dead letters are produced, and
// acknowledged, inside the database transaction before it commits: an
// offset is never passed before its record is either stored or in the
// dead-letter topic. A crash between the two replays the batch, so a dead
// letter may appear twice (its headers name the source offset); a stored
// row never does.
func (c *consumer) write(ctx context.Context, w work) (SinkResult, error) {
	// The batch in hand finishes even when a stop is asked meanwhile, but
	// within a bound: a database that hangs must not hang the shutdown.
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(5*time.Second, cancel) })
	defer stop()

	var stored []deadLetter
	res, err := c.sink.Write(wctx, c.opts.Group, w.orders, w.offsets, func(rejected []RejectedOrder) error {
		stored = stored[:0]
		for _, r := range rejected {
			stored = append(stored, deadLetter{w.records[r.Index], ClassStore, r.Reason})
		}
		return c.deadLetter(wctx, append(stored, w.dead...))
	})
	if err == nil {
		c.mu.Lock()
		for _, d := range stored {
			c.stats.DeadLettered[d.class]++
		}
		for _, d := range w.dead {
			c.stats.DeadLettered[d.class]++
		}
		c.mu.Unlock()
	}
	return res, err
}

// deadLetter produces records to the dead-letter topic and waits for every
// acknowledgement.
func (c *consumer) deadLetter(ctx context.Context, dead []deadLetter) error {
	if len(dead) == 0 {
		return nil
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	recs := make([]*kgo.Record, len(dead))
	for i, d := range dead {
		h := append(slices.Clip(d.rec.Headers),
			kgo.RecordHeader{Key: "foodpipe-error-class", Value: []byte(d.class)},
			kgo.RecordHeader{Key: "foodpipe-error", Value: []byte(d.reason)},
			kgo.RecordHeader{Key: "foodpipe-source-topic", Value: []byte(d.rec.Topic)},
			kgo.RecordHeader{Key: "foodpipe-source-partition", Value: strconv.AppendInt(nil, int64(d.rec.Partition), 10)},
			kgo.RecordHeader{Key: "foodpipe-source-offset", Value: strconv.AppendInt(nil, d.rec.Offset, 10)},
			kgo.RecordHeader{Key: "foodpipe-source-timestamp", Value: []byte(d.rec.Timestamp.UTC().Format(time.RFC3339Nano))},
			kgo.RecordHeader{Key: "foodpipe-group", Value: []byte(c.opts.Group)},
			kgo.RecordHeader{Key: "foodpipe-failed-at", Value: []byte(now)},
		)
		// Key and value bytes stay exactly as received.
		recs[i] = &kgo.Record{Topic: c.opts.DLQTopic, Key: d.rec.Key, Value: d.rec.Value, Headers: h}
		c.log.Warn("record dead-lettered", "class", d.class, "topic", d.rec.Topic, "partition", d.rec.Partition,
			"offset", d.rec.Offset, "err", d.reason)
	}
	if err := c.dlq.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("dead-letter to %s: %w", c.opts.DLQTopic, err)
	}
	return nil
}

// committed records a stored batch and copies its offsets to Kafka, so
// that standard lag tools see the truth.
func (c *consumer) committed(w work, res SinkResult) {
	commit := map[string]map[int32]kgo.EpochOffset{c.opts.Topic: {}}
	c.mu.Lock()
	// Lag peaks just before a batch lands: measure it (and keep MaxLag)
	// before the batch's offsets count as stored.
	c.lagLocked()
	for _, o := range w.offsets {
		if _, ok := c.owned[o.Partition]; ok {
			c.owned[o.Partition] = o.Next
		}
		c.stats.Offsets[o.Partition] = o.Next
		commit[c.opts.Topic][o.Partition] = kgo.EpochOffset{Epoch: -1, Offset: o.Next}
	}
	c.stats.Stored += int64(res.Inserted)
	c.stats.Duplicates += int64(res.Duplicates)
	c.stats.Batches++
	c.stats.LastCommit = time.Since(c.start)
	c.mu.Unlock()
	// One line per transaction: the fault tests read these to prove that no
	// offset range was ever stored twice.
	c.log.Debug("batch stored", "inserted", res.Inserted, "duplicates", res.Duplicates,
		"dead_lettered", len(w.dead), "offsets", w.offsets)
	c.cl.CommitOffsets(c.bg, commit, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			c.log.Debug("commit to Kafka failed (the database holds the offsets)", "err", err)
		}
	})
}

// reload reads the stored offsets of fenced partitions and seeks there, so
// the next batch starts where the other consumer stopped.
func (c *consumer) reload(ctx context.Context, parts []int32) {
	var stored map[int32]int64
	err := c.retry(ctx, "reload stored offsets", func(ctx context.Context) error {
		var err error
		stored, err = c.sink.LoadOffsets(ctx, c.opts.Group, c.opts.Topic)
		return err
	})
	if err != nil {
		return // stopping
	}
	seek := map[string]map[int32]kgo.EpochOffset{c.opts.Topic: {}}
	c.mu.Lock()
	for _, p := range parts {
		if _, ok := c.owned[p]; !ok {
			continue
		}
		next, ok := stored[p]
		if !ok {
			next = -1
		}
		c.owned[p] = next
		c.epoch[p]++
		if next >= 0 {
			seek[c.opts.Topic][p] = kgo.EpochOffset{Epoch: -1, Offset: next}
		}
	}
	c.mu.Unlock()
	c.cl.SetOffsets(seek)
}

// retry runs f until it succeeds or ctx ends, with capped exponential
// backoff and jitter, logging every failed attempt.
func (c *consumer) retry(ctx context.Context, what string, f func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		err := f(ctx)
		if err == nil || ctx.Err() != nil {
			return errors.Join(err, ctx.Err())
		}
		d := backoff(attempt, c.opts.RetryMin, c.opts.RetryMax)
		c.log.Warn(what+" failed; retrying", "attempt", attempt+1, "retry_in", d.Round(time.Millisecond), "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

// backoff is the wait before retry attempt+1: exponential from lo, capped
// at hi, with full jitter over its upper half so that many consumers
// hitting the same outage do not retry in lockstep.
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := hi
	if attempt < 30 {
		d = min(hi, lo<<attempt)
	}
	return d/2 + rand.N(d/2+1)
}

// close commits the stored offsets to Kafka once more and leaves the group.
func (c *consumer) close() {
	c.mu.Lock()
	commit := map[string]map[int32]kgo.EpochOffset{c.opts.Topic: {}}
	for p, next := range c.owned {
		if next >= 0 {
			commit[c.opts.Topic][p] = kgo.EpochOffset{Epoch: -1, Offset: next}
		}
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(c.bg, 3*time.Second)
	defer cancel()
	if len(commit[c.opts.Topic]) > 0 {
		c.cl.CommitOffsetsSync(ctx, commit, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				c.log.Debug("final commit to Kafka failed (the database holds the offsets)", "err", err)
			}
		})
	}
	// Leaving within the bound keeps the shutdown prompt even when the
	// coordinator is gone; Close is then immediate.
	if err := c.cl.LeaveGroupContext(ctx); err != nil {
		c.log.Debug("leave group", "err", err)
	}
	c.cl.Close()
}

func (c *consumer) snapshot() ConsumeStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.DeadLettered = maps.Clone(c.stats.DeadLettered)
	s.Offsets = maps.Clone(c.stats.Offsets)
	s.Elapsed = time.Since(c.start)
	s.Lag = c.lagLocked()
	return s
}

// lagLocked sums, over the partitions we own, how far the stored offset is
// behind the last high watermark seen; it also keeps MaxLag. c.mu is held.
func (c *consumer) lagLocked() int64 {
	var lag int64
	for p, hwm := range c.hwm {
		if next, ok := c.owned[p]; ok {
			lag += max(hwm-max(next, 0), 0)
		}
	}
	c.stats.MaxLag = max(c.stats.MaxLag, lag)
	return lag
}

// progress calls opts.Progress every ProgressInterval until stopped; the
// returned func stops it and makes one last call.
func (c *consumer) progress() (stop func()) {
	if c.opts.Progress == nil {
		return func() {}
	}
	return every(c.opts.ProgressInterval, func() { c.opts.Progress(c.snapshot()) })
}
