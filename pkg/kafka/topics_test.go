package kafka

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/config"
)

// testCluster returns the test bed's broker.
func testCluster(t *testing.T) Cluster {
	t.Helper()
	return Cluster{
		Config:   config.Kafka{Brokers: testenv.Brokers(t), ConnectTimeout: 20 * time.Second},
		ClientID: "foodpipe-test",
		Logger:   testenv.Logger(t),
	}
}

// rawAdmin is an admin client independent of the code under test, used to
// check and to arrange the broker's state.
func rawAdmin(t *testing.T) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(testenv.Brokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	t.Cleanup(adm.Close)
	return adm
}

func testSpecs(t *testing.T) (config.Kafka, config.Topics, []TopicSpec) {
	k := config.Default().Kafka
	k.Topic = testenv.Name(t, "orders")
	topics := config.Default().Topics
	return k, topics, Specs(k, topics)
}

func topicConfig(t *testing.T, adm *kadm.Client, topic, key string) string {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rc.Configs {
		if c.Key == key {
			return c.MaybeValue()
		}
	}
	return ""
}

func TestEnsureTopicsCreatesThenMatches(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	k, _, specs := testSpecs(t)
	admin, err := NewAdmin(ctx, testCluster(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	res, err := admin.EnsureTopics(ctx, specs, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Topic != k.Topic || res[1].Topic != k.Topic+".dlq" {
		t.Fatalf("results = %+v, want the topic and its .dlq", res)
	}
	for _, r := range res {
		if r.Status != StatusCreated {
			t.Errorf("%s: status %q, want %q", r.Topic, r.Status, StatusCreated)
		}
	}

	// Check with an independent client what the broker now holds.
	adm := rawAdmin(t)
	td, err := adm.ListTopics(ctx, k.Topic, k.DLQ())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		topic, retention string
	}{{k.Topic, "604800000"}, {k.DLQ(), "2592000000"}} {
		if got := len(td[want.topic].Partitions); got != 3 {
			t.Errorf("%s has %d partitions, want 3", want.topic, got)
		}
		if got := topicConfig(t, adm, want.topic, "retention.ms"); got != want.retention {
			t.Errorf("%s retention.ms = %s, want %s", want.topic, got, want.retention)
		}
		if got := topicConfig(t, adm, want.topic, "cleanup.policy"); got != "delete" {
			t.Errorf("%s cleanup.policy = %s, want delete", want.topic, got)
		}
	}

	again, err := admin.EnsureTopics(ctx, specs, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range again {
		if r.Status != StatusMatches || len(r.Differences) != 0 {
			t.Errorf("second run %s: %q %v, want %q", r.Topic, r.Status, r.Differences, StatusMatches)
		}
	}
}

func TestEnsureTopicsReportsDrift(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	k, topics, _ := testSpecs(t)
	adm := rawAdmin(t)
	// Someone made the orders topic by hand: 2 partitions, 1 day retention.
	if _, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": kadm.StringPtr("86400000")}, k.Topic); err != nil {
		t.Fatal(err)
	}
	admin, err := NewAdmin(ctx, testCluster(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	res, err := admin.EnsureTopics(ctx, Specs(k, topics), false)
	if err != nil {
		t.Fatal(err)
	}
	orders := res[0]
	if orders.Status != StatusDiffers {
		t.Fatalf("status %q, want %q", orders.Status, StatusDiffers)
	}
	got := map[string]Difference{}
	for _, d := range orders.Differences {
		got[d.Key] = d
	}
	if d := got["partitions"]; d.Want != "3" || !strings.HasPrefix(d.Got, "2") {
		t.Errorf("partitions difference = %+v, want 3 vs 2", d)
	}
	if d := got["retention.ms"]; d.Want != "604800000" || d.Got != "86400000" {
		t.Errorf("retention difference = %+v", d)
	}
	if res[1].Status != StatusCreated {
		t.Errorf("dlq status %q, want created", res[1].Status)
	}

	// --add-partitions grows it; the retention stays reported, untouched.
	res, err = admin.EnsureTopics(ctx, Specs(k, topics), true)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Partitions != 3 || len(res[0].Differences) != 1 || res[0].Differences[0].Key != "retention.ms" {
		t.Errorf("after --add-partitions: %+v", res[0])
	}
	td, err := adm.ListTopics(ctx, k.Topic)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(td[k.Topic].Partitions); n != 3 {
		t.Errorf("broker reports %d partitions, want 3", n)
	}

	// Asking for fewer partitions never shrinks the topic.
	fewer := topics
	fewer.Partitions = 1
	res, err = admin.EnsureTopics(ctx, Specs(k, fewer), true)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != StatusDiffers || res[0].Partitions != 3 {
		t.Errorf("asking for 1 partition: %+v, want differs and still 3", res[0])
	}
}

func TestEnsureTopicsConcurrent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, _, specs := testSpecs(t)
	// Looked up here, not in the goroutines: without services it skips the
	// test, and a skip outside the test's goroutine would hang it.
	cluster := testCluster(t)
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			admin, err := NewAdmin(ctx, cluster)
			if err != nil {
				errs <- err
				return
			}
			defer admin.Close()
			res, err := admin.EnsureTopics(ctx, specs, false)
			if err == nil {
				for _, r := range res {
					if r.Status != StatusCreated && r.Status != StatusMatches {
						err = context.Canceled
						t.Errorf("%s: %q %v", r.Topic, r.Status, r.Differences)
					}
				}
			}
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestUnreachableBrokerFailsInOneLine(t *testing.T) {
	t.Parallel()
	cluster := Cluster{
		Config:   config.Kafka{Brokers: []string{"127.0.0.1:1"}, ConnectTimeout: time.Second},
		ClientID: "foodpipe-test",
		Logger:   testenv.Logger(t),
	}
	_, err := NewAdmin(t.Context(), cluster)
	if err == nil {
		t.Fatal("NewAdmin succeeded against 127.0.0.1:1")
	}
	want := "cannot reach Kafka at 127.0.0.1:1: connection refused"
	if err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}
