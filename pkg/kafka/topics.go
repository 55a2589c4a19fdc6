package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/foodpipe/foodpipe/pkg/config"
)

// Admin manages topics.
type Admin struct {
	adm *kadm.Client
	// wait bounds how long a group request waits for its coordinator
	// (the cluster's kafka-timeout).
	wait time.Duration
}

// NewAdmin connects an admin client, failing fast when Kafka is unreachable.
func NewAdmin(ctx context.Context, cluster Cluster) (*Admin, error) {
	// franz-go spaces metadata requests at least 5s apart by default; an
	// admin that creates a topic and then waits for it to be served would
	// sit out those 5s twice per topic.
	cl, err := cluster.newClientAs(ctx, "admin", kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	return &Admin{adm: kadm.NewClient(cl), wait: cluster.Config.ConnectTimeout}, nil
}

// Close releases the connections.
func (a *Admin) Close() { a.adm.Close() }

// TopicSpec is a topic as foodpipe wants it.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	// Configs are the topic configs foodpipe sets and checks; keys not
	// listed here are left to the broker.
	Configs map[string]string
	// RoomFor names a topic whose every record this one must be able to
	// hold with dead-letter headers added: its max.message.bytes is set
	// to that topic's plus DeadLetterHeadroom, and an existing topic with
	// less is reported.
	RoomFor string
}

// DeadLetterHeadroom is what the dead-letter topic allows beyond the
// orders topic's largest record: room for foodpipe's headers (a few hundred
// bytes) and the batch overhead, with a wide margin for long reasons.
const DeadLetterHeadroom = 64 << 10

// Specs returns the SPEC's orders topic and its dead-letter topic.
func Specs(k config.Kafka, t config.Topics) []TopicSpec {
	configs := func(retention time.Duration) map[string]string {
		m := map[string]string{
			"retention.ms":   strconv.FormatInt(retention.Milliseconds(), 10),
			"cleanup.policy": "delete",
		}
		// With three replicas, acks=all only means "on two brokers" if the
		// topic says so; with fewer replicas 2 would make the topic unwritable.
		if t.ReplicationFactor >= 3 {
			m["min.insync.replicas"] = "2"
		}
		return m
	}
	return []TopicSpec{
		{Name: k.Topic, Partitions: int32(t.Partitions), ReplicationFactor: int16(t.ReplicationFactor), Configs: configs(t.Retention)},
		{Name: k.DLQ(), Partitions: int32(t.Partitions), ReplicationFactor: int16(t.ReplicationFactor), Configs: configs(t.DLQRetention),
			RoomFor: k.Topic},
	}
}

// Topic states reported by EnsureTopics.
const (
	StatusCreated         = "created"
	StatusMatches         = "exists, matches"
	StatusDiffers         = "differs"
	StatusPartitionsAdded = "partitions added"
)

// Difference is one setting of an existing topic that is not as wanted.
type Difference struct {
	Key  string `json:"key"`
	Want string `json:"want"`
	Got  string `json:"got"`
}

// TopicResult is what EnsureTopics found or did for one topic.
type TopicResult struct {
	Topic             string            `json:"topic"`
	Status            string            `json:"status"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Configs           map[string]string `json:"configs"`
	Differences       []Difference      `json:"differences,omitempty"`
}

// EnsureTopics creates the topics that are missing and checks the ones that
// exist, key by key. An existing topic with fewer partitions than wanted is
// grown only when addPartitions is set; partitions are never removed, since
// that would lose data and break key → partition placement.
func (a *Admin) EnsureTopics(ctx context.Context, specs []TopicSpec, addPartitions bool) ([]TopicResult, error) {
	results := make([]TopicResult, 0, len(specs))
	for _, spec := range specs {
		if spec.RoomFor != "" {
			var err error
			if spec, err = a.withRoomFor(ctx, spec); err != nil {
				return results, err
			}
		}
		res, err := a.ensure(ctx, spec, addPartitions)
		if err != nil {
			return results, err
		}
		results = append(results, res)
	}
	return results, nil
}

// withRoomFor sets spec's max.message.bytes from the topic it must hold the
// records of, which must exist by now (EnsureTopics creates it first).
func (a *Admin) withRoomFor(ctx context.Context, spec TopicSpec) (TopicSpec, error) {
	n, err := maxMessageBytes(ctx, a.adm, spec.RoomFor)
	if err != nil {
		return spec, err
	}
	configs := maps.Clone(spec.Configs)
	configs["max.message.bytes"] = strconv.Itoa(n + DeadLetterHeadroom)
	spec.Configs = configs
	return spec, nil
}

func (a *Admin) ensure(ctx context.Context, spec TopicSpec, addPartitions bool) (TopicResult, error) {
	existing, err := a.adm.ListTopics(ctx, spec.Name)
	if err != nil {
		return TopicResult{}, fmt.Errorf("list topics: %w", err)
	}
	if td, ok := existing[spec.Name]; !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		configs := make(map[string]*string, len(spec.Configs))
		for k, v := range spec.Configs {
			configs[k] = kadm.StringPtr(v)
		}
		// kadm returns the topic's error code as err; its explanation
		// ("collides with existing topic …") is only in the response.
		resp, err := a.adm.CreateTopic(ctx, spec.Partitions, spec.ReplicationFactor, configs, spec.Name)
		if resp.Err != nil {
			err = withMessage(resp.Err, resp.ErrMessage)
		}
		switch {
		case err == nil:
			// Wait until the topic is served, so that whatever runs next
			// (a producer, a second topics init) sees all of it.
			if _, err := a.waitReady(ctx, spec.Name, spec.Partitions); err != nil {
				return TopicResult{}, err
			}
			return TopicResult{
				Topic: spec.Name, Status: StatusCreated,
				Partitions: spec.Partitions, ReplicationFactor: spec.ReplicationFactor, Configs: spec.Configs,
			}, nil
		case errors.Is(err, kerr.TopicAlreadyExists):
			// Another topics init won the race: check what it made.
		default:
			return TopicResult{}, fmt.Errorf("create topic %s: %w", spec.Name, err)
		}
	}
	td, err := a.waitReady(ctx, spec.Name, 1)
	if err != nil {
		return TopicResult{}, err
	}
	return a.check(ctx, spec, td, addPartitions)
}

// waitReady polls until the topic's metadata and configs are served with at
// least partitions partitions, each with a leader. KRaft brokers learn of a
// new topic, or of partitions added, a moment after the controller made
// them; in that window a topic can look empty, or as it was before.
func (a *Admin) waitReady(ctx context.Context, topic string, partitions int32) (kadm.TopicDetail, error) {
	var lastErr error
	for range 100 {
		td, err := a.adm.ListTopics(ctx, topic)
		if err == nil {
			err = td[topic].Err
		}
		if err == nil && len(td[topic].Partitions) >= int(max(partitions, 1)) {
			ready := true
			for _, p := range td[topic].Partitions {
				ready = ready && p.Err == nil && p.Leader >= 0
			}
			if ready {
				rcs, derr := a.adm.DescribeTopicConfigs(ctx, topic)
				if derr == nil && len(rcs) > 0 {
					derr = rcs[0].Err
				}
				if derr == nil {
					return td[topic], nil
				}
				err = derr
			}
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return kadm.TopicDetail{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("the broker serves fewer than %d partitions, or one without a leader", partitions)
	}
	return kadm.TopicDetail{}, fmt.Errorf("topic %s is not served as made 10s after it was made: %w", topic, lastErr)
}

func (a *Admin) check(ctx context.Context, spec TopicSpec, td kadm.TopicDetail, addPartitions bool) (TopicResult, error) {
	res := TopicResult{
		Topic:      spec.Name,
		Status:     StatusMatches,
		Partitions: int32(len(td.Partitions)),
		Configs:    map[string]string{},
	}
	if p, ok := td.Partitions[0]; ok {
		res.ReplicationFactor = int16(len(p.Replicas))
	}

	rcs, err := a.adm.DescribeTopicConfigs(ctx, spec.Name)
	if err == nil && len(rcs) > 0 {
		err = rcs[0].Err
	}
	if err != nil {
		return res, fmt.Errorf("describe configs of topic %s: %w", spec.Name, err)
	}
	actual := map[string]string{}
	for _, c := range rcs[0].Configs {
		actual[c.Key] = c.MaybeValue()
	}

	if res.ReplicationFactor != spec.ReplicationFactor {
		res.Differences = append(res.Differences, Difference{"replication-factor", itoa(spec.ReplicationFactor), itoa(res.ReplicationFactor)})
	}
	keys := make([]string, 0, len(spec.Configs))
	for k := range spec.Configs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		res.Configs[k] = actual[k]
		if !configOK(k, spec.Configs[k], actual[k]) {
			res.Differences = append(res.Differences, Difference{k, spec.Configs[k], actual[k]})
		}
	}

	switch {
	case res.Partitions < spec.Partitions && addPartitions:
		resp, err := a.adm.UpdatePartitions(ctx, int(spec.Partitions), spec.Name)
		if err == nil {
			var r kadm.CreatePartitionsResponse
			if r, err = resp.On(spec.Name, nil); err == nil {
				err = withMessage(r.Err, r.ErrMessage)
			}
		}
		if err != nil {
			return res, fmt.Errorf("add partitions to topic %s: %w", spec.Name, err)
		}
		// What runs next (a producer, the next topics init) must see them.
		if _, err := a.waitReady(ctx, spec.Name, spec.Partitions); err != nil {
			return res, err
		}
		res.Partitions = spec.Partitions
		if len(res.Differences) == 0 {
			res.Status = StatusPartitionsAdded
		}
	case res.Partitions != spec.Partitions:
		why := itoa(res.Partitions)
		if res.Partitions < spec.Partitions {
			why += " (grow with --add-partitions)"
		} else {
			why += " (partitions are never removed)"
		}
		res.Differences = append([]Difference{{"partitions", itoa(spec.Partitions), why}}, res.Differences...)
	}
	if len(res.Differences) > 0 {
		res.Status = StatusDiffers
	}
	return res, nil
}

// configOK says whether an existing topic's config value serves what was
// wanted: equal, or for max.message.bytes at least as large.
func configOK(key, want, got string) bool {
	if key == "max.message.bytes" {
		w, err1 := strconv.Atoi(want)
		g, err2 := strconv.Atoi(got)
		return err1 == nil && err2 == nil && g >= w
	}
	return want == got
}

// withMessage adds the broker's explanation to a Kafka error code.
func withMessage(err error, msg string) error {
	if err == nil || msg == "" {
		return err
	}
	return fmt.Errorf("%w: %s", err, msg)
}

func itoa[T int16 | int32](n T) string { return strconv.Itoa(int(n)) }

// DeleteTopics deletes topics (the bench's own, after a run).
func (a *Admin) DeleteTopics(ctx context.Context, topics ...string) error {
	resp, err := a.adm.DeleteTopics(ctx, topics...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("delete topics %v: %w", topics, err)
	}
	return nil
}

// DeleteGroup deletes a consumer group that has no members left (the
// bench's or the demo's own, after a run); one that does not exist is no
// error.
func (a *Admin) DeleteGroup(ctx context.Context, group string) error {
	resp, err := a.adm.DeleteGroup(ctx, group)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return fmt.Errorf("delete group %s: %w", group, err)
	}
	return nil
}

// EndOffsets returns the end offset (high watermark) of each partition.
func (a *Admin) EndOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	out, err := listOffsets(ctx, a.adm.ListEndOffsets, topic)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	return out, nil
}

// BrokerVersion guesses the Kafka version of the cluster from the API
// versions a broker supports, e.g. "v4.1".
func (a *Admin) BrokerVersion(ctx context.Context) string {
	vs, err := a.adm.ApiVersions(ctx)
	if err != nil {
		return "unknown"
	}
	for _, v := range vs.Sorted() {
		if v.Err == nil {
			return v.VersionGuess()
		}
	}
	return "unknown"
}
