package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/foodpipe/foodpipe/internal/tick"
	"github.com/foodpipe/foodpipe/pkg/kafka"
)

// progress calls opts.Progress every ProgressInterval until stopped, and
// keeps the lag fresh: end offsets listed from the brokers, independent of
// fetching (which stops while PostgreSQL is down), minus the offsets stored.
// The same loop watches the topic's id (checkTopicID) and, while the writer
// is idle, whether PostgreSQL answers (checkIdleDatabase). The returned func
// stops both and makes one last Progress call (none with a ProgressInterval
// of 0).
func (c *consumer) progress() (stop func()) {
	ctx, cancel := context.WithCancel(c.bg)
	measure := func() {
		c.measureLag(ctx)
		c.checkIdleDatabase(ctx)
	}
	measure()
	stopLag := every(min(max(c.opts.ProgressInterval, 200*time.Millisecond), time.Second), measure)
	stopReport := func() {}
	if c.opts.Progress != nil && c.opts.ProgressInterval > 0 { // 0: never
		stopReport = every(c.opts.ProgressInterval, func() { c.opts.Progress(c.snapshot()) })
	}
	return func() {
		cancel()
		stopLag()
		stopReport()
	}
}

// measureLag sums, over the partitions we own, how far the stored offset is
// behind the partition's end, and keeps MaxLag. When the ends cannot be
// listed (the broker is away, or the run is ending) it counts from the ends
// listed last, so that what was stored since still shows.
func (c *consumer) measureLag(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	defer c.checkTopicID(lctx)
	defer c.checkCompaction(lctx)
	defer c.checkStrangers(lctx)
	bounds, err := c.reader.Bounds(lctx)
	c.mu.Lock()
	if err != nil {
		bounds = c.bounds
	}
	if bounds == nil {
		c.mu.Unlock()
		return // none listed yet
	}
	c.bounds = bounds
	var lag int64
	per := make(map[int32]int64, len(c.parts))
	for p, ps := range c.parts {
		if b, ok := bounds[p]; ok {
			per[p] = max(b.End-ps.next, 0)
			lag += per[p]
		}
	}
	// A partition assigned whose stored offset cannot be read yet
	// (PostgreSQL is down) waits all the same: count it from Kafka's copy
	// of the offset, or from its first record.
	for p := range c.pending {
		if b, ok := bounds[p]; ok {
			from := c.reader.KafkaCommitted(p)
			if from < b.Start || from > b.End {
				from = b.Start
			}
			per[p] = b.End - from
			lag += per[p]
		}
	}
	c.stats.Lag = lag
	c.stats.MaxLag = max(c.stats.MaxLag, lag)
	c.mu.Unlock()
	c.obs.Lag(per)
}

// checkTopicID ends the run when the topic was deleted and created again
// under it: the Kafka client keeps the old topic id and reads nothing more
// (it does not adopt a new id for a topic it holds), so the consumer would
// otherwise sit idle without a word. The next start applies the
// out-of-range policy to the new topic (startsFor).
func (c *consumer) checkTopicID(ctx context.Context) {
	id, err := c.reader.TopicID(ctx)
	if err != nil || id == "" {
		return // the broker is away, or has no topic ids
	}
	c.mu.Lock()
	var was string
	for _, ps := range c.parts {
		if ps.topicID != "" && ps.topicID != id {
			was = ps.topicID
			c.recreated = true
		}
	}
	c.mu.Unlock()
	if was != "" {
		c.fail(fmt.Errorf("%w: group %s, topic %s: the topic was deleted and created again while consuming (topic id %s, was %s): "+
			"nothing more can be read from it in this run; start foodpipe again and it applies --offset-out-of-range to the new topic",
			ErrPermanent, c.opts.Group, c.opts.Topic, id, was))
	}
}

// watchEvery is how often the lag loop reads the topics' cleanup.policy
// (the cleaner runs no sooner than that on a policy changed under it: its
// default backoff is 15 s) and the group's members.
const watchEvery = 10 * time.Second

// checkCompaction ends the run when the orders or the dead-letter topic was
// set to compact while consuming, as it is refused at start: the cleaner
// would delete all but each customer's latest record, read or not. It is
// called by the lag loop only.
func (c *consumer) checkCompaction(ctx context.Context) {
	if time.Since(c.compactionChecked) < watchEvery {
		return
	}
	c.compactionChecked = time.Now()
	if err := c.reader.CheckNotCompacted(ctx, c.opts.Topic, c.opts.DLQTopic); errors.Is(err, kafka.ErrCompacted) {
		c.fail(fmt.Errorf("%w: %w (set while consuming; what was stored stays stored)", ErrPermanent, err))
	}
}

// checkStrangers warns when another application is a member of the group,
// naming it, each time the set of strangers changes; it looks after each
// rebalance and every watchEvery. The partitions a stranger
// holds are not stored meanwhile: nothing is lost, since the group's
// position is in PostgreSQL and the partitions are read from there once
// they come back, but the orders wait. Called by the lag loop only.
func (c *consumer) checkStrangers(ctx context.Context) {
	if !c.rebalanced.Swap(false) && time.Since(c.strangersChecked) < watchEvery {
		return
	}
	c.strangersChecked = time.Now()
	strangers, err := c.reader.Strangers(ctx)
	if err != nil {
		return // the broker is away: look again later
	}
	if seen := strings.Join(strangers, ","); seen != c.strangers {
		c.strangers = seen
		if len(strangers) > 0 {
			c.log.Warn("another application is a member of this group: the partitions it holds are not stored until it leaves; "+
				"give foodpipe a group of its own (--group)", "topic", c.opts.Topic, "group", c.opts.Group, "members", strangers)
		}
	}
}

func (c *consumer) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.DeadLettered = maps.Clone(c.stats.DeadLettered)
	s.Offsets = maps.Clone(c.stats.Offsets)
	s.Partitions = slices.Sorted(maps.Keys(c.parts))
	s.Elapsed = time.Since(c.start)
	return s
}

// every is tick.Every whose stop reports once more, so the last report
// holds the final figures. A zero interval reports only at stop.
func every(interval time.Duration, report func()) (stop func()) {
	stopTick := tick.Every(interval, report)
	return func() {
		stopTick()
		report()
	}
}
