package kafka

// The fetching side of a GroupReader: the records it returns, and the
// calls the polling goroutine makes between polls.

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Record is one record read from the consumed topic.
type Record struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Timestamp time.Time
	// Control marks a transaction marker, the commit or abort of another
	// producer's Kafka transaction: it holds no order, but its offset is
	// passed like a record's, so that the stored offset reaches the
	// partition's end and the next batch starts right after it.
	Control bool
	// raw is the client's record: the dead-letter writer copies its
	// topic and headers from it.
	raw *kgo.Record
}

// Poll waits until records arrive or ctx ends, then takes what is already
// buffered, until recs holds maxRecords or maxBytes more bytes (keys and
// values) were added: a backlog yields full batches, a quiet stream small
// ones at once. It appends to recs and says how many bytes it added.
// outOfRange lists the partitions whose position is outside what the
// partition holds; they are not fetched again until Seek moves them.
//
// Records taken from franz-go cannot be given back, so Poll takes them in
// chunks that would fill half the bytes left with records twice the size of
// the largest seen (in this call, or else the previous one), and one at a
// time near the end: the bytes added exceed maxBytes by at most one record
// while no record is more than twice the largest seen before it.
func (r *GroupReader) Poll(ctx context.Context, recs []Record, maxRecords, maxBytes int) (_ []Record, bytes int, outOfRange []int32) {
	first, seen := true, 0 // seen: the largest record of this call
	for len(recs) < maxRecords && bytes < maxBytes {
		chunk := maxRecords - len(recs)
		if largest := cmp.Or(seen, r.largest); largest > 0 {
			chunk = min(chunk, max(1, (maxBytes-bytes)/(2*largest)))
		} else {
			chunk = 1 // no record seen yet: learn their size first
		}
		var fs kgo.Fetches
		if first {
			fs = r.cl.PollRecords(ctx, chunk)
			first = false
		} else {
			//lint:ignore SA1012 a nil context asks franz-go for what is buffered, without waiting
			fs = r.cl.PollRecords(nil, chunk)
		}
		if fs.Empty() {
			break
		}
		fs.EachError(func(topic string, p int32, err error) {
			switch {
			case errors.Is(err, kerr.OffsetOutOfRange):
				outOfRange = append(outOfRange, p)
			case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, kgo.ErrClientClosed):
			default:
				r.log.Warn("fetch failed; the client retries", "topic", topic, "partition", p, "err", err)
			}
		})
		n := len(recs)
		fs.EachRecord(func(kr *kgo.Record) {
			recs = append(recs, Record{Partition: kr.Partition, Offset: kr.Offset, Key: kr.Key, Value: kr.Value,
				Timestamp: kr.Timestamp, Control: kr.Attrs.IsControl(), raw: kr})
			size := len(kr.Key) + len(kr.Value)
			bytes += size
			seen = max(seen, size, 1)
		})
		if len(recs) == n {
			break
		}
	}
	// The next call starts from this one's sizes: one huge record does
	// not shrink every chunk after it.
	if seen > 0 {
		r.largest = seen
	}
	return recs, bytes, outOfRange
}

// Seek moves partitions to the given offsets. Records buffered from before
// are dropped by the client: Poll returns only records read from there on.
// Call it from the goroutine that polls, between polls.
func (r *GroupReader) Seek(offsets map[int32]int64) {
	if len(offsets) == 0 {
		return
	}
	r.cl.SetOffsets(r.epochOffsets(offsets))
}

// Pause stops fetching partitions until Resume (or a rebalance moves them).
func (r *GroupReader) Pause(parts ...int32) {
	r.cl.PauseFetchPartitions(map[string][]int32{r.topic: parts})
}

// Resume fetches paused partitions again.
func (r *GroupReader) Resume(parts ...int32) {
	r.cl.ResumeFetchPartitions(map[string][]int32{r.topic: parts})
}
