package pipeline

// The consume loop against a stored offset it does not expect: moved by
// another writer, locked, deleted, or past the partition's end. kfake and
// the in-memory sink, as in consume_test.go.

import (
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/foodpipe/foodpipe/pkg/store"
)

// TestConsumeFencedReloads: another writer moves partition 0's stored
// offset behind the consumer's back. The consumer's batch is refused whole,
// it reloads the offset and goes on from there: it never writes below it.
func TestConsumeFencedReloads(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(2000)
	sink := newMemSink()
	var once sync.Once
	var movedTo int64
	sink.beforeWrite = func(offsets []store.Offset) error {
		for _, o := range offsets {
			if o.Partition == 0 && o.Expected >= 0 {
				once.Do(func() {
					sink.mu.Lock()
					movedTo = o.Expected + 150 // "another consumer" stored 150 more
					sink.offsets[0] = store.StoredOffset{Next: movedTo}
					sink.mu.Unlock()
				})
			}
		}
		return nil
	}
	s := f.consume(sink, f.options())
	if movedTo == 0 {
		t.Fatal("partition 0 was never written twice: make the backlog larger")
	}
	if !maps.Equal(sink.stored(), f.end) {
		t.Errorf("stored offsets %v, end %v", sink.stored(), f.end)
	}
	checkChains(t, sink.writes, map[int32][]int64{0: {movedTo}})
	for _, w := range sink.writes {
		for _, o := range w {
			if o.Partition == 0 && o.Expected < movedTo && o.Next > movedTo {
				t.Errorf("a batch wrote partition 0 across the moved offset: %d to %d", o.Expected, o.Next)
			}
		}
	}
	if s.Stored == 0 {
		t.Error("nothing stored")
	}
}

// TestConsumeLockedPartitionIsSetAside: partition 0's stored offset is
// locked (a stalled writer) for a while. The other partitions are stored
// meanwhile; partition 0 once the lock goes.
func TestConsumeLockedPartitionIsSetAside(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(1500)
	sink := newMemSink()
	var othersDone atomic.Bool
	sink.beforeWrite = func(offsets []store.Offset) error {
		if st := sink.stored(); st[1] == f.end[1] && st[2] == f.end[2] {
			othersDone.Store(true) // the lock goes once the others are stored
		}
		for _, o := range offsets {
			if o.Partition == 0 && !othersDone.Load() {
				return &store.FencedError{Partitions: []store.TopicPartition{{Topic: testTopic, Partition: 0}}, Locked: true}
			}
		}
		return nil
	}
	f.consume(sink, f.options())
	if !othersDone.Load() {
		t.Error("partitions 1 and 2 were not stored while partition 0 was locked")
	}
	if !maps.Equal(sink.stored(), f.end) || sink.rowCount() != f.valid {
		t.Errorf("stored offsets %v (end %v), %d rows (want %d)", sink.stored(), f.end, sink.rowCount(), f.valid)
	}
	checkChains(t, sink.writes, nil)
}

// TestConsumeMissingRowsMeanTheStart: the group's stored offsets are deleted
// in the middle of the run. The consumer reads the partitions again from
// their start: every order is stored (once: duplicates are skipped).
func TestConsumeMissingRowsMeanTheStart(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(2000)
	sink := newMemSink()
	var writes atomic.Int32
	sink.beforeWrite = func([]store.Offset) error {
		if writes.Add(1) == 4 {
			sink.mu.Lock()
			clear(sink.offsets)
			sink.mu.Unlock()
		}
		return nil
	}
	s := f.consume(sink, f.options())
	if !maps.Equal(sink.stored(), f.end) || sink.rowCount() != f.valid {
		t.Errorf("stored offsets %v (end %v), %d rows (want %d)", sink.stored(), f.end, sink.rowCount(), f.valid)
	}
	if s.Duplicates == 0 {
		t.Error("no duplicates: the partitions were not read again from their start")
	}
}

// TestConsumeOutOfRange: a stored offset past the end of its partition
// stops the consumer with a permanent error naming it, or, with the
// earliest policy, is moved to the start and everything is stored.
func TestConsumeOutOfRange(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(300)
	sink := newMemSink()
	sink.offsets[1] = store.StoredOffset{Next: 999_999}
	_, err := Consume(t.Context(), f.cluster, sink, f.options())
	if !errors.Is(err, ErrPermanent) || !containsAll(err.Error(), "partition 1", "stored offset 999999", "outside the partition's offsets") {
		t.Fatalf("err = %v, want a permanent error naming partition 1 and its offsets", err)
	}
	if got := sink.stored()[1]; got != 999_999 || sink.rowCount() != 0 {
		t.Errorf("the refusal changed something: offset %d, %d rows", got, sink.rowCount())
	}
	opts := f.options()
	opts.OutOfRange = OutOfRangeEarliest
	f.consume(sink, opts)
	if !maps.Equal(sink.stored(), f.end) || sink.rowCount() != f.valid {
		t.Errorf("stored offsets %v (end %v), %d rows (want %d)", sink.stored(), f.end, sink.rowCount(), f.valid)
	}
}
