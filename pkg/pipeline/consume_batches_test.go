package pipeline

// What one batch (one transaction) holds: the waves gathered while the
// writer is busy, the batch-bytes bound, and Kafka transactions passed
// through. kfake and the in-memory sink, as in consume_test.go.

import (
	"fmt"
	"maps"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/foodpipe/foodpipe/pkg/store"
)

// TestConsumeGathersWhileTheWriterIsBusy: while one write is slow, orders
// keep coming in small waves. The reader keeps polling them into the next
// batch, so that all the waves are stored by one transaction once the
// slow one commits, instead of queueing (and waiting in the client's
// buffer) behind it in small ones.
func TestConsumeGathersWhileTheWriterIsBusy(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(10)
	sink := newMemSink()
	release := make(chan struct{})
	var writes atomic.Int32
	sink.beforeWrite = func([]store.Offset) error {
		if writes.Add(1) == 1 {
			<-release
		}
		return nil
	}
	var consumed atomic.Int64
	opts := f.options()
	opts.Observer = consumedCounter{n: &consumed}
	var setEnd func(map[int32]int64)
	opts.Until, setEnd = untilEnds()
	errc := consumeAsync(t, f, sink, opts)
	waitFor(t, "the first write to start", func() bool { return writes.Load() == 1 })
	const waves, wave = 5, 20
	for i := range waves {
		f.produce(wave)
		want := int64(10 + (i+1)*wave)
		waitFor(t, fmt.Sprintf("wave %d to be polled while the writer is busy", i+1), func() bool { return consumed.Load() >= want })
	}
	e := maps.Clone(f.end)
	setEnd(e)
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(sink.stored(), e) {
		t.Fatalf("stored offsets %v, end %v", sink.stored(), e)
	}
	var covered []int64 // records each committed write covered
	next := map[int32]int64{}
	for _, batch := range sink.writes {
		n := int64(0)
		for _, o := range batch {
			n += o.Next - next[o.Partition]
			next[o.Partition] = o.Next
		}
		covered = append(covered, n)
	}
	// The slow write holds what the first poll returned (all 10 records,
	// or only the partitions fetched first); the second holds the rest and
	// every wave.
	if len(covered) != 2 || covered[0] < 1 || covered[0] > 10 || covered[0]+covered[1] != 10+waves*wave {
		t.Errorf("records per committed write %v, want two writes of %d in all, the second holding every wave: "+
			"the waves that came during the slow write in one", covered, 10+waves*wave)
	}
	checkChains(t, sink.writes, nil)
}

// consumedCounter counts the records the consumer polled.
type consumedCounter struct {
	NopObserver
	n *atomic.Int64
}

func (o consumedCounter) Consumed(n int) { o.n.Add(int64(n)) }

// TestConsumeTransactions: orders written in Kafka transactions by another
// producer, every third transaction aborted. The committed orders are
// stored once, the aborted never, and the transaction markers are passed:
// the stored offsets end at the high watermarks, each batch starting where
// the previous one ended.
func TestConsumeTransactions(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.brokers...), kgo.DefaultProduceTopic(testTopic), kgo.TransactionalID("other-app"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	gen, err := order.NewGenerator(order.GeneratorConfig{Seed: 11, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	committed := 0
	for i := range 9 {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var o order.Order
		for range 50 {
			gen.Next(&o)
			cl.Produce(t.Context(), &kgo.Record{Key: []byte(o.CustomerID), Value: order.AppendJSON(nil, &o)}, nil)
		}
		if err := cl.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		end := kgo.TryCommit
		if i%3 == 2 {
			end = kgo.TryAbort
		} else {
			committed += 50
		}
		if err := cl.EndTransaction(t.Context(), end); err != nil {
			t.Fatal(err)
		}
	}
	hwm, err := kadm.NewClient(cl).ListEndOffsets(t.Context(), testTopic)
	if err != nil {
		t.Fatal(err)
	}
	hwm.Each(func(o kadm.ListedOffset) { f.end[o.Partition] = o.Offset })

	sink := newMemSink()
	s := f.consume(sink, f.options())
	if got := sink.rowCount(); got != committed || s.Stored != int64(committed) {
		t.Errorf("%d rows (stats %d), want the %d of committed transactions", got, s.Stored, committed)
	}
	if !maps.Equal(sink.stored(), f.end) {
		t.Errorf("stored offsets %v, high watermarks %v", sink.stored(), f.end)
	}
	checkChains(t, sink.writes, nil)
}

// TestBatchBytesBoundsEachTransaction: batch-bytes bounds a transaction as
// batch-rows does; a batch exceeds it by at most the one record that
// reaches it (records of similar sizes, as orders are). The first poll of
// a batch took up to batch-rows records whatever their bytes: 5,000
// records of 600 bytes in one transaction with --batch-bytes 1024.
func TestBatchBytesBoundsEachTransaction(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(600)
	size, largest := map[int32]map[int64]int{}, 0
	for _, r := range testenv.RecordsAt(t, f.brokers, testTopic) {
		if size[r.Partition] == nil {
			size[r.Partition] = map[int64]int{}
		}
		n := len(r.Key) + len(r.Value)
		size[r.Partition][r.Offset], largest = n, max(largest, n)
	}
	sink := newMemSink()
	opts := f.options()
	opts.BatchRows, opts.BatchBytes = 1_000_000, 4096
	f.consume(sink, opts)
	if !maps.Equal(sink.stored(), f.end) {
		t.Fatalf("stored offsets %v, end %v", sink.stored(), f.end)
	}
	for i, w := range sink.writes {
		bytes := 0
		for _, o := range w {
			for off := max(o.Expected, 0); off < o.Next; off++ {
				bytes += size[o.Partition][off]
			}
		}
		if bytes >= opts.BatchBytes+largest {
			t.Errorf("batch %d holds %d bytes: more than batch-bytes %d and one record (%d bytes at most)", i, bytes, opts.BatchBytes, largest)
		}
	}
}
