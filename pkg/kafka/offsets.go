package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/foodpipe/foodpipe/internal/reach"
)

// missingTopic is the one line a command ends with when topics it needs do
// not exist, naming them and the fix.
func missingTopic(topics ...string) error {
	return fmt.Errorf("%w: %s: run foodpipe topics init", ErrTopicMissing, strings.Join(topics, ", "))
}

// MissingTopics returns those of topics that do not exist, or are not yet
// served with a leader for every partition (a topic just created), in the
// order given.
func (a *Admin) MissingTopics(ctx context.Context, topics ...string) ([]string, error) {
	td, err := a.adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	var missing []string
	for _, t := range topics {
		d, ok := td[t]
		ready := ok && d.Err == nil && len(d.Partitions) > 0
		for _, p := range d.Partitions {
			ready = ready && p.Err == nil && p.Leader >= 0
		}
		switch {
		case ready:
		case !ok || d.Err == nil || errors.Is(d.Err, kerr.UnknownTopicOrPartition) || errors.Is(d.Err, kerr.LeaderNotAvailable):
			missing = append(missing, t)
		default:
			return nil, fmt.Errorf("describe topic %s: %w", t, d.Err)
		}
	}
	return missing, nil
}

// topicGone says whether topic no longer exists, as the cluster's metadata
// says now. A delivery's UNKNOWN_TOPIC_OR_PARTITION alone does not prove
// it: a broker may answer so for a moment while leadership moves.
func topicGone(ctx context.Context, cl *kgo.Client, topic string) bool {
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return false
	}
	d, ok := td[topic]
	return !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition)
}

// CheckTopics fails with ErrTopicMissing, naming every missing topic and
// the fix, unless all of topics exist, and with ErrCompacted when one of
// them is compacted.
func (a *Admin) CheckTopics(ctx context.Context, topics ...string) error {
	missing, err := a.MissingTopics(ctx, topics...)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return missingTopic(missing...)
	}
	return a.refuseCompacted(ctx, topics...)
}

// ErrCompacted marks a topic whose cleanup.policy includes compact.
var ErrCompacted = errors.New("compacted topic")

// refuseCompacted fails with ErrCompacted when one of topics is compacted.
// Orders and dead letters are keyed by customer_id: compaction would keep
// each customer's latest record and delete the others, read or not, and a
// reader sees no gap it could report (offsets of a compacted topic skip).
func (a *Admin) refuseCompacted(ctx context.Context, topics ...string) error {
	rcs, err := a.adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return fmt.Errorf("describe topics %s: %w", strings.Join(topics, ", "), err)
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			return fmt.Errorf("describe topic %s: %w", rc.Name, rc.Err)
		}
		for _, c := range rc.Configs {
			if policy := c.MaybeValue(); c.Key == "cleanup.policy" && strings.Contains(policy, "compact") {
				return fmt.Errorf("%w: %s has cleanup.policy=%s, which deletes all but the latest record of each customer, "+
					"stored or not: set it to delete (kafka-configs --alter --entity-type topics --entity-name %s --add-config cleanup.policy=delete)",
					ErrCompacted, rc.Name, policy, rc.Name)
			}
		}
	}
	return nil
}

// Bounds lists the offsets every partition of topic holds now: from its
// first record to its high watermark.
func (a *Admin) Bounds(ctx context.Context, topic string) (map[int32]Bounds, error) {
	b, err := listBounds(ctx, a.adm, topic)
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil, missingTopic(topic)
	}
	return b, err
}

// StableEnds lists, per partition of topic, the offset a reader that skips
// uncommitted transactions can read up to now (the last stable offset;
// the high watermark where no transaction is open).
func (a *Admin) StableEnds(ctx context.Context, topic string) (map[int32]int64, error) {
	out, err := listOffsets(ctx, a.adm.ListCommittedOffsets, topic)
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil, missingTopic(topic)
	}
	if err != nil {
		return nil, fmt.Errorf("list stable offsets of %s: %w", topic, err)
	}
	return out, nil
}

// listOffsets asks the brokers for an offset of each partition of topic
// with list, one of kadm's List…Offsets, and returns them by partition.
// kadm gives a partition's error beside its offset, not as the call's;
// folded in here, a partition that failed is never read as one at offset 0.
func listOffsets(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error),
	topic string) (map[int32]int64, error) {
	lo, err := list(ctx, topic)
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// TopicID returns the id of topic as Kafka's tools print it, "" when the
// cluster has no topic ids.
func (a *Admin) TopicID(ctx context.Context, topic string) (string, error) {
	id, err := topicID(ctx, a.adm, topic)
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return "", missingTopic(topic)
	}
	return id, err
}

// CommittedOffsets returns the offsets group committed to Kafka for the
// partitions of topic; a partition with no commit is absent, and so is
// every partition of a group the coordinator does not know.
func (a *Admin) CommittedOffsets(ctx context.Context, group, topic string) (map[int32]int64, error) {
	pos, err := a.CommittedPositions(ctx, group, topic)
	if err != nil {
		return nil, err
	}
	out := make(map[int32]int64, len(pos))
	for p, o := range pos {
		out[p] = o.Next
	}
	return out, nil
}

// Position is a group's committed offset in one partition, with the
// metadata string committed beside it.
type Position struct {
	Next     int64
	Metadata string
}

// CommittedPositions is CommittedOffsets with each commit's metadata.
func (a *Admin) CommittedPositions(ctx context.Context, group, topic string) (map[int32]Position, error) {
	var resp kadm.OffsetResponses
	err := a.coordinated(ctx, func(ctx context.Context) (err error) {
		if resp, err = a.adm.FetchOffsetsForTopics(ctx, group, topic); err == nil {
			err = resp.Error()
		}
		return err
	})
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]Position{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s for %s: %w", group, topic, err)
	}
	out := map[int32]Position{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.At >= 0 {
			out[o.Partition] = Position{Next: o.At, Metadata: o.Metadata}
		}
	})
	return out, nil
}

// CommitOffsets commits offsets of topic for group without joining it, as
// a tool that reads partitions directly does. Kafka accepts that only while
// the group has no members: a group of foodpipe's own that no consumer
// joins (dlq replay's).
func (a *Admin) CommitOffsets(ctx context.Context, group, topic string, offsets map[int32]int64) error {
	pos := make(map[int32]Position, len(offsets))
	for p, n := range offsets {
		pos[p] = Position{Next: n}
	}
	return a.CommitPositions(ctx, group, topic, pos)
}

// CommitPositions is CommitOffsets with metadata (at most the broker's
// offset.metadata.max.bytes, 4096 by default).
func (a *Admin) CommitPositions(ctx context.Context, group, topic string, positions map[int32]Position) error {
	if len(positions) == 0 {
		return nil
	}
	var os kadm.Offsets
	for _, p := range slices.Sorted(maps.Keys(positions)) {
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: positions[p].Next, LeaderEpoch: -1, Metadata: positions[p].Metadata})
	}
	resp, err := a.adm.CommitOffsets(ctx, group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("commit offsets of group %s for %s: %w", group, topic, err)
	}
	return nil
}

// coordinated runs a group request until it no longer fails for want of
// the group's coordinator: a new cluster answers COORDINATOR_NOT_AVAILABLE
// while it creates __consumer_offsets, and a coordinator that moves answers
// COORDINATOR_LOAD_IN_PROGRESS or NOT_COORDINATOR for a moment. franz-go
// gives such an answer back at once; this waits up to kafka-timeout for it
// to pass (reach.Wait, as at start), then returns the broker's error; any
// other error at once. (Commits need no such wait: franz-go retries their
// coordinator look-up itself.)
func (a *Admin) coordinated(ctx context.Context, request func(context.Context) error) error {
	err, _ := reach.Wait(ctx, a.wait, request, func(err error) bool {
		return !errors.Is(err, kerr.CoordinatorNotAvailable) && !errors.Is(err, kerr.CoordinatorLoadInProgress) &&
			!errors.Is(err, kerr.NotCoordinator)
	}, nil)
	return err
}
