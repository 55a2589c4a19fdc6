package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/store"
)

// TestStopAtEnd: a batch job stores exactly up to the end offsets seen at
// start, not the records produced after them, and then Consume returns.
func TestStopAtEnd(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(1000)
	end, valid := maps.Clone(f.end), f.valid
	sink := newMemSink()
	opts := f.options()
	opts.Until = nil
	if err := PrepareJob(t.Context(), f.cluster, sink, &opts, JobOptions{StopAtEnd: true}); err != nil {
		t.Fatal(err)
	}
	f.produce(500) // after the start: left for the next run
	s := f.consume(sink, opts)
	if !maps.Equal(sink.stored(), end) || !maps.Equal(s.Offsets, end) {
		t.Errorf("stored offsets %v (stats %v), want the ends at start %v", sink.stored(), s.Offsets, end)
	}
	if got := sink.rowCount(); got != valid {
		t.Errorf("%d rows, want the %d valid orders produced before the start", got, valid)
	}
	checkChains(t, sink.writes, nil)
}

// TestStopAtEndStoredPastEnd: a stored offset past the partition's end
// (the topic deleted and created again, an offset set by hand) is not "all
// stored": the batch job fails as consume does, naming the offset, and with
// --offset-out-of-range earliest it stores the partition from its start.
// It used to stop at once, exit 0, with nothing stored.
func TestStopAtEndStoredPastEnd(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(1000)
	end, valid := maps.Clone(f.end), f.valid
	for _, policy := range []string{OutOfRangeFail, OutOfRangeEarliest} {
		sink := newMemSink()
		for p, e := range end { // every partition: nothing seems left to drain
			sink.offsets[p] = store.StoredOffset{Next: e + 5000}
		}
		opts := f.options()
		opts.Until, opts.OutOfRange = nil, policy
		if err := PrepareJob(t.Context(), f.cluster, sink, &opts, JobOptions{StopAtEnd: true}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		_, err := Consume(ctx, f.cluster, sink, opts)
		cancel()
		if policy == OutOfRangeFail {
			if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "outside the partition's offsets") {
				t.Errorf("policy fail: err %v, want the stored offset refused", err)
			}
			for p, n := range sink.stored() {
				if n != end[p]+5000 {
					t.Errorf("policy fail: stored offset of partition %d moved to %d", p, n)
				}
			}
			continue
		}
		if err != nil || !maps.Equal(sink.stored(), end) || sink.rowCount() != valid {
			t.Errorf("policy earliest: err %v, stored %v, %d rows; want the ends %v and all %d valid orders",
				err, sink.stored(), sink.rowCount(), end, valid)
		}
	}
}

// TestWaitForTopic: without WaitForTopic missing topics fail at once,
// named; with it PrepareJob returns once they exist.
func TestWaitForTopic(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	opts := f.options()
	opts.Topic, opts.DLQTopic = "later", "later.dlq"
	err := PrepareJob(t.Context(), f.cluster, newMemSink(), &opts, JobOptions{})
	if !errors.Is(err, kafka.ErrTopicMissing) || !strings.Contains(err.Error(), "later, later.dlq: run foodpipe topics init") {
		t.Fatalf("missing topics: %v", err)
	}

	done := make(chan error, 1)
	go func() {
		done <- PrepareJob(t.Context(), f.cluster, newMemSink(), &opts, JobOptions{WaitForTopic: true})
	}()
	select {
	case err := <-done:
		t.Fatalf("returned before the topics exist: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopics(context.Background(), 3, 1, nil, "later", "later.dlq"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("still waiting a minute after the topics were created")
	}
}

// TestStopAtEndSaysWhatItWaitsFor: a batch job whose remaining partitions
// do not move in its database (their members stopped, failing, or writing
// to another database by mistake) said nothing and waited for ever. It
// now names them, with the stored and end offsets, every stallWarn.
func TestStopAtEndSaysWhatItWaitsFor(t *testing.T) {
	t.Parallel()
	sink := newMemSink()
	sink.offsets[0] = store.StoredOffset{Next: 100}
	sink.offsets[1] = store.StoredOffset{Next: 40}
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	clock := time.Unix(0, 0)
	now := func() time.Time { return clock }
	until := untilStored(t.Context(), sink, "g", "orders", map[int32]int64{0: 100, 1: 100}, nil, log, now)

	own := map[int32]int64{0: 100} // this member's partition is done
	for range 7 {                  // 70 s of no progress on partition 1
		if until(own) {
			t.Fatal("stopped with partition 1 at 40 of 100")
		}
		clock = clock.Add(10 * time.Second)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 2 {
		t.Errorf("%d warnings in 70 s of waiting, want 2 (one each %v):\n%s", n, stallWarn, logs.String())
	}
	for _, want := range []string{"another database", "stored_offsets=map[1:40]", "end_offsets=map[1:100]", "group=g"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("warning does not contain %q:\n%s", want, logs.String())
		}
	}
	sink.offsets[1] = store.StoredOffset{Next: 100}
	if !until(own) {
		t.Error("did not stop once partition 1 reached its end")
	}
}

// flakyOffsets fails LoadOffsets with err the first fails times.
type flakyOffsets struct {
	OffsetStore
	fails atomic.Int32
	err   error
}

func (f *flakyOffsets) LoadOffsets(ctx context.Context, group, topic string) (map[int32]store.StoredOffset, error) {
	if f.fails.Add(-1) >= 0 {
		return nil, f.err
	}
	return f.OffsetStore.LoadOffsets(ctx, group, topic)
}

// TestStopAtEndRetriesWhatConsumeRetries: a batch job that found the
// offsets table locked at start (lock_timeout, 55P03) exited 1, where
// consume retries; it now retries what consume retries and fails at once
// only on what consume would fail on too.
func TestStopAtEndRetriesWhatConsumeRetries(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(300)
	locked := &flakyOffsets{OffsetStore: newMemSink(), err: &pgconn.PgError{Code: "55P03", Message: "canceling statement due to lock timeout"}}
	locked.fails.Store(3)
	opts := f.options()
	if err := PrepareJob(t.Context(), f.cluster, locked, &opts, JobOptions{StopAtEnd: true}); err != nil {
		t.Fatalf("a lock timeout at start: %v, want it retried", err)
	}
	if n := locked.fails.Load(); n >= 0 {
		t.Errorf("LoadOffsets failures left %d, want all 3 used", n+1)
	}
	gone := &flakyOffsets{OffsetStore: newMemSink(), err: &pgconn.PgError{Code: "42P01", Message: `relation "consumer_offsets" does not exist`}}
	gone.fails.Store(1_000)
	opts = f.options()
	err := PrepareJob(t.Context(), f.cluster, gone, &opts, JobOptions{StopAtEnd: true})
	if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "load stored offsets") {
		t.Errorf("a missing table: %v, want a permanent error at once", err)
	}
	if n := gone.fails.Load(); n != 999 {
		t.Errorf("a missing table was read %d times, want once", 1000-n)
	}
}
