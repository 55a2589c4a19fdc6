package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Record is a record read back from a topic: what a test checks.
type Record struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   map[string]string
	Timestamp time.Time
}

// Admin returns an admin client of the test broker, independent of the
// code under test, closed when the test ends.
func Admin(t testing.TB) *kadm.Client {
	t.Helper()
	return AdminAt(t, Brokers(t))
}

// AdminAt is Admin for a broker of the test's own, such as a private
// test bed.
func AdminAt(t testing.TB, brokers []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	t.Cleanup(adm.Close)
	return adm
}

// CreateTopic creates a topic with n partitions, or fails the test.
func CreateTopic(t testing.TB, topic string, partitions int32) {
	t.Helper()
	resp, err := Admin(t).CreateTopic(context.Background(), partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	WaitTopic(t, topic)
}

// SetTopicConfig sets one config of topic, or fails the test.
func SetTopicConfig(t testing.TB, topic, key, value string) {
	t.Helper()
	rs, err := Admin(t).AlterTopicConfigs(context.Background(),
		[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: key, Value: &value}}, topic)
	if err == nil {
		_, err = rs.On(topic, nil)
	}
	if err != nil {
		t.Fatalf("set %s=%s on topic %s: %v", key, value, topic, err)
	}
}

// WaitTopic waits until the broker serves every partition of topic.
func WaitTopic(t testing.TB, topic string) {
	t.Helper()
	adm := Admin(t)
	for range 100 {
		td, err := adm.ListTopics(context.Background(), topic)
		if err == nil && td[topic].Err == nil && len(td[topic].Partitions) > 0 {
			ok := true
			for _, p := range td[topic].Partitions {
				ok = ok && p.Err == nil && p.Leader >= 0
			}
			if ok {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("topic %s not served after 10s", topic)
}

// EndOffsets returns the end offset (high watermark) of every partition.
func EndOffsets(t testing.TB, topic string) map[int32]int64 {
	t.Helper()
	return EndOffsetsAt(t, Brokers(t), topic)
}

// EndOffsetsAt is EndOffsets on the given brokers.
func EndOffsetsAt(t testing.TB, brokers []string, topic string) map[int32]int64 {
	t.Helper()
	lo, err := AdminAt(t, brokers).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

// Records reads every record of topic, from the start of each partition to
// its end offset at the time of the call, in offset order per partition.
func Records(t testing.TB, topic string) []Record {
	t.Helper()
	return RecordsAt(t, Brokers(t), topic)
}

// RecordsAt is Records on the given brokers, such as an in-process kfake
// cluster's.
func RecordsAt(t testing.TB, brokers []string, topic string) []Record {
	t.Helper()
	end := EndOffsetsAt(t, brokers, topic)
	var total int64
	offsets := map[string]map[int32]kgo.Offset{topic: {}}
	for p, e := range end {
		total += e
		offsets[topic][p] = kgo.NewOffset().AtStart()
	}
	if total == 0 {
		return nil
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(offsets),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out []Record
	remaining := map[int32]bool{}
	for p, e := range end {
		if e > 0 {
			remaining[p] = true
		}
	}
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: timed out with %d of ~%d records", topic, len(out), total)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("read %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end[r.Partition] {
				return
			}
			h := map[string]string{}
			for _, kv := range r.Headers {
				h[kv.Key] = string(kv.Value)
			}
			out = append(out, Record{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Headers: h, Timestamp: r.Timestamp})
			if r.Offset == end[r.Partition]-1 {
				delete(remaining, r.Partition)
			}
		})
	}
	return out
}

// WaitTopicGone waits until the broker no longer lists a deleted topic, so
// that it can be created again.
func WaitTopicGone(t testing.TB, topic string) {
	t.Helper()
	adm := Admin(t)
	for range 300 {
		td, err := adm.ListTopics(context.Background(), topic)
		if err == nil {
			if _, ok := td[topic]; !ok || td[topic].Err != nil {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("topic %s still listed 30s after its deletion", topic)
}
