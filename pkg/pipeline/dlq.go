package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/order"
)

// InspectOptions select the dead letters Inspect shows.
type InspectOptions struct {
	Topic   string    // the dead-letter topic
	Classes []string  // only these classes; none: every class
	Since   time.Time // only those that failed at or after it; zero: all
}

// InspectStats counts what Inspect read.
type InspectStats struct {
	Read  int64 // dead letters read: the whole topic up to its end at the start
	Shown int64 // those that passed the filters
}

// Inspect reads the dead-letter topic from its first record to its end at
// the time of the call, outside any consumer group, and calls show with
// every dead letter that passes the filters, in offset order within each
// partition.
func Inspect(ctx context.Context, cluster kafka.Cluster, opts InspectOptions, show func(kafka.Letter) error) (InspectStats, error) {
	admin, err := kafka.NewAdmin(ctx, cluster)
	if err != nil {
		return InspectStats{}, err
	}
	from, ends, err := readRange(ctx, admin, opts.Topic)
	admin.Close()
	if err != nil {
		return InspectStats{}, err
	}
	var st InspectStats
	err = kafka.ReadTopic(ctx, cluster, opts.Topic, from, ends, func(b kafka.Batch) error {
		for _, r := range b.Records {
			l := kafka.LetterOf(r)
			st.Read++
			if len(opts.Classes) > 0 && !slices.Contains(opts.Classes, l.Class) {
				continue
			}
			if !opts.Since.IsZero() && failedAt(l).Before(opts.Since) {
				continue
			}
			st.Shown++
			if err := show(l); err != nil {
				return err
			}
		}
		return nil
	})
	return st, err
}

// readRange is what a reader of topic reads now: from each partition's
// first record to its stable end.
func readRange(ctx context.Context, admin *kafka.Admin, topic string) (from, to map[int32]int64, err error) {
	bounds, err := admin.Bounds(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	to, err = admin.StableEnds(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	from = map[int32]int64{}
	for p, b := range bounds {
		from[p] = b.Start
	}
	return from, to, nil
}

// failedAt is when a letter was dead-lettered: its header, or the record's
// timestamp when the header is missing.
func failedAt(l kafka.Letter) time.Time {
	if !l.FailedAt.IsZero() {
		return l.FailedAt
	}
	return l.Timestamp
}

// ReplayOptions configure Replay.
type ReplayOptions struct {
	Topic   string   // the dead-letter topic
	Classes []string // the classes to replay; none: all of order.Classes
	// GroupPrefix names the Kafka groups that record how far replay got:
	// class c's progress is the committed offsets of <GroupPrefix>.<c>.
	GroupPrefix string
	// DryRun counts what would be replayed; nothing is produced or
	// committed.
	DryRun bool
}

// Reasons a dead letter of a selected class is not replayed.
const (
	// SkipMarker: the original was too large to dead-letter whole; the
	// marker has no value to replay (its headers name the source offset).
	SkipMarker = "marker"
	// SkipNoSource: no foodpipe-source-topic header, so nowhere to send it.
	SkipNoSource = "no source topic"
	// SkipLoop: the source topic is the dead-letter topic itself.
	SkipLoop = "source is the dead-letter topic"
	// SkipNoClass: the letter's foodpipe-error-class header is missing or
	// names no class foodpipe writes (a record put there by hand).
	SkipNoClass = "no known class"
	// SkipCopy: the same source record, dead-lettered again by a consumer
	// that crashed between the acknowledgement and its commit, was replayed
	// earlier in this run.
	SkipCopy = "copy"
)

// ReplayStats is what Replay did, or would do in a dry run.
type ReplayStats struct {
	Topic  string            `json:"topic"`
	DryRun bool              `json:"dry_run"`
	Groups map[string]string `json:"groups"` // class → the group recording its progress
	// Stopped says why the run ended: StoppedEnd, having read up to the
	// topic's end at the start, or StoppedSignal, the batch in hand
	// finished and recorded (the next run replays the rest).
	Stopped string `json:"stopped"`
	// Read counts the dead letters read: from the earliest position of the
	// selected classes' groups to the topic's end at the start.
	Read     int64 `json:"read"`
	Replayed int64 `json:"replayed"` // in a dry run: would be replayed
	// Skipped counts dead letters of a selected class that cannot be
	// replayed, by reason; they are passed all the same.
	Skipped map[string]int64 `json:"skipped"`
	// Earlier counts dead letters of a selected class that an earlier
	// replay already sent (read again for another class's sake).
	Earlier int64 `json:"replayed_before"`
	// OtherClasses counts dead letters of classes not selected.
	OtherClasses int64           `json:"other_classes"`
	Sources      []SourceReplays `json:"sources"`
}

// SourceReplays counts the dead letters replayed from one source partition.
type SourceReplays struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Replayed  int64  `json:"replayed"`
}

// Replay sends the dead letters of the selected classes back to their
// source topics — original key, value and headers, foodpipe's removed —
// once the cause of their failure is fixed. Each class's progress is the
// committed offsets of its own group, advanced past every batch once the
// batch's letters are acknowledged: a second Replay sends nothing that the
// first sent. A letter whose source topic does not exist stops the run
// before anything of its batch is sent; one its topic refuses fails alone,
// and the letters acknowledged beside it are recorded (dlq_progress.go). A
// source record dead-lettered twice (a consumer crashed between the
// acknowledgement and its commit) is replayed once per run.
// A crash between the acknowledgement and the commit sends that batch
// again on the next run (the sink stores an order once by order_id).
// Markers cannot be replayed: they are counted and passed. A stop (ctx)
// finishes the batch in hand, acknowledged and committed.
func Replay(ctx context.Context, cluster kafka.Cluster, opts ReplayOptions) (ReplayStats, error) {
	classes := opts.Classes
	if len(classes) == 0 {
		classes = order.Classes
	}
	st := ReplayStats{Topic: opts.Topic, DryRun: opts.DryRun, Groups: map[string]string{}, Skipped: map[string]int64{},
		Sources: []SourceReplays{}}
	for _, c := range classes {
		st.Groups[c] = opts.GroupPrefix + "." + c
	}
	admin, err := kafka.NewAdmin(ctx, cluster)
	if err != nil {
		return st, err
	}
	defer admin.Close()
	starts, ends, err := readRange(ctx, admin, opts.Topic)
	if err != nil {
		return st, err
	}
	done, ahead, err := loadProgress(ctx, admin, opts.Topic, st.Groups)
	if err != nil {
		return st, err
	}
	from := replayFrom(starts, classes, done)
	cluster.Logger.Info("replaying dead letters", "topic", opts.Topic, "classes", classes, "groups", slices.Sorted(maps.Values(st.Groups)),
		"from", from, "to", ends, "dry_run", opts.DryRun)

	run := &replayRun{
		opts: opts, log: cluster.Logger, admin: admin, replayer: kafka.NewReplayer(cluster), st: &st,
		pick:    picker{topic: opts.Topic, classes: classes, done: done, ahead: ahead, seen: map[origin]struct{}{}, seed: maphash.MakeSeed()},
		sources: map[sourcePartition]int64{},
		finish:  context.WithoutCancel(ctx),
	}
	defer run.replayer.Close()
	err = kafka.ReadTopic(ctx, cluster, opts.Topic, from, ends, run.batch)
	switch {
	case err == nil:
		st.Stopped = StoppedEnd
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		st.Stopped, err = StoppedSignal, nil // a graceful stop: the stats say how far it got
	}
	for src, n := range run.sources {
		st.Sources = append(st.Sources, SourceReplays{Topic: src.topic, Partition: src.partition, Replayed: n})
	}
	slices.SortFunc(st.Sources, func(a, b SourceReplays) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return st, err
}

// sourcePartition names a partition letters are replayed to.
type sourcePartition struct {
	topic     string
	partition int32
}

// replayRun is one Replay's state across the batches it reads.
type replayRun struct {
	opts     ReplayOptions
	log      *slog.Logger
	admin    *kafka.Admin
	replayer *kafka.Replayer
	pick     picker
	st       *ReplayStats
	sources  map[sourcePartition]int64 // letters replayed to each
	// finish runs a batch to its end even when a stop is asked: what was
	// acknowledged is committed, so that a stop never causes a replay twice.
	finish context.Context
}

// batch replays the letters of one batch that the picker chooses and
// records how far it got.
func (r *replayRun) batch(b kafka.Batch) error {
	var todo []kafka.Letter
	for _, rec := range b.Records {
		if l := kafka.LetterOf(rec); r.pick.pick(r.st, l) {
			todo = append(todo, l)
		}
	}
	if err := r.replayer.Check(r.finish, todo); err != nil {
		return err // nothing of the batch sent
	}
	acked := make([]bool, len(todo))
	var err error
	if r.opts.DryRun {
		for i := range acked {
			acked[i] = true
		}
	} else {
		acked, err = r.replayer.Replay(r.finish, todo)
	}
	for i, l := range todo {
		if acked[i] {
			r.sources[sourcePartition{l.SourceTopic, l.SourcePartition}]++
			r.st.Replayed++
		}
	}
	if r.opts.DryRun {
		return nil
	}
	// What was acknowledged is recorded even when a letter failed, so that
	// the next run sends only what this one did not.
	next := settle(b.Next, todo, acked, r.pick.ahead)
	if cerr := commitReplayed(r.finish, r.log, r.admin, r.opts.Topic, r.st.Groups, r.pick.done, r.pick.ahead, next); cerr != nil {
		if err != nil {
			return fmt.Errorf("%w (and recording the progress failed: %w)", err, cerr)
		}
		return cerr
	}
	return err
}

// picker chooses the dead letters a replay sends.
type picker struct {
	topic   string                     // the dead-letter topic
	classes []string                   // the classes to replay
	done    map[string]map[int32]int64 // class → partition → next offset not yet replayed
	ahead   aheadSet                   // letters replayed past some class's next offset
	seen    map[origin]struct{}        // the source records picked so far
	seed    maphash.Seed
}

// origin names a dead letter's source record: its coordinates and a hash
// of its key and value, which tell apart two records at the same offset
// of a topic deleted and created again.
type origin struct {
	topic     string
	partition int32
	offset    int64
	sum       uint64
}

// pick counts a dead letter in st and says whether to replay it: one of
// the classes, not replayed by an earlier run (done), not a marker, with a
// source to go back to other than the dead-letter topic itself, and not a
// copy of one picked before.
func (p *picker) pick(st *ReplayStats, l kafka.Letter) bool {
	st.Read++
	next, seen := p.done[l.Class][l.Partition]
	switch {
	case !slices.Contains(order.Classes, l.Class):
		st.Skipped[SkipNoClass]++
	case !slices.Contains(p.classes, l.Class):
		st.OtherClasses++
	case seen && l.Offset < next, p.ahead[l.Partition][l.Offset]:
		st.Earlier++
	case l.Truncated:
		st.Skipped[SkipMarker]++
	case l.SourceTopic == "":
		st.Skipped[SkipNoSource]++
	case l.SourceTopic == p.topic:
		st.Skipped[SkipLoop]++
	case p.copied(l):
		st.Skipped[SkipCopy]++
	default:
		return true
	}
	return false
}

// copied reports whether l's source record was picked before, and
// remembers it. A letter whose headers do not name the source offset is
// never taken for a copy.
func (p *picker) copied(l kafka.Letter) bool {
	if l.SourcePartition < 0 || l.SourceOffset < 0 {
		return false
	}
	var h maphash.Hash
	h.SetSeed(p.seed)
	_, _ = h.Write(l.Key)
	_ = h.WriteByte(0)
	_, _ = h.Write(l.Value)
	o := origin{l.SourceTopic, l.SourcePartition, l.SourceOffset, h.Sum64()}
	if _, ok := p.seen[o]; ok {
		return true
	}
	p.seen[o] = struct{}{}
	return false
}

// replayFrom is where each partition is read from: the earliest next
// offset of the classes' groups, never before the partition's first record
// (records deleted by retention cannot be replayed).
func replayFrom(starts map[int32]int64, classes []string, done map[string]map[int32]int64) map[int32]int64 {
	from := map[int32]int64{}
	for p, start := range starts {
		lo := int64(-1)
		for _, c := range classes {
			n, ok := done[c][p]
			if !ok {
				n = start
			}
			if lo < 0 || n < lo {
				lo = n
			}
		}
		from[p] = max(lo, start)
	}
	return from
}
