package kafka

// What a group member asks the cluster about its topic and group while it
// reads: the offsets the partitions hold, the topic's id and cleanup policy,
// and who else is in the group. These go to the brokers, not to the fetches,
// which stop moving while fetching is paused.

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Bounds are the offsets a partition holds: [Start, End). Start moves up as
// retention deletes old records; End is the last stable offset: the high
// watermark, unless another producer's transaction is open, whose records
// cannot be read (nor counted as lag) before it ends. (Kafka's Java consumer
// measures the lag of a read_committed reader the same way.)
type Bounds struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// Bounds lists, for the given partitions of the topic, the offsets they
// hold now, asking the brokers (not the last fetch, which stops moving while
// fetching is paused).
func (r *GroupReader) Bounds(ctx context.Context, parts ...int32) (map[int32]Bounds, error) {
	return listBounds(ctx, r.adm, r.topic, parts...)
}

func listBounds(ctx context.Context, adm *kadm.Client, topic string, parts ...int32) (map[int32]Bounds, error) {
	starts, err := listOffsets(ctx, adm.ListStartOffsets, topic)
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	// The last stable offsets: what a read_committed reader can reach now.
	ends, err := listOffsets(ctx, adm.ListCommittedOffsets, topic)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	out := map[int32]Bounds{}
	for p, start := range starts {
		if len(parts) == 0 || slices.Contains(parts, p) {
			out[p] = Bounds{Start: start, End: ends[p]}
		}
	}
	return out, nil
}

// Strangers lists the members of the group that are another program, by
// client id and host: an application that joined the group by mistake. The
// partitions the group gives it are not read by this one while it holds
// them.
func (r *GroupReader) Strangers(ctx context.Context) ([]string, error) {
	groups, err := r.adm.DescribeGroups(ctx, r.group)
	if err == nil {
		err = groups.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("describe group %s: %w", r.group, err)
	}
	var out []string
	for _, m := range groups[r.group].Members {
		if appName(m.ClientID) != r.app {
			out = append(out, m.ClientID+"@"+strings.TrimPrefix(m.ClientHost, "/"))
		}
	}
	slices.Sort(out)
	return out, nil
}

// appName is the program part of a client id: before the first '/'.
func appName(clientID string) string {
	name, _, _ := strings.Cut(clientID, "/")
	return name
}

// CheckNotCompacted fails with ErrCompacted when one of topics has a
// cleanup.policy that includes compact (see Admin.CheckTopics).
func (r *GroupReader) CheckNotCompacted(ctx context.Context, topics ...string) error {
	return (&Admin{adm: r.adm}).refuseCompacted(ctx, topics...)
}

// TopicID returns the topic's id as Kafka's tools print it (URL-safe
// base64), or "" when the cluster has no topic ids. A topic deleted and
// created again keeps its name but gets a new id.
func (r *GroupReader) TopicID(ctx context.Context) (string, error) {
	return topicID(ctx, r.adm, r.topic)
}

func topicID(ctx context.Context, adm *kadm.Client, topic string) (string, error) {
	td, err := adm.ListTopics(ctx, topic)
	if err == nil {
		err = td[topic].Err
	}
	if err != nil {
		return "", fmt.Errorf("describe topic %s: %w", topic, err)
	}
	id := td[topic].ID
	if id == (kadm.TopicID{}) {
		return "", nil
	}
	return base64.RawURLEncoding.EncodeToString(id[:]), nil
}
