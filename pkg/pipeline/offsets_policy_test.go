package pipeline

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/foodpipe/foodpipe/pkg/store"
)

// TestConsumeLoadOffsetsUnfixable: loading the stored offsets fails with an
// error retrying cannot fix (the consumer_offsets table dropped: 42P01).
// The consumer stops at once with a permanent error naming the step,
// instead of retrying forever, and stores nothing.
func TestConsumeLoadOffsetsUnfixable(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(300)
	sink := newMemSink()
	var loads atomic.Int32
	sink.beforeLoad = func() error {
		loads.Add(1)
		return &pgconn.PgError{Code: "42P01", Message: `relation "consumer_offsets" does not exist`}
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err := Consume(ctx, f.cluster, sink, f.options())
	if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "load stored offsets") {
		t.Fatalf("err = %v, want a permanent error of the load", err)
	}
	if n := loads.Load(); n != 1 || sink.rowCount() != 0 {
		t.Errorf("%d loads (want 1: no retry), %d rows stored (want 0)", n, sink.rowCount())
	}
}

// TestConsumeOutOfRangeLatest: with the latest policy, a stored offset past
// the end of its partition is moved to the end: that partition's records
// are not stored (the policy skips them, loudly), the others' all are.
func TestConsumeOutOfRangeLatest(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(300)
	sink := newMemSink()
	sink.offsets[1] = store.StoredOffset{Next: 999_999}
	opts := f.options()
	opts.OutOfRange = OutOfRangeLatest
	// Until by the sink's offsets, as a --stop-at-end job asks the
	// database: a partition moved to its end has no commit of this run.
	opts.Until = func(map[int32]int64) bool { return maps.Equal(sink.stored(), f.end) }
	f.consume(sink, opts)
	if !maps.Equal(sink.stored(), f.end) {
		t.Errorf("stored offsets %v, want the ends %v", sink.stored(), f.end)
	}
	for _, w := range sink.writes {
		if i := slices.IndexFunc(w, func(o store.Offset) bool { return o.Partition == 1 }); i >= 0 {
			t.Errorf("partition 1 was written (%d to %d): latest skips its records", w[i].Expected, w[i].Next)
		}
	}
	if n := sink.rowCount(); n == 0 || n >= f.valid {
		t.Errorf("%d rows stored, want some but fewer than the %d valid orders (partition 1's are skipped)", n, f.valid)
	}
}

// TestPrepareRefusesAGap: a batch whose first record of a partition is not
// the stored offset's record is not written for that partition (the
// partition is read again from its stored offset), unless nothing was
// written since the partition was positioned (the broker may hold only
// transaction markers or aborted records in between).
func TestPrepareRefusesAGap(t *testing.T) {
	for name, tc := range map[string]struct {
		first  int64
		fresh  bool
		writes bool
	}{
		"contiguous":                      {first: 10, writes: true},
		"gap":                             {first: 15},
		"gap after positioning (markers)": {first: 15, fresh: true, writes: true},
	} {
		t.Run(name, func(t *testing.T) {
			c := &consumer{log: testenv.Logger(t), opts: Options{Topic: "t"},
				parts: map[int32]*partition{0: {stored: 10, next: 10, epoch: 1, assigned: 1, fresh: tc.fresh}}}
			b := &batch{
				records: []kafka.Record{{Partition: 0, Offset: tc.first}, {Partition: 0, Offset: tc.first + 1}},
				epochs:  map[int32]int64{0: 1}, orders: make([]order.Order, 2), bad: make([]badRecord, 2),
				polls: []pollMark{{end: 2}},
			}
			w, again := c.prepare(b)
			if !tc.writes {
				if len(w.records) != 0 || len(w.offsets) != 0 || !slices.Equal(again, []int32{0}) {
					t.Errorf("wrote %d records, offsets %v, read again %v: want nothing written and partition 0 read again",
						len(w.records), w.offsets, again)
				}
				return
			}
			want := []store.Offset{{Topic: "t", Partition: 0, Expected: 10, Next: tc.first + 2}}
			if len(w.records) != 2 || !slices.Equal(w.offsets, want) || len(again) != 0 {
				t.Errorf("wrote %d records, offsets %v, read again %v: want 2 records, %v", len(w.records), w.offsets, again, want)
			}
		})
	}
}
