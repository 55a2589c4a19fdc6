package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/config"
)

// TestReadTopicEndsAtTransactionMarkers: a partition whose last offsets
// are an aborted transaction and its marker is still read to its end, and
// the aborted records are not handed over.
func TestReadTopicEndsAtTransactionMarkers(t *testing.T) {
	t.Parallel()
	c, cluster := fakeCluster(t, 1, "t")
	ctx := t.Context()

	plain := fakeProducer(t, c, "t")
	for _, v := range []string{"a", "b", "c"} {
		if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	txn := fakeProducer(t, c, "t", kgo.TransactionalID("x"))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Value: []byte("aborted")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}

	admin := testAdmin(ctx, t, cluster)
	ends, err := admin.StableEnds(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if ends[0] != 5 {
		t.Fatalf("stable end %d, want 5 (3 records, an aborted one, its marker)", ends[0])
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var got []string
	var next int64
	err = ReadTopic(rctx, cluster, "t", map[int32]int64{0: 1}, ends, func(b Batch) error {
		for _, r := range b.Records {
			got = append(got, string(r.Value))
		}
		next = b.Next[0]
		return nil
	})
	if err != nil {
		t.Fatalf("ReadTopic: %v (read %q)", err, got)
	}
	if len(got) != 2 || got[0] != "b" || got[1] != "c" || next != 5 {
		t.Errorf("read %q up to %d, want b, c up to 5", got, next)
	}
}

// testAdmin connects an Admin to cluster, closed when the test ends.
func testAdmin(ctx context.Context, t *testing.T, cluster Cluster) *Admin {
	t.Helper()
	admin, err := NewAdmin(ctx, cluster)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	return admin
}

// fakeProducer connects a plain franz-go client to the kfake cluster c,
// producing to topic, closed when the test ends.
func fakeProducer(t *testing.T, c *kfake.Cluster, topic string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// fakeCluster starts franz-go's in-process kfake broker with the topics
// seeded, stopped when the test ends, and the Cluster to reach it.
func fakeCluster(t *testing.T, partitions int32, topics ...string) (*kfake.Cluster, Cluster) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, Cluster{Config: config.Kafka{Brokers: c.ListenAddrs(), ConnectTimeout: 10 * time.Second},
		ClientID: "foodpipe-test", Logger: testenv.Logger(t)}
}
