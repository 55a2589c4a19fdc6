package pipeline

// In-process tests of the consume loop: franz-go's kfake broker and an
// in-memory sink with the store's contract. They run in a second or two,
// under the race detector, with no services; the fault tests of e2e/ prove
// the same against real Kafka and PostgreSQL.

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/foodpipe/foodpipe/pkg/store"
)

func TestConsumeStoresOnceAndDeadLettersTheRest(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(2000)
	sink := newMemSink()
	s := f.consume(sink, f.options())
	if got := sink.rowCount(); got != f.valid || s.Stored != int64(f.valid) {
		t.Errorf("%d rows (stats %d), want %d", got, s.Stored, f.valid)
	}
	if !maps.Equal(sink.stored(), f.end) {
		t.Errorf("stored offsets %v, end %v", sink.stored(), f.end)
	}
	classes, dups := f.deadLetters()
	if dups != 0 || classes[order.ClassDecode] != f.bad[order.ClassDecode] || classes[order.ClassStore] != f.bad[order.ClassStore] {
		t.Errorf("dead letters %v (%d twice), want %v", classes, dups, f.bad)
	}
	checkChains(t, sink.writes, nil)
}

// TestConsumeDeadLettersOnceAcrossRetries: the database fails after the
// dead letters of a batch were acknowledged; the retry stores the batch
// without sending them again. And a batch commits only after its dead
// letters are in the dead-letter topic.
func TestConsumeDeadLettersOnceAcrossRetries(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(600)
	sink := newMemSink()
	var failures atomic.Int32
	sink.afterBeforeCommit = func() error {
		classes, _ := f.deadLetters()
		if classes[order.ClassDecode]+classes[order.ClassStore] == 0 {
			t.Error("a batch reached its commit with no dead letter acknowledged")
		}
		if failures.Add(1) <= 3 {
			return fmt.Errorf("commit: %w", store.ErrUnreachable) // retryable
		}
		return nil
	}
	f.consume(sink, f.options())
	classes, dups := f.deadLetters()
	if dups != 0 || classes[order.ClassDecode] != f.bad[order.ClassDecode] || classes[order.ClassStore] != f.bad[order.ClassStore] {
		t.Errorf("dead letters %v with %d sent twice, want %v once each", classes, dups, f.bad)
	}
	if sink.rowCount() != f.valid {
		t.Errorf("%d rows, want %d", sink.rowCount(), f.valid)
	}
}

// TestConsumeCommitAnswerLost: the connection is lost after COMMIT was sent,
// and the commit did land. The retry finds the offsets at its own batch's
// end — not another consumer's doing — and counts the batch as stored: the
// summary's figures equal the rows and dead letters, and nothing is written
// twice.
func TestConsumeCommitAnswerLost(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(2000)
	sink := newMemSink()
	var lost atomic.Int32
	sink.loseAnswer = func() bool { return lost.Add(1) <= 4 }
	s := f.consume(sink, f.options())
	if lost.Load() < 4 {
		t.Fatalf("only %d commits: make the backlog larger", lost.Load())
	}
	if got := sink.rowCount(); got != f.valid || s.Stored != int64(f.valid) {
		t.Errorf("%d rows, the summary says %d stored; want %d", got, s.Stored, f.valid)
	}
	classes, dups := f.deadLetters()
	if dups != 0 || s.DeadLettered[order.ClassDecode] != int64(classes[order.ClassDecode]) ||
		s.DeadLettered[order.ClassStore] != int64(classes[order.ClassStore]) || classes[order.ClassDecode] != f.bad[order.ClassDecode] {
		t.Errorf("summary dead-lettered %v; the topic holds %v (%d twice); want %v", s.DeadLettered, classes, dups, f.bad)
	}
	if s.Batches != int64(sink.commits) {
		t.Errorf("summary counts %d batches, the sink committed %d", s.Batches, sink.commits)
	}
	checkChains(t, sink.writes, nil)
}

// TestConsumeTwoMembers: two consumers of one group share the partitions;
// every order is stored once and no range of offsets twice, whatever the
// rebalances do.
func TestConsumeTwoMembers(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(3000)
	sink := newMemSink()
	sink.beforeWrite = func([]store.Offset) error {
		time.Sleep(2 * time.Millisecond) // a database that takes its time
		return nil
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	stats := make([]Stats, 2)
	for i := range stats {
		wg.Go(func() {
			opts := f.options()
			opts.Until = nil
			var err error
			stats[i], err = Consume(ctx, f.cluster, sink, opts)
			if err != nil {
				t.Errorf("member %d: %v", i, err)
			}
		})
	}
	for !maps.Equal(sink.stored(), f.end) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if !maps.Equal(sink.stored(), f.end) || sink.rowCount() != f.valid {
		t.Fatalf("stored offsets %v (end %v), %d rows (want %d)", sink.stored(), f.end, sink.rowCount(), f.valid)
	}
	if stats[0].Stored+stats[1].Stored != int64(f.valid) || stats[0].Duplicates+stats[1].Duplicates != 0 {
		t.Errorf("members stored %d + %d with %d duplicates, want %d in all and none", stats[0].Stored, stats[1].Stored,
			stats[0].Duplicates+stats[1].Duplicates, f.valid)
	}
	checkChains(t, sink.writes, nil)
}

// waitFor waits up to ten seconds for cond, and fails the test if it
// never holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// consumeAsync runs Consume in the background; its error comes on the
// channel.
func consumeAsync(t *testing.T, f *fake, sink Sink, opts Options) <-chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := Consume(t.Context(), f.cluster, sink, opts)
		errc <- err
	}()
	return errc
}

// untilEnds is an Until met once the end offsets given to set are stored;
// until set is called it is never met.
func untilEnds() (until func(map[int32]int64) bool, set func(map[int32]int64)) {
	var end atomic.Pointer[map[int32]int64]
	until = func(stored map[int32]int64) bool {
		e := end.Load()
		return e != nil && CaughtUp(*e)(stored)
	}
	return until, func(e map[int32]int64) { end.Store(&e) }
}

// TestStopWhileACommitsAnswerIsLost: the stop comes while the answer to a
// commit that landed is lost. The summary counted the batch as not stored
// (500 rows more in the database than the summary said); the consumer now
// asks the database at the stop and counts it, and when the database
// cannot say, it counts the batch's orders in doubt instead of nowhere.
func TestStopWhileACommitsAnswerIsLost(t *testing.T) {
	t.Parallel()
	for _, reachable := range []bool{true, false} {
		f := newFake(t)
		f.produce(2000)
		sink := newMemSink()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		var commits atomic.Int32
		sink.loseAnswer = func() bool {
			if commits.Add(1) != 3 {
				return false
			}
			cancel() // the stop, while this commit's answer is on its way
			return true
		}
		var down atomic.Bool
		sink.beforeLoad = func() error {
			if down.Load() {
				return store.ErrUnreachable
			}
			return nil
		}
		if !reachable {
			sink.afterLose = func() { down.Store(true) }
		}
		opts := f.options()
		opts.Until = nil
		s, err := Consume(ctx, f.cluster, sink, opts)
		if err != nil {
			t.Fatalf("reachable %v: %v", reachable, err)
		}
		rows := int64(sink.rowCount())
		switch {
		case commits.Load() < 3:
			t.Fatalf("only %d commits", commits.Load())
		case reachable && (s.Stored != rows || s.InDoubt != 0):
			t.Errorf("database reachable at the stop: %d rows, the summary says %d stored, %d in doubt", rows, s.Stored, s.InDoubt)
		case !reachable && (s.InDoubt == 0 || s.Stored+s.InDoubt < rows || s.Stored >= rows):
			t.Errorf("database unreachable at the stop: %d rows, the summary says %d stored, %d in doubt", rows, s.Stored, s.InDoubt)
		}
	}
}
