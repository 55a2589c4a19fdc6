package kafka

import (
	"context"
	"errors"
	"fmt"
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
}

// NewAdmin connects an admin client, failing fast when Kafka is unreachable.
func NewAdmin(ctx context.Context, conn Conn) (*Admin, error) {
	// franz-go spaces metadata requests at least 5s apart by default; an
	// admin that creates a topic and then waits for it to be served would
	// sit out those 5s twice per topic.
	cl, err := conn.newClient(ctx, kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	return &Admin{adm: kadm.NewClient(cl)}, nil
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
}

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
		{Name: k.DLQ(), Partitions: int32(t.Partitions), ReplicationFactor: int16(t.ReplicationFactor), Configs: configs(t.DLQRetention)},
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
		res, err := a.ensure(ctx, spec, addPartitions)
		if err != nil {
			return results, err
		}
		results = append(results, res)
	}
	return results, nil
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
		resp, err := a.adm.CreateTopic(ctx, spec.Partitions, spec.ReplicationFactor, configs, spec.Name)
		if err == nil {
			err = withMessage(resp.Err, resp.ErrMessage)
		}
		switch {
		case err == nil:
			// Wait until the topic is served, so that whatever runs next
			// (a producer, a second topics init) sees all of it.
			if _, err := a.waitReady(ctx, spec.Name); err != nil {
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
	td, err := a.waitReady(ctx, spec.Name)
	if err != nil {
		return TopicResult{}, err
	}
	return a.check(ctx, spec, td, addPartitions)
}

// waitReady polls until the topic's metadata and configs are served with a
// leader for every partition. KRaft brokers learn of a new topic a moment
// after the controller created it; in that window a topic can look empty.
func (a *Admin) waitReady(ctx context.Context, topic string) (kadm.TopicDetail, error) {
	var lastErr error
	for range 100 {
		td, err := a.adm.ListTopics(ctx, topic)
		if err == nil {
			err = td[topic].Err
		}
		if err == nil && len(td[topic].Partitions) > 0 {
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
	return kadm.TopicDetail{}, fmt.Errorf("topic %s is not served 10s after it was created: %v", topic, lastErr)
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
		if actual[k] != spec.Configs[k] {
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

// EndOffsets returns the end offset (high watermark) of each partition.
func (a *Admin) EndOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	lo, err := a.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
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
