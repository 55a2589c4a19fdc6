package pipeline

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/store"
)

// JobOptions make a Consume run a batch job.
type JobOptions struct {
	// WaitForTopic waits for the topic and its dead-letter topic to exist
	// (logging once while it waits) instead of failing at once.
	WaitForTopic bool
	// StopAtEnd ends the run once the group has stored, in every partition,
	// everything up to the end offsets seen at start, like kcat -e.
	StopAtEnd bool
}

// topicPoll is how often WaitForTopic looks for the topics.
const topicPoll = time.Second

// PrepareJob readies opts for Consume: it checks that the topic and its
// dead-letter topic exist, failing with one line that names the missing
// ones and the fix, or waiting for them with WaitForTopic, and that neither
// is compacted (kafka.ErrCompacted); with StopAtEnd
// it lists the topic's end offsets and sets opts.StopAt and opts.Until:
// records produced after the start are left for the next run.
//
// StopAtEnd is about the group, not this member: the run ends when what
// PostgreSQL holds for the group reaches the end offsets in every
// partition, whichever member stored them. So every member of a group
// started with --stop-at-end ends once the group as a whole has caught up
// with the ends that member saw at its start; partitions a member left
// behind are drained by the others, or by whoever takes them over.
func PrepareJob(ctx context.Context, cluster kafka.Cluster, sink OffsetStore, opts *Options, job JobOptions) error {
	admin, err := kafka.NewAdmin(ctx, cluster)
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := waitTopics(ctx, admin, cluster.Logger, job.WaitForTopic, opts.Topic, opts.DLQTopic); err != nil {
		return err
	}
	if !job.StopAtEnd {
		return nil
	}
	bounds, err := admin.Bounds(ctx, opts.Topic)
	if err != nil {
		return err
	}
	topicID, err := admin.TopicID(ctx, opts.Topic)
	if err != nil {
		return err
	}
	// Retried as consume retries it: a lock timeout or an outage at start
	// is not a reason to give up a batch job.
	var stored map[int32]store.StoredOffset
	if _, err := retryLoop(ctx, cluster.Logger, opts.RetryMin, opts.RetryMax, "load stored offsets", func(ctx context.Context) error {
		stored, err = sink.LoadOffsets(ctx, opts.Group, opts.Topic)
		return sinkError(err)
	}, nil); err != nil {
		return err
	}
	end, drain, unfit := map[int32]int64{}, map[int32]int64{}, map[int32]store.StoredOffset{}
	for p, b := range bounds {
		end[p] = b.End
		// A partition that holds no records (none yet, or all deleted by
		// retention) has nothing to drain: consume stores no offset for it.
		if b.End > b.Start {
			drain[p] = b.End
		}
		// A stored offset that does not fit the partition (past its end,
		// below its start, or of an earlier topic of this name) says
		// nothing about what was stored: the member that takes the
		// partition applies --offset-out-of-range to it first, and the job
		// ends only once that offset has moved (or the member failed).
		if s, ok := stored[p]; ok && !fits(s, b, topicID) {
			unfit[p], drain[p] = s, b.End
		}
	}
	cluster.Logger.Info("stopping once the group has stored up to the end offsets seen now",
		"topic", opts.Topic, "group", opts.Group, "end_offsets", end)
	opts.StopAt = end
	opts.Until = untilStored(ctx, sink, opts.Group, opts.Topic, drain, unfit, cluster.Logger, time.Now)
	return nil
}

// fits reports whether a stored offset lies within its partition and
// belongs to the topic that has this name now.
func fits(s store.StoredOffset, b kafka.Bounds, topicID string) bool {
	sameTopic := s.TopicID == "" || topicID == "" || s.TopicID == topicID
	return sameTopic && s.Next >= b.Start && s.Next <= b.End
}

// waitTopics returns once every topic exists and none is compacted;
// without wait it fails at once with ErrTopicMissing.
func waitTopics(ctx context.Context, admin *kafka.Admin, log *slog.Logger, wait bool, topics ...string) error {
	if !wait {
		return admin.CheckTopics(ctx, topics...)
	}
	waited := false
	for {
		missing, err := admin.MissingTopics(ctx, topics...)
		if err != nil {
			return err
		}
		if len(missing) == 0 {
			if waited {
				log.Info("topics exist now", "topics", topics)
			}
			return admin.CheckTopics(ctx, topics...)
		}
		if !waited {
			log.Warn("waiting for topics to exist (foodpipe topics init creates them)", "topics", missing)
			waited = true
		}
		if err := sleep(ctx, topicPoll); err != nil {
			return err
		}
	}
}

// storedPoll is how often untilStored asks PostgreSQL at most.
const storedPoll = 500 * time.Millisecond

// stallWarn is how long untilStored waits on partitions that do not move
// before it says which, and again after each further stallWarn.
const stallWarn = 30 * time.Second

// untilStored returns an Until func satisfied once group has stored at
// least end[p] in every partition p: by this member (the offsets it is
// given), or else by the group as PostgreSQL holds it, read at most every
// storedPoll. A row still as unfit holds it at the start counts as nothing
// stored. It is called from two goroutines.
func untilStored(ctx context.Context, sink OffsetStore, group, topic string, end map[int32]int64,
	unfit map[int32]store.StoredOffset, log *slog.Logger, now func() time.Time) func(map[int32]int64) bool {
	var (
		mu      sync.Mutex
		asked   time.Time
		reached bool
		stall   = stallWatch{group: group, topic: topic, end: end, log: log}
	)
	return func(own map[int32]int64) bool {
		mu.Lock()
		defer mu.Unlock()
		if reached {
			return true
		}
		if behind(own, end) != nil {
			if now().Sub(asked) < storedPoll {
				return false
			}
			asked = now()
			rows, err := sink.LoadOffsets(ctx, group, topic)
			if err != nil {
				return false // the writer's retries report an unavailable database
			}
			stored := make(map[int32]int64, len(rows))
			for p, s := range rows {
				if u, ok := unfit[p]; !ok || s != u {
					stored[p] = s.Next
				}
			}
			if left := behind(stored, end); left != nil {
				stall.observe(left, asked)
				return false
			}
			own = stored
		}
		reached = true
		log.Info("the group has stored up to the end offsets seen at start: stopping",
			"topic", topic, "group", group, "end_offsets", end, "stored_offsets", maps.Clone(own))
		return true
	}
}

// behind returns the partitions whose stored offset is short of its end,
// with that offset, or nil when none is.
func behind(stored, end map[int32]int64) map[int32]int64 {
	var left map[int32]int64
	for p, e := range end {
		if stored[p] < e {
			if left == nil {
				left = map[int32]int64{}
			}
			left[p] = stored[p]
		}
	}
	return left
}

// stallWatch notices a batch job waiting on partitions whose stored offsets
// do not move, and says so: their members may be stopped or failing, or
// writing to another database by mistake, and the wait would be silent.
type stallWatch struct {
	group, topic string
	end          map[int32]int64
	log          *slog.Logger
	last         map[int32]int64 // the partitions behind when last read
	since        time.Time       // when they last moved, or last warned
}

func (w *stallWatch) observe(left map[int32]int64, at time.Time) {
	if !maps.Equal(left, w.last) {
		w.last, w.since = left, at
		return
	}
	if at.Sub(w.since) < stallWarn {
		return
	}
	w.since = at
	ends := make(map[int32]int64, len(left))
	for p := range left {
		ends[p] = w.end[p]
	}
	w.log.Warn("still waiting for partitions whose stored offsets have not moved in this database for "+stallWarn.String()+
		": the members that hold them may be stopped or failing, or writing to another database ('foodpipe lag' shows Kafka's committed offsets beside the stored ones)",
		"topic", w.topic, "group", w.group, "stored_offsets", left, "end_offsets", ends)
}
