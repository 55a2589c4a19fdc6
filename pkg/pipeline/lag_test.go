package pipeline

import (
	"strings"
	"testing"

	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/store"
)

func TestLagRows(t *testing.T) {
	bounds := map[int32]kafka.Bounds{0: {End: 100}, 1: {End: 50}, 2: {Start: 30, End: 60}, 3: {End: 10}, 4: {End: 70}, 5: {}}
	committed := map[int32]int64{0: 80, 2: 20}
	stored := map[int32]store.StoredOffset{
		0: {Next: 90, TopicID: "A"}, // ahead of Kafka's copy
		2: {Next: 20, TopicID: "A"}, // before the start: retention deleted 10
		3: {Next: 12, TopicID: "A"}, // past the end
		4: {Next: 5, TopicID: "OLD"},
	}
	want := []struct {
		lag       int64
		stored    int64 // -1: nil
		committed int64 // -1: nil
		note      string
	}{
		{10, 90, 80, ""},
		{50, -1, -1, "nothing stored"},
		{30, 20, 20, "10 records deleted by retention"},
		{0, 12, -1, "past the end"},
		{70, 5, -1, "earlier topic of this name"},
		{0, -1, -1, "nothing stored"},
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
			(w.note == "") != (r.Note == "") || !strings.Contains(r.Note, w.note) {
			t.Errorf("partition %d: got %+v (stored %d, committed %d), want %+v", i, r, ptr(r.Stored), ptr(r.Committed), w)
		}
	}
	rep := LagReport{Partitions: rows}
	over := rep.Over(30)
	if len(over) != 2 || over[0].Partition != 4 || over[1].Partition != 1 {
		t.Errorf("over 30: %+v, want partitions 4 then 1", over)
	}
	if len(rep.Over(70)) != 0 {
		t.Errorf("over 70: %+v, want none", rep.Over(70))
	}
}
