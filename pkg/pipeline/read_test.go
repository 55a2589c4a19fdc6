package pipeline

import (
	"maps"
	"slices"
	"testing"

	"github.com/foodpipe/foodpipe/pkg/kafka"
)

// TestBatchSettle: which partitions of a batch grown over several polls
// may be written, and which are read again.
func TestBatchSettle(t *testing.T) {
	recs := func(parts ...int32) []kafka.Record {
		var rs []kafka.Record
		for _, p := range parts {
			rs = append(rs, kafka.Record{Partition: p})
		}
		return rs
	}
	for _, tc := range []struct {
		name string
		// the batch before the poll: its records and epochs (nil: empty)
		earlier   []kafka.Record
		epochs    map[int32]int64
		added     []kafka.Record // what the poll added
		before    map[int32]int64
		after     map[int32]int64
		fresh     map[int32]bool
		want      map[int32]int64
		straddled []int32
	}{{
		name:   "a first poll, nothing moved",
		added:  recs(0, 1),
		before: map[int32]int64{0: 1, 1: 2}, after: map[int32]int64{0: 1, 1: 2},
		want: map[int32]int64{0: 1, 1: 2},
	}, {
		name:   "a first poll, partition 1 moved during it",
		added:  recs(0, 1),
		before: map[int32]int64{0: 1, 1: 2}, after: map[int32]int64{0: 1, 1: 3},
		want: map[int32]int64{0: 1}, straddled: []int32{1},
	}, {
		name:   "a first poll, partition 2 handed over during it",
		added:  recs(0, 2),
		before: map[int32]int64{0: 1}, after: map[int32]int64{0: 1, 2: 4}, fresh: map[int32]bool{2: true},
		want: map[int32]int64{0: 1, 2: 4},
	}, {
		name:    "a second poll, nothing moved",
		earlier: recs(0, 1), epochs: map[int32]int64{0: 1, 1: 2},
		added:  recs(0, 1),
		before: map[int32]int64{0: 1, 1: 2}, after: map[int32]int64{0: 1, 1: 2},
		want: map[int32]int64{0: 1, 1: 2},
	}, {
		name:    "a second poll, partition 1 moved during it",
		earlier: recs(0, 1), epochs: map[int32]int64{0: 1, 1: 2},
		added:  recs(0),
		before: map[int32]int64{0: 1, 1: 2}, after: map[int32]int64{0: 1, 1: 3},
		want: map[int32]int64{0: 1}, straddled: []int32{1},
	}, {
		name:    "a second poll, partition 1 had moved during the first one",
		earlier: recs(0, 1), epochs: map[int32]int64{0: 1},
		added:  recs(0, 1),
		before: map[int32]int64{0: 1, 1: 3}, after: map[int32]int64{0: 1, 1: 3},
		want: map[int32]int64{0: 1}, straddled: []int32{1},
	}, {
		name:    "a second poll, partition 2 back with records of its former owner in the batch",
		earlier: recs(0, 2), epochs: map[int32]int64{0: 1},
		added:  recs(2),
		before: map[int32]int64{0: 1}, after: map[int32]int64{0: 1, 2: 5}, fresh: map[int32]bool{2: true},
		want: map[int32]int64{0: 1}, straddled: []int32{2},
	}, {
		name:    "a second poll, partition 1 revoked during it",
		earlier: recs(0, 1), epochs: map[int32]int64{0: 1, 1: 2},
		added:  recs(0),
		before: map[int32]int64{0: 1, 1: 2}, after: map[int32]int64{0: 1},
		want: map[int32]int64{0: 1},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			b := &batch{records: append(slices.Clone(tc.earlier), tc.added...)}
			if tc.epochs != nil {
				b.epochs, b.owned = maps.Clone(tc.epochs), maps.Clone(tc.before)
			}
			b.settle(len(tc.earlier), tc.before, tc.after, tc.fresh)
			if !maps.Equal(b.epochs, tc.want) || !slices.Equal(b.straddled, tc.straddled) {
				t.Errorf("epochs %v, straddled %v; want %v, %v", b.epochs, b.straddled, tc.want, tc.straddled)
			}
			if !maps.Equal(b.owned, tc.after) {
				t.Errorf("owned %v, want %v", b.owned, tc.after)
			}
		})
	}
}
