// Package pipeline is where the stream meets the database: it reads orders
// from Kafka (pkg/kafka) and stores them in PostgreSQL (pkg/store) exactly
// once, dead-letters what cannot be stored, and owns the rules that make
// that true: where each partition is read from, fencing, retries. It also
// runs the other loops that join the packages: the paced producer of
// generated orders, and the bench's sandboxes.
package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/foodpipe/foodpipe/pkg/store"
)

// Sink is where orders are stored: *store.DB, or a fake in tests.
type Sink interface {
	LoadOffsets(ctx context.Context, group, topic string) (map[int32]store.StoredOffset, error)
	WriteBatch(ctx context.Context, group string, orders []*order.Order, offsets []store.Offset,
		beforeCommit func(rejected []store.Rejected) error) (store.WriteResult, error)
	MoveOffset(ctx context.Context, group string, o store.Offset) error
}

// Out-of-range policies: what to do with a stored offset outside what its
// partition holds (records deleted by retention before they were consumed,
// a topic deleted and created again).
const (
	OutOfRangeFail     = "fail"     // stop with exit 1 and say what happened
	OutOfRangeEarliest = "earliest" // resume at the partition's first record
	OutOfRangeLatest   = "latest"   // resume at the partition's end
)

// Options configure Consume.
type Options struct {
	Topic      string
	DLQTopic   string
	Group      string
	InstanceID string
	// BatchRows and BatchBytes bound one database transaction.
	BatchRows  int
	BatchBytes int
	// FetchMaxBytes bounds what the client buffers from Kafka.
	FetchMaxBytes int
	// SessionTimeout, RebalanceTimeout and HeartbeatInterval are the
	// group's timing.
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	HeartbeatInterval time.Duration
	// OutOfRange is the policy for stored offsets outside their partition.
	OutOfRange string
	// RetryMin and RetryMax bound the backoff while a service is down.
	RetryMin, RetryMax time.Duration
	// StopGrace bounds how long a batch in hand may take to finish after a
	// stop was asked, and again how long leaving the group may take.
	StopGrace time.Duration
	// Until, when set, is asked after every batch (and every half second)
	// with the offsets stored so far; Consume ends when it returns true.
	// It is never called twice at once.
	Until func(stored map[int32]int64) bool
	// StopAt, when set, ends each listed partition there: records at or
	// past StopAt[p] are left unwritten, for the next run (a batch job's
	// end offsets).
	StopAt map[int32]int64
	// Progress is called every ProgressInterval and once at the end;
	// never when ProgressInterval is 0.
	ProgressInterval time.Duration
	Progress         func(Stats)
	// Started, if set, is called once connected.
	Started func()
	// Observer, if set, is told what the consumer does (metrics, health).
	Observer Observer
	// Pause holds the consumer at a point for the given time, logging
	// "test pause" first: fault tests kill it there. Points: PauseInTx
	// (dead letters acknowledged, rows written, not committed) and
	// PauseAfterCommit (committed in PostgreSQL, not yet in Kafka).
	Pause map[string]time.Duration
}

// Points where Options.Pause can hold the consumer.
const (
	PauseInTx        = "in-transaction"
	PauseAfterCommit = "after-commit"
)

// Stats counts what this consumer did.
type Stats struct {
	Stored     int64 // rows inserted
	Duplicates int64 // orders whose order_id was already stored
	Dropped    int64 // orders the database skipped without an error (a trigger or rule)
	// InDoubt counts the orders of a commit whose answer never came, at a
	// stop, with a database that could not say whether it landed.
	InDoubt      int64
	DeadLettered map[string]int64 // records sent to the dead-letter topic, by class
	Batches      int64            // database transactions committed
	Offsets      map[int32]int64  // next offset stored by this consumer, per partition
	Partitions   []int32          // the partitions this consumer owns now, sorted
	Lag          int64            // records behind the high watermarks seen last
	MaxLag       int64            // the largest Lag seen
	Elapsed      time.Duration
	// FirstRecords is how long after the start the first records arrived
	// (group join and first fetch): the bench leaves it out of rates.
	FirstRecords time.Duration
	// LastCommit is how long after the start the last batch committed.
	LastCommit time.Duration
}

// ErrPermanent marks an error that retrying cannot fix (a missing table, a
// permission revoked, an offset out of range under the fail policy): the
// consumer stops with it instead of retrying for ever.
var ErrPermanent = errors.New("not retryable")

// consumer is the state of one Consume call.
type consumer struct {
	opts   Options
	log    *slog.Logger
	sink   Sink
	reader *kafka.GroupReader
	dlq    *kafka.DeadLetterWriter
	start  time.Time
	// fail ends the run with a permanent error, from any goroutine.
	fail func(error)
	// bg outlives the caller's context, for the Kafka commits of a stop.
	bg context.Context
	// untilMu serialises the calls of opts.Until.
	untilMu sync.Mutex

	mu    sync.Mutex
	parts map[int32]*partition // the partitions we own
	// pending are the partitions being assigned, their stored offsets
	// still loading.
	pending map[int32]bool
	// bounds are the partitions' offsets as measureLag listed them last.
	bounds map[int32]kafka.Bounds
	epochs int64              // the last epoch handed out
	wake   context.CancelFunc // interrupts the reader's poll
	adding bool               // the poll wake interrupts adds to a batch in hand
	idle   bool               // the writer waits for a batch
	acked  map[position]bool  // dead letters acknowledged, not yet committed past
	stats  Stats
	// joined and outage make readiness: joined the group, and what is
	// failing ("" for nothing).
	joined bool
	// idleOutage is what an idle writer's ping of the database found
	// ("" for nothing).
	idleOutage string
	// lostSession: the member was in the group and lost its place.
	lostSession bool
	outage      string
	obs         Observer
	// recreated is set once the topic's id changed under the run: the
	// stored offsets are not copied to the new topic's group offsets.
	recreated bool
	// compactionChecked is when the lag loop last read the topics'
	// cleanup.policy (checkCompaction).
	compactionChecked time.Time
	// rebalanced is set by the group's callbacks; strangersChecked and
	// strangers are the lag loop's (checkStrangers).
	rebalanced       atomic.Bool
	strangersChecked time.Time
	strangers        string
}

// position names one record.
type position struct {
	partition int32
	offset    int64
}

// Consume joins the consumer group and stores the topic's orders through
// sink, exactly once, until ctx is cancelled (then it finishes the batch in
// hand within StopGrace, commits and leaves the group) or Until is
// satisfied. It fails at start when the topic or its dead-letter topic does
// not exist, and later only on an error retrying cannot fix.
func Consume(ctx context.Context, cluster kafka.Cluster, sink Sink, opts Options) (Stats, error) {
	c := &consumer{
		opts:  opts,
		log:   cluster.Logger,
		sink:  sink,
		parts: map[int32]*partition{}, pending: map[int32]bool{},
		acked: map[position]bool{},
		stats: Stats{DeadLettered: map[string]int64{}, Offsets: map[int32]int64{}},
		bg:    context.WithoutCancel(ctx),
		obs:   opts.Observer,
	}
	if c.obs == nil {
		c.obs = NopObserver{}
	}
	c.obs.Ready(false, "joining the group")
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c.fail = func(err error) { cancel(err) }

	var err error
	c.dlq, err = kafka.NewDeadLetterWriter(ctx, cluster, opts.DLQTopic, opts.Group)
	if err != nil {
		return Stats{}, err
	}
	defer c.dlq.Close()
	c.reader, err = kafka.NewGroupReader(ctx, cluster, kafka.GroupOptions{
		Topic: opts.Topic, Group: opts.Group, InstanceID: opts.InstanceID,
		FetchMaxBytes:  opts.FetchMaxBytes,
		SessionTimeout: opts.SessionTimeout, RebalanceTimeout: opts.RebalanceTimeout, HeartbeatInterval: opts.HeartbeatInterval,
		Assigned: func(ctx context.Context, r *kafka.GroupReader, parts []int32) (map[int32]int64, error) {
			return c.assigned(mergeDone(ctx, runCtx), r, parts)
		},
		Revoked: c.revoked,
		Joined:  c.joinedGroup,
		Left:    c.leftGroup,
		ShutOut: c.shutOut,
	})
	if err != nil {
		return Stats{}, err
	}
	if opts.Started != nil {
		opts.Started()
	}
	c.start = time.Now()
	said := context.AfterFunc(ctx, func() {
		c.log.Info("stopping: finishing the batch in hand, then committing and leaving the group; a second signal ends the process at once")
	})
	defer said()
	stopProgress := c.progress()
	err = c.run(runCtx)
	if cause := context.Cause(runCtx); cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause // a permanent error raised by a callback or the reader
	}
	c.reader.Close(ctx, c.storedOffsets(), opts.StopGrace)
	stopProgress()
	return c.snapshot(), err
}

// mergeDone returns a context that ends when either a or b ends, with a's
// values: the group's callbacks must stop retrying when the run stops too.
func mergeDone(a, b context.Context) context.Context {
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	context.AfterFunc(ctx, func() { stop() })
	return ctx
}

// setOutage records what is failing ("" when it works again) and tells
// the observer whether the consumer is ready.
func (c *consumer) setOutage(what string) { c.setCause(&c.outage, what) }

// setCause sets one of the causes readiness reads (c.outage,
// c.idleOutage) and tells the observer when it changed.
func (c *consumer) setCause(cause *string, what string) {
	c.mu.Lock()
	changed := *cause != what
	*cause = what
	ready, reason := c.readiness()
	c.mu.Unlock()
	if changed {
		c.obs.Ready(ready, reason)
	}
}

// readiness is whether the consumer does its job, and why not; c.mu is held.
func (c *consumer) readiness() (bool, string) {
	switch {
	case !c.joined && c.lostSession:
		return false, "not in the group: its session with Kafka was lost (is the broker reachable?); joining again"
	case !c.joined:
		return false, "joining the group"
	case c.outage != "":
		return false, c.outage
	case c.idleOutage != "":
		return false, c.idleOutage
	}
	return true, ""
}

// checkIdleDatabase pings PostgreSQL while the writer has nothing to
// write, so that readiness tells an unreachable database before a batch
// finds it out; while it writes, the write path tells.
func (c *consumer) checkIdleDatabase(ctx context.Context) {
	p, ok := c.sink.(interface{ Ping(context.Context) error })
	if !ok {
		return
	}
	c.mu.Lock()
	idle := c.idle
	c.mu.Unlock()
	what := ""
	if idle {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := p.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return // stopping
		}
		if err != nil {
			what = "PostgreSQL unreachable (" + oneLine(err) + ")"
		}
	}
	c.setCause(&c.idleOutage, what)
}

// storedOffsets returns the stored offsets of the partitions we own, for
// the group offsets in Kafka (none once the topic was created again).
func (c *consumer) storedOffsets() map[int32]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[int32]int64{}
	if c.recreated {
		return out // they are the old topic's, not the new one's
	}
	for p, ps := range c.parts {
		if ps.stored >= 0 {
			out[p] = ps.stored
		}
	}
	return out
}

// done asks opts.Until whether to stop. The reader and the writer both
// ask; untilMu keeps Until from being called by both at once.
func (c *consumer) done() bool {
	if c.opts.Until == nil {
		return false
	}
	c.mu.Lock()
	stored := maps.Clone(c.stats.Offsets)
	c.mu.Unlock()
	c.untilMu.Lock()
	defer c.untilMu.Unlock()
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

// pause holds the consumer at point, if the fault tests asked for it.
func (c *consumer) pause(point string) {
	if d := c.opts.Pause[point]; d > 0 {
		c.log.Debug("test pause", "point", point, "for", d.String())
		time.Sleep(d)
	}
}
