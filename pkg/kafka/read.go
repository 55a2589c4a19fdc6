package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Batch is what ReadTopic hands over at a time: records in offset order
// within each partition, and for every partition read in this batch the
// offset after the last one read (past records skipped, such as
// transaction markers).
type Batch struct {
	Records []Record
	Next    map[int32]int64
}

// ReadTopic reads the partitions of topic outside any consumer group, each
// from from[p] up to, not including, to[p] (a partition absent from from is
// not read), and calls fn with every batch. Records of
// aborted transactions are skipped; to should be the partitions' stable
// ends (Admin.StableEnds), which such a reader always reaches. It returns
// once every partition is read up to its end, fn fails or ctx ends. The
// batch's slice and map are reused: fn may keep records, not them.
func ReadTopic(ctx context.Context, cluster Cluster, topic string, from, to map[int32]int64, fn func(Batch) error) error {
	start := map[int32]kgo.Offset{}
	remaining := map[int32]bool{}
	for p, end := range to {
		if o, ok := from[p]; ok && o < end {
			start[p] = kgo.NewOffset().At(o)
			remaining[p] = true
		}
	}
	if len(remaining) == 0 {
		return nil
	}
	cl, err := cluster.newClient(ctx,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		// Records of aborted transactions were never written, as far as
		// anyone reading committed data is concerned.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers occupy offsets too: without them a partition
		// ending in one would never seem read to its end.
		kgo.KeepControlRecords(),
		// Records deleted by retention since the offsets were listed are
		// gone: read on from the first one left.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// A dead-letter topic can hold weeks of records: buffer little.
		kgo.FetchMaxBytes(4<<20),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	b := Batch{Next: map[int32]int64{}}
	for len(remaining) > 0 {
		fs := cl.PollRecords(ctx, 1000)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && ferr == nil {
				ferr = fmt.Errorf("read %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		b.Records = b.Records[:0]
		clear(b.Next)
		var done []int32
		fs.EachRecord(func(r *kgo.Record) {
			end := to[r.Partition]
			if !remaining[r.Partition] || r.Offset >= end {
				return
			}
			b.Next[r.Partition] = r.Offset + 1
			if r.Offset+1 >= end {
				delete(remaining, r.Partition)
				done = append(done, r.Partition)
			}
			if !r.Attrs.IsControl() {
				b.Records = append(b.Records, Record{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value,
					Timestamp: r.Timestamp, raw: r})
			}
		})
		// Partitions read to their end are not fetched any further.
		cl.PauseFetchPartitions(map[string][]int32{topic: done})
		if len(b.Next) > 0 {
			if err := fn(b); err != nil {
				return err
			}
		}
	}
	return nil
}
