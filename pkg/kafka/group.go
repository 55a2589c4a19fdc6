package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// GroupOptions configure a GroupReader.
type GroupOptions struct {
	Topic      string
	Group      string
	InstanceID string
	// FetchMaxBytes bounds what the client buffers from Kafka.
	FetchMaxBytes int
	// SessionTimeout, RebalanceTimeout and HeartbeatInterval are the
	// group's timing; see config.Consume.
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	HeartbeatInterval time.Duration
	// Assigned is called from the group's goroutine when partitions are
	// assigned, before they are fetched, and returns the offset each one
	// is read from. It gets the reader, fully made (the group may assign
	// before NewGroupReader has returned). ctx ends when the assignment is
	// revoked or the reader closes. An error leaves the partitions
	// unfetched until the next rebalance: Assigned should only fail when
	// the caller is stopping.
	Assigned func(ctx context.Context, r *GroupReader, partitions []int32) (map[int32]int64, error)
	// Revoked is told of partitions revoked or lost; their records are no
	// longer returned once it returns.
	Revoked func(partitions []int32)
	// Joined is told each time the member has joined the group (a
	// generation began), with partitions or without.
	Joined func()
	// Left is told when the member lost its place in the group (its
	// session ended with an error: the broker unreachable, the member
	// fenced), after Revoked; the client keeps trying to join again, and
	// Joined tells when it has.
	Left func()
	// ShutOut is told, with an ErrShutOut error that says why and what to
	// do, when the group refuses this member for a reason that rejoining
	// cannot fix (see shutOutError). franz-go would rejoin for ever; the
	// caller should stop.
	ShutOut func(error)
}

// GroupReader reads one topic as a member of a consumer group. It never
// decides a position itself: Assigned says where each partition starts, Seek
// moves it, and a position outside the partition is reported by Poll, never
// silently reset.
type GroupReader struct {
	cl    *kgo.Client
	adm   *kadm.Client
	topic string
	group string
	// app is this program's name in client ids, the part of
	// Cluster.ClientID before '/' (foodpipe/1.2.0: foodpipe).
	app string
	log *slog.Logger
	// made is closed once NewGroupReader has made the reader: the group's
	// callbacks, which can come before, wait for it.
	made chan struct{}
	// commits writes Kafka's copy of the offsets (Commit).
	commits *committer
	// kafkaAt holds, for the partitions being assigned, the offsets the
	// group committed in Kafka (KafkaCommitted).
	mu      sync.Mutex
	kafkaAt map[int32]int64
	// largest is the size of the largest record the last Poll took, which
	// sizes the next Poll's first chunk; only the polling goroutine uses it.
	largest int
}

// KafkaCommitted returns Kafka's copy of the group's offset of a partition
// as fetched at its latest assignment (-1: none): an estimate of the
// stored offset while PostgreSQL cannot be read.
func (r *GroupReader) KafkaCommitted(p int32) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if o, ok := r.kafkaAt[p]; ok {
		return o
	}
	return -1
}

// NewGroupReader connects a group member, failing fast when Kafka is
// unreachable. It joins the group on the first Poll.
func NewGroupReader(ctx context.Context, cluster Cluster, opts GroupOptions) (*GroupReader, error) {
	r := &GroupReader{topic: opts.Topic, group: opts.Group, app: appName(cluster.ClientID), log: cluster.Logger, made: make(chan struct{})}
	kopts := []kgo.Opt{
		kgo.ConsumerGroup(opts.Group),
		kgo.ConsumeTopics(opts.Topic),
		// Cooperative rebalancing moves only the partitions that must move;
		// the others keep being consumed during a rebalance.
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		// Offsets live in PostgreSQL, committed with the rows. Kafka's copy
		// is written by Commit after each database commit, for lag tools.
		kgo.DisableAutoCommit(),
		// A position outside the partition (records deleted by retention
		// before they were read, a topic deleted and created again) is an
		// error the caller decides about, never a silent jump.
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		// Orders of aborted transactions (another producer's) were never
		// produced: an exactly-once sink must not store them.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// The transactions' markers come as records too (Record.Control):
		// each takes an offset, which the stored offsets must pass.
		kgo.KeepControlRecords(),
		// Bounds what the client buffers: memory stays flat under any backlog.
		kgo.FetchMaxBytes(int32(opts.FetchMaxBytes)),
		kgo.FetchMaxPartitionBytes(int32(min(opts.FetchMaxBytes, 8<<20))),
		// Failover in seconds instead of Kafka's 45 s default: a member that
		// stops heartbeating is replaced after SessionTimeout.
		kgo.SessionTimeout(opts.SessionTimeout),
		kgo.RebalanceTimeout(opts.RebalanceTimeout),
		kgo.HeartbeatInterval(opts.HeartbeatInterval),
		kgo.AdjustFetchOffsetsFn(r.adjust(opts.Assigned)),
		kgo.OnPartitionsRevoked(r.revoke(opts.Revoked)),
		// franz-go calls this after every join, even with nothing new
		// assigned: a member with no partition has joined too.
		kgo.OnPartitionsAssigned(func(ctx context.Context, _ *kgo.Client, _ map[string][]int32) {
			if opts.Joined != nil && r.waitMade(ctx) == nil {
				opts.Joined()
			}
		}),
		kgo.OnPartitionsLost(r.lose(opts.Revoked, opts.Left)),
		// Ask for metadata often enough that a seek to a partition whose
		// leader moved is not held up by the 5 s default minimum age.
		kgo.MetadataMinAge(time.Second),
	}
	if opts.InstanceID != "" {
		// Static membership: a restart within the session timeout gets the
		// same partitions back without a rebalance.
		kopts = append(kopts, kgo.InstanceID(opts.InstanceID))
	}
	if opts.ShutOut != nil {
		kopts = append(kopts, kgo.WithHooks(shutOutHook{opts}))
	}
	cl, err := cluster.newClientAs(ctx, "consumer", kopts...)
	if err != nil {
		return nil, err
	}
	r.cl, r.adm = cl, kadm.NewClient(cl)
	r.commits = newCommitter(r)
	if _, err := r.TopicID(ctx); err != nil {
		r.commits.close()
		// Closed first, with callbacks held on made: none runs on a
		// reader that failed.
		go cl.Close()
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("%w: %s: run foodpipe topics init", ErrTopicMissing, opts.Topic)
		}
		return nil, err
	}
	close(r.made)
	return r, nil
}

// waitMade holds a group callback until the reader is made, or ctx ends.
func (r *GroupReader) waitMade(ctx context.Context) error {
	select {
	case <-r.made:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *GroupReader) adjust(assigned func(context.Context, *GroupReader, []int32) (map[int32]int64, error)) func(context.Context, map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	return func(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
		if err := r.waitMade(ctx); err != nil {
			return nil, err
		}
		parts := slices.Sorted(func(yield func(int32) bool) {
			for p := range offsets[r.topic] {
				if !yield(p) {
					return
				}
			}
		})
		if len(parts) == 0 {
			return offsets, nil
		}
		r.mu.Lock()
		if r.kafkaAt == nil {
			r.kafkaAt = map[int32]int64{}
		}
		for p, o := range offsets[r.topic] {
			r.kafkaAt[p] = o.EpochOffset().Offset
		}
		r.mu.Unlock()
		start, err := assigned(ctx, r, parts)
		if err != nil {
			return nil, err
		}
		r.compareCommitted(offsets[r.topic], start)
		out := map[string]map[int32]kgo.Offset{r.topic: {}}
		for _, p := range parts {
			// Epoch -1: the offset comes from PostgreSQL, not from this
			// client's fetches, so the client's data-loss check by leader
			// epoch does not apply to it.
			out[r.topic][p] = kgo.NewOffset().At(start[p]).WithEpoch(-1)
		}
		return out, nil
	}
}

// compareCommitted says when the offsets committed in Kafka, which the
// group fetched, differ from where the partitions start (read from
// PostgreSQL). Kafka's copy is written after each database commit, so it
// trails by a batch after a crash or a handover (info); ahead of
// PostgreSQL, the database went back (restored from a backup, rows
// changed) or someone moved Kafka's offsets (warn). Either way PostgreSQL's
// count, and the next commit rewrites Kafka's copy.
func (r *GroupReader) compareCommitted(committed map[int32]kgo.Offset, start map[int32]int64) {
	kafkaAt, startAt := map[int32]int64{}, map[int32]int64{}
	level := slog.LevelInfo
	for p, o := range committed {
		k := o.EpochOffset().Offset
		if k < 0 || k == start[p] {
			continue // none committed, or the same
		}
		kafkaAt[p], startAt[p] = k, start[p]
		if k > start[p] {
			level = slog.LevelWarn
		}
	}
	if len(kafkaAt) == 0 {
		return
	}
	r.log.Log(context.Background(), level, "Kafka's committed offsets differ from those stored in PostgreSQL: "+
		"resuming from PostgreSQL's, which count; the next commit rewrites Kafka's copy "+
		"(kafka-consumer-groups --reset-offsets does not move a foodpipe group: change its rows in consumer_offsets)",
		"topic", r.topic, "group", r.group, "kafka_offsets", kafkaAt, "start_offsets", startAt)
}

// lose is revoke for partitions lost with the member's session, which
// franz-go reports after every error of its group loop, with partitions or
// without: the member is out of the group until it joins again.
func (r *GroupReader) lose(revoked func([]int32), left func()) func(context.Context, *kgo.Client, map[string][]int32) {
	revoke := r.revoke(revoked)
	return func(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
		revoke(ctx, cl, lost)
		if left != nil && r.waitMade(ctx) == nil {
			left()
		}
	}
}

func (r *GroupReader) revoke(revoked func([]int32)) func(context.Context, *kgo.Client, map[string][]int32) {
	return func(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
		parts := lost[r.topic]
		if len(parts) == 0 || r.waitMade(ctx) != nil {
			return
		}
		// A partition paused by its previous owner here must be fetched
		// when it comes back.
		cl.ResumeFetchPartitions(map[string][]int32{r.topic: parts})
		revoked(parts)
	}
}

// Commit copies stored offsets to Kafka's committed offsets, in the
// background, so standard lag tools see the truth: one commit at a time,
// each with the latest offsets given. Kafka's copy is never read back: a
// failure is only logged.
func (r *GroupReader) Commit(offsets map[int32]int64) {
	if len(offsets) > 0 {
		r.commits.add(offsets)
	}
}

// epochOffsets puts offsets of the reader's topic in the client's form.
func (r *GroupReader) epochOffsets(offsets map[int32]int64) map[string]map[int32]kgo.EpochOffset {
	m := map[string]map[int32]kgo.EpochOffset{r.topic: {}}
	for p, o := range offsets {
		m[r.topic][p] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	return m
}

// Close commits offsets to Kafka once more, leaves the group and closes the
// connections, within timeout whatever state the group is in. Leaving can
// wait for a rebalance that waits for a dead member's session to expire; past
// the timeout the member is abandoned instead (the broker drops it after its
// session timeout, and nothing is lost: PostgreSQL holds the offsets).
func (r *GroupReader) Close(ctx context.Context, final map[int32]int64, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		last := r.commits.close()
		maps.Copy(last, final)
		if len(last) > 0 {
			r.commitSync(ctx, last, "final commit to Kafka failed (PostgreSQL holds the offsets)")
		}
		if err := r.cl.LeaveGroupContext(ctx); err != nil {
			r.log.Debug("leave group", "group", r.group, "err", err)
		}
		r.cl.Close()
	}()
	select {
	case <-done:
	case <-ctx.Done():
		r.log.Warn("leaving the group did not finish in time; exiting without it (the broker drops this member after its session timeout)",
			"group", r.group, "timeout", timeout.String())
	}
}
