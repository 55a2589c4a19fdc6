package pipeline

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/foodpipe/foodpipe/pkg/kafka"
)

// TestConsumeSameInstanceIDTwice: an operator starts a second consumer with
// the first one's --instance-id. The broker fences the first for good
// (FENCED_INSTANCE_ID); it stops with a permanent error naming the instance
// id instead of retrying to join for ever, and the second goes on: every
// order, including those produced after the fencing, is stored once.
func TestConsumeSameInstanceIDTwice(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(1000)
	sink := newMemSink()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	opts := f.options()
	opts.InstanceID, opts.Until = "consumer-a", nil
	first := make(chan error, 1)
	go func() {
		_, err := Consume(ctx, f.cluster, sink, opts)
		first <- err
	}()
	waitFor(t, "the first consumer to store", func() bool { return sink.rowCount() > 0 })
	second := make(chan error, 1)
	var stats Stats
	go func() {
		var err error
		stats, err = Consume(ctx, f.cluster, sink, opts)
		second <- err
	}()
	select {
	case err := <-first:
		if !errors.Is(err, ErrPermanent) || !containsAll(err.Error(), `"consumer-a"`, "group g", "FENCED_INSTANCE_ID") {
			t.Fatalf("the fenced consumer ended with %v, want a permanent error naming the group, the instance id and the fencing", err)
		}
	case <-ctx.Done():
		t.Fatal("the fenced consumer did not stop")
	}
	f.produce(500)
	waitFor(t, "the second consumer to store the rest", func() bool { return maps.Equal(sink.stored(), f.end) })
	cancel()
	if err := <-second; err != nil {
		t.Fatalf("the second consumer: %v", err)
	}
	if sink.rowCount() != f.valid || stats.Stored == 0 {
		t.Errorf("%d rows, want %d; the second consumer stored %d", sink.rowCount(), f.valid, stats.Stored)
	}
	checkChains(t, sink.writes, nil)
}

// TestConsumeRefusedByTheGroup: a consumer the group refuses for a reason
// that rejoining cannot fix stops at once with a permanent error that says
// what to change, having stored nothing: a session timeout the broker does
// not allow (a setting: exit 2), a group another application uses with
// another assignment protocol.
func TestConsumeRefusedByTheGroup(t *testing.T) {
	t.Parallel()
	t.Run("session timeout", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.produce(100)
		sink := newMemSink()
		opts := f.options()
		opts.SessionTimeout, opts.HeartbeatInterval = time.Second, 100*time.Millisecond // the broker's minimum is 6 s
		err := consumeRefused(t, f, sink, opts)
		if !errors.Is(err, kafka.ErrSettingRefused) || !containsAll(err.Error(), "group g", "session-timeout 1s") {
			t.Errorf("err = %v, want the refused setting named", err)
		}
	})
	t.Run("another application's group", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.produce(100)
		other, err := kgo.NewClient(kgo.SeedBrokers(f.brokers...), kgo.ConsumerGroup("g"), kgo.ConsumeTopics(testTopic),
			kgo.Balancers(kgo.RangeBalancer()))
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if fs := other.PollRecords(ctx, 1); fs.Err0() != nil || fs.NumRecords() == 0 {
			t.Fatalf("the other application did not join: %v", fs.Err0())
		}
		sink := newMemSink()
		err = consumeRefused(t, f, sink, f.options())
		if errors.Is(err, kafka.ErrSettingRefused) || !containsAll(err.Error(), "group g is in use by another application") {
			t.Errorf("err = %v, want the group named as another application's", err)
		}
	})
}

// consumeRefused runs a consumer that must stop by itself with a
// permanent error from its group, and checks it stored nothing.
func consumeRefused(t *testing.T, f *fake, sink *memSink, opts Options) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	opts.Until = nil
	_, err := Consume(ctx, f.cluster, sink, opts)
	if ctx.Err() != nil {
		t.Fatal("the refused consumer did not stop")
	}
	if !errors.Is(err, ErrPermanent) || !errors.Is(err, kafka.ErrShutOut) {
		t.Fatalf("err = %v, want a permanent error: shut out of the group", err)
	}
	if n := sink.rowCount(); n != 0 || len(sink.stored()) != 0 {
		t.Errorf("stored %d rows and offsets %v, want nothing", n, sink.stored())
	}
	return err
}
