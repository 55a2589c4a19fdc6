package pipeline

import (
	"hash/maphash"
	"testing"

	"github.com/foodpipe/foodpipe/pkg/kafka"
)

// TestPickCopies: a dead letter whose source record (coordinates and
// bytes) was picked before in the run is a copy; the same coordinates with
// other bytes (the topic was created again) or a letter that does not name
// its source offset are not.
func TestPickCopies(t *testing.T) {
	letter := func(dlqOffset int64, srcPartition int32, srcOffset int64, value string) kafka.Letter {
		return kafka.Letter{Partition: 0, Offset: dlqOffset, Class: "store", SourceTopic: "orders",
			SourcePartition: srcPartition, SourceOffset: srcOffset, Key: []byte("CUST-00001"), Value: []byte(value)}
	}
	letters := []struct {
		l    kafka.Letter
		want bool
	}{
		{letter(0, 1, 7, "a"), true},
		{letter(1, 1, 7, "a"), false},  // a crash copy
		{letter(2, 1, 7, "b"), true},   // offset 7 of the topic created again
		{letter(3, 2, 7, "a"), true},   // another partition
		{letter(4, -1, -1, "c"), true}, // no source offset: never a copy
		{letter(5, -1, -1, "c"), true},
		{letter(6, 1, 7, "b"), false},
	}
	p := picker{topic: "orders.dlq", classes: Classes, done: map[string]map[int32]int64{}, seen: map[origin]struct{}{},
		seed: maphash.MakeSeed()}
	st := ReplayStats{Skipped: map[string]int64{}}
	for _, c := range letters {
		if got := p.pick(&st, c.l); got != c.want {
			t.Errorf("dead letter %d (source %d@%d, %q): picked %v, want %v", c.l.Offset, c.l.SourcePartition,
				c.l.SourceOffset, c.l.Value, got, c.want)
		}
	}
	if st.Read != 7 || st.Skipped[SkipCopy] != 2 {
		t.Errorf("read %d, skipped %v; want 7 read, 2 copies", st.Read, st.Skipped)
	}
}
