package pipeline

import (
	"slices"
	"strings"
	"testing"

	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/store"
)

func TestLagRows(t *testing.T) {
	bounds := map[int32]kafka.Bounds{0: {End: 100}, 1: {End: 50}, 2: {Start: 30, End: 60}, 3: {End: 10}, 4: {End: 70}, 5: {}, 6: {End: 20}}
	committed := map[int32]int64{0: 80, 2: 20}
	stored := map[int32]store.StoredOffset{
		0: {Next: 90, TopicID: "A"}, // ahead of Kafka's copy
		2: {Next: 20, TopicID: "A"}, // before the start: retention deleted 10
		3: {Next: 12, TopicID: "A"}, // past the end
		4: {Next: 5, TopicID: "OLD"},
		6: {Next: -5, TopicID: "A"}, // set by hand
	}
	want := []struct {
		lag       int64
		stored    int64 // -1: nil
		committed int64 // -1: nil
		note      string
		blocked   bool // consume refuses to resume it
	}{
		{10, 90, 80, "", false},
		{50, -1, -1, "nothing stored", false},
		{30, 20, 20, "10 records deleted by retention", true},
		{10, 12, -1, "past the end", true},
		{70, 5, -1, "earlier topic of this name", true},
		{0, -1, -1, "nothing stored", false},
		{20, -5, -1, "negative", true},
	}
	rows := lagRows(bounds, committed, stored, "A")
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	ptr := func(p *int64) int64 {
		if p == nil {
			return -1
		}
		return *p
	}
	for i, w := range want {
		r := rows[i]
		if r.Partition != int32(i) || r.Lag != w.lag || ptr(r.Stored) != w.stored || ptr(r.Committed) != w.committed ||
			(w.note == "") != (r.Note == "") || !strings.Contains(r.Note, w.note) || r.Blocked != w.blocked {
			t.Errorf("partition %d: got %+v (stored %d, committed %d), want %+v", i, r, ptr(r.Stored), ptr(r.Committed), w)
		}
	}
	rep := LagReport{Partitions: rows}
	// A partition consume cannot resume fails --max-lag whatever its lag:
	// partition 3 lags 10, and an alert on lag alone would stay silent while
	// no consumer can start.
	parts := func(rows []LagRow) (ps []int32) {
		for _, r := range rows {
			ps = append(ps, r.Partition)
		}
		return ps
	}
	if got := parts(rep.Over(30)); !slices.Equal(got, []int32{4, 1, 2, 6, 3}) {
		t.Errorf("over 30: partitions %v, want 4 1 2 6 3", got)
	}
	if got := parts(rep.Over(70)); !slices.Equal(got, []int32{4, 2, 6, 3}) {
		t.Errorf("over 70: partitions %v, want the blocked 4 2 6 3", got)
	}
}
