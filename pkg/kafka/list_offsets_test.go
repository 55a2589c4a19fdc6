package kafka

import (
	"errors"
	"maps"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestListOffsets counts the offsets every lister returns for a topic of
// two partitions, one with its first record deleted, and the error each
// gives for a topic that does not exist.
func TestListOffsets(t *testing.T) {
	t.Parallel()
	c, cluster := fakeCluster(t, 2, "t")
	ctx := t.Context()
	cl := fakeProducer(t, c, "t", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var records []*kgo.Record
	for _, p := range []int32{0, 0, 0, 1} {
		records = append(records, &kgo.Record{Partition: p, Value: []byte("x")})
	}
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	admin := testAdmin(ctx, t, cluster)
	if err := admin.DeleteBefore(ctx, "t", map[int32]int64{0: 1}); err != nil {
		t.Fatal(err)
	}

	starts, err1 := admin.StartOffsets(ctx, "t")
	ends, err2 := admin.EndOffsets(ctx, "t")
	stable, err3 := admin.StableEnds(ctx, "t")
	bounds, err4 := admin.Bounds(ctx, "t")
	one, err5 := listBounds(ctx, admin.adm, "t", 1)
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		t.Fatal(err)
	}
	wantStarts, wantEnds := map[int32]int64{0: 1, 1: 0}, map[int32]int64{0: 3, 1: 1}
	if !maps.Equal(starts, wantStarts) || !maps.Equal(ends, wantEnds) || !maps.Equal(stable, wantEnds) {
		t.Errorf("starts %v, ends %v, stable ends %v; want %v, %v, %v", starts, ends, stable, wantStarts, wantEnds, wantEnds)
	}
	if want := (map[int32]Bounds{0: {Start: 1, End: 3}, 1: {Start: 0, End: 1}}); !maps.Equal(bounds, want) {
		t.Errorf("bounds %v, want %v", bounds, want)
	}
	if want := (map[int32]Bounds{1: {Start: 0, End: 1}}); !maps.Equal(one, want) {
		t.Errorf("bounds of partition 1: %v, want %v", one, want)
	}

	if _, err := admin.StartOffsets(ctx, "none"); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("StartOffsets of a missing topic: %v, want UnknownTopicOrPartition", err)
	}
	if _, err := admin.EndOffsets(ctx, "none"); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("EndOffsets of a missing topic: %v, want UnknownTopicOrPartition", err)
	}
	if _, err := admin.StableEnds(ctx, "none"); !errors.Is(err, ErrTopicMissing) {
		t.Errorf("StableEnds of a missing topic: %v, want ErrTopicMissing", err)
	}
	if _, err := admin.Bounds(ctx, "none"); !errors.Is(err, ErrTopicMissing) {
		t.Errorf("Bounds of a missing topic: %v, want ErrTopicMissing", err)
	}
}
