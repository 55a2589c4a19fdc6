package pipeline

// In-process tests of the consume loop: franz-go's kfake broker and an
// in-memory sink with the store's contract. They run in a second or two,
// under the race detector, with no services; the fault tests of e2e/ prove
// the same against real Kafka and PostgreSQL.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/foodpipe/foodpipe/pkg/store"
)

func TestConsumeStoresOnceAndDeadLettersTheRest(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(2000)
	sink := newMemSink()
	s := f.consume(sink, f.options())
	if got := sink.rowCount(); got != f.valid || s.Stored != int64(f.valid) {
		t.Errorf("%d rows (stats %d), want %d", got, s.Stored, f.valid)
	}
	if !maps.Equal(sink.stored(), f.end) {
		t.Errorf("stored offsets %v, end %v", sink.stored(), f.end)
	}
	classes, dups := f.deadLetters()
	if dups != 0 || classes[order.ClassDecode] != f.bad[order.ClassDecode] || classes[order.ClassStore] != f.bad[order.ClassStore] {
		t.Errorf("dead letters %v (%d twice), want %v", classes, dups, f.bad)
	}
	checkChains(t, sink.writes, nil)
}

// TestConsumeDeadLettersOnceAcrossRetries: the database fails after the
// dead letters of a batch were acknowledged; the retry stores the batch
// without sending them again. And a batch commits only after its dead
// letters are in the dead-letter topic.
func TestConsumeDeadLettersOnceAcrossRetries(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(600)
	sink := newMemSink()
	var failures atomic.Int32
	sink.afterBeforeCommit = func() error {
		classes, _ := f.deadLetters()
		if classes[order.ClassDecode]+classes[order.ClassStore] == 0 {
			t.Error("a batch reached its commit with no dead letter acknowledged")
		}
		if failures.Add(1) <= 3 {
			return fmt.Errorf("commit: %w", store.ErrUnreachable) // retryable
		}
		return nil
	}
	f.consume(sink, f.options())
	classes, dups := f.deadLetters()
	if dups != 0 || classes[order.ClassDecode] != f.bad[order.ClassDecode] || classes[order.ClassStore] != f.bad[order.ClassStore] {
		t.Errorf("dead letters %v with %d sent twice, want %v once each", classes, dups, f.bad)
	}
	if sink.rowCount() != f.valid {
		t.Errorf("%d rows, want %d", sink.rowCount(), f.valid)
	}
}

// TestConsumeCommitAnswerLost: the connection is lost after COMMIT was sent,
// and the commit did land. The retry finds the offsets at its own batch's
// end — not another consumer's doing — and counts the batch as stored: the
// summary's figures equal the rows and dead letters, and nothing is written
// twice.
func TestConsumeCommitAnswerLost(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(2000)
	sink := newMemSink()
	var lost atomic.Int32
	sink.loseAnswer = func() bool { return lost.Add(1) <= 4 }
	s := f.consume(sink, f.options())
	if lost.Load() < 4 {
		t.Fatalf("only %d commits: make the backlog larger", lost.Load())
	}
	if got := sink.rowCount(); got != f.valid || s.Stored != int64(f.valid) {
		t.Errorf("%d rows, the summary says %d stored; want %d", got, s.Stored, f.valid)
	}
	classes, dups := f.deadLetters()
	if dups != 0 || s.DeadLettered[order.ClassDecode] != int64(classes[order.ClassDecode]) ||
		s.DeadLettered[order.ClassStore] != int64(classes[order.ClassStore]) || classes[order.ClassDecode] != f.bad[order.ClassDecode] {
		t.Errorf("summary dead-lettered %v; the topic holds %v (%d twice); want %v", s.DeadLettered, classes, dups, f.bad)
	}
	if s.Batches != int64(sink.commits) {
		t.Errorf("summary counts %d batches, the sink committed %d", s.Batches, sink.commits)
	}
	checkChains(t, sink.writes, nil)
}

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

// TestConsumeTwoMembers: two consumers of one group share the partitions;
// every order is stored once and no range of offsets twice, whatever the
// rebalances do.
func TestConsumeTwoMembers(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(3000)
	sink := newMemSink()
	sink.beforeWrite = func([]store.Offset) error {
		time.Sleep(2 * time.Millisecond) // a database that takes its time
		return nil
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	stats := make([]Stats, 2)
	for i := range stats {
		wg.Go(func() {
			opts := f.options()
			opts.Until = nil
			var err error
			stats[i], err = Consume(ctx, f.cluster, sink, opts)
			if err != nil {
				t.Errorf("member %d: %v", i, err)
			}
		})
	}
	for !maps.Equal(sink.stored(), f.end) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if !maps.Equal(sink.stored(), f.end) || sink.rowCount() != f.valid {
		t.Fatalf("stored offsets %v (end %v), %d rows (want %d)", sink.stored(), f.end, sink.rowCount(), f.valid)
	}
	if stats[0].Stored+stats[1].Stored != int64(f.valid) || stats[0].Duplicates+stats[1].Duplicates != 0 {
		t.Errorf("members stored %d + %d with %d duplicates, want %d in all and none", stats[0].Stored, stats[1].Stored,
			stats[0].Duplicates+stats[1].Duplicates, f.valid)
	}
	checkChains(t, sink.writes, nil)
}

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

// waitFor waits up to ten seconds for cond, and fails the test if it
// never holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

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

// downSink is a memSink whose LoadOffsets fails as a lost connection does
// while down is set.
type downSink struct {
	*memSink
	down  atomic.Bool
	loads atomic.Int32 // failed loads
}

func (s *downSink) LoadOffsets(ctx context.Context, group, topic string) (map[int32]store.StoredOffset, error) {
	if s.down.Load() {
		s.loads.Add(1)
		return nil, &pgconn.PgError{Code: "08006", Message: "connection lost (test)"}
	}
	return s.memSink.LoadOffsets(ctx, group, topic)
}

// lagSeen keeps the last lag the consumer reported, summed.
type lagSeen struct {
	NopObserver
	total atomic.Int64
}

func (l *lagSeen) Lag(per map[int32]int64) {
	var n int64
	for _, v := range per {
		n += v
	}
	l.total.Store(n)
}

// TestConsumeLagWhileOffsetsCannotLoad: PostgreSQL is down when the
// partitions are assigned, so their stored offsets cannot be read; the
// backlog waits all the same, and the lag reported says so (counted from
// Kafka's committed copy, or the partition's start without one) instead
// of 0.
func TestConsumeLagWhileOffsetsCannotLoad(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(1000)
	var backlog int64
	for _, e := range f.end {
		backlog += e
	}
	sink := &downSink{memSink: newMemSink()}
	sink.down.Store(true)
	obs := &lagSeen{}
	opts := f.options()
	opts.Observer, opts.ProgressInterval = obs, 50*time.Millisecond
	errc := consumeAsync(t, f, sink, opts)
	waitFor(t, "the offsets to fail to load", func() bool { return sink.loads.Load() >= 2 })
	waitFor(t, "the lag to show the backlog", func() bool { return obs.total.Load() == backlog })
	sink.down.Store(false)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(sink.stored(), f.end) || obs.total.Load() != 0 {
		t.Errorf("after the outage: stored %v, lag %d; want the ends %v and lag 0", sink.stored(), obs.total.Load(), f.end)
	}
}

// readySeen keeps the readiness the consumer reported last.
type readySeen struct {
	NopObserver
	mu     sync.Mutex
	ready  bool
	reason string
}

func (r *readySeen) Ready(ready bool, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ready, r.reason = ready, reason
}

func (r *readySeen) get() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready, r.reason
}

// TestConsumeNotReadyWhileOutOfTheGroup: a member whose session with the
// group is lost (the coordinator stops answering its heartbeats, as when
// the broker is unreachable) is out of the group until it joins again:
// not ready, saying so, until it is back in; nothing is lost meanwhile.
func TestConsumeNotReadyWhileOutOfTheGroup(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(300)
	var down atomic.Bool
	for _, key := range []kmsg.Key{kmsg.Heartbeat, kmsg.JoinGroup} {
		f.kc.ControlKey(int16(key), func(req kmsg.Request) (kmsg.Response, error, bool) {
			f.kc.KeepControl()
			if !down.Load() {
				return nil, nil, false
			}
			resp := req.ResponseKind()
			switch r := resp.(type) {
			case *kmsg.HeartbeatResponse:
				r.ErrorCode = kerr.UnknownServerError.Code
			case *kmsg.JoinGroupResponse:
				r.ErrorCode = kerr.UnknownServerError.Code
			}
			return resp, nil, true
		})
	}
	sink := newMemSink()
	obs := &readySeen{}
	opts := f.options()
	opts.Observer = obs
	var setEnd func(map[int32]int64)
	opts.Until, setEnd = untilEnds()
	errc := consumeAsync(t, f, sink, opts)
	waitFor(t, "the first orders stored, ready", func() bool { ok, _ := obs.get(); return ok && sink.rowCount() > 0 })
	down.Store(true)
	waitFor(t, "not ready once out of the group", func() bool { ok, _ := obs.get(); return !ok })
	if _, reason := obs.get(); !strings.Contains(reason, "not in the group") {
		t.Errorf("reason %q, want it to say the member is not in the group", reason)
	}
	f.produce(300)
	down.Store(false)
	e := maps.Clone(f.end)
	setEnd(e)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if ok, reason := obs.get(); !ok {
		t.Errorf("not ready after rejoining: %q", reason)
	}
	if !maps.Equal(sink.stored(), e) || sink.rowCount() != f.valid {
		t.Errorf("stored %v, %d rows; want the ends %v and all %d valid orders", sink.stored(), sink.rowCount(), e, f.valid)
	}
}

// Ping fails while the sink is down, as store.DB's does.
func (s *downSink) Ping(context.Context) error {
	if s.down.Load() {
		return &pgconn.PgError{Code: "08006", Message: "connection lost (test)"}
	}
	return nil
}

// TestConsumeIdleNotReadyWhileDatabaseDown: a consumer with nothing to
// store does not find out from a write that PostgreSQL is down; it pings
// it, and is not ready, saying why, until it answers again.
func TestConsumeIdleNotReadyWhileDatabaseDown(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(100)
	sink := &downSink{memSink: newMemSink()}
	obs := &readySeen{}
	opts := f.options()
	opts.Observer, opts.ProgressInterval = obs, 50*time.Millisecond
	stop := make(chan struct{})
	opts.Until = func(map[int32]int64) bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	errc := consumeAsync(t, f, sink, opts)
	waitFor(t, "the backlog stored, ready", func() bool { ok, _ := obs.get(); return ok && maps.Equal(sink.stored(), f.end) })
	sink.down.Store(true)
	waitFor(t, "not ready while the database is down", func() bool { ok, _ := obs.get(); return !ok })
	if _, reason := obs.get(); !strings.Contains(reason, "PostgreSQL unreachable") {
		t.Errorf("reason %q, want it to say PostgreSQL is unreachable", reason)
	}
	sink.down.Store(false)
	waitFor(t, "ready once the database answers", func() bool { ok, _ := obs.get(); return ok })
	close(stop)
	f.produce(1) // a batch, for Until to be asked again
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// consumeAsync runs Consume in the background; its error comes on the
// channel.
func consumeAsync(t *testing.T, f *fake, sink Sink, opts Options) <-chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := Consume(t.Context(), f.cluster, sink, opts)
		errc <- err
	}()
	return errc
}

// untilEnds is an Until met once the end offsets given to set are stored;
// until set is called it is never met.
func untilEnds() (until func(map[int32]int64) bool, set func(map[int32]int64)) {
	var end atomic.Pointer[map[int32]int64]
	until = func(stored map[int32]int64) bool {
		e := end.Load()
		return e != nil && CaughtUp(*e)(stored)
	}
	return until, func(e map[int32]int64) { end.Store(&e) }
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

// TestStopWhileACommitsAnswerIsLost: the stop comes while the answer to a
// commit that landed is lost. The summary counted the batch as not stored
// (500 rows more in the database than the summary said); the consumer now
// asks the database at the stop and counts it, and when the database
// cannot say, it counts the batch's orders in doubt instead of nowhere.
func TestStopWhileACommitsAnswerIsLost(t *testing.T) {
	t.Parallel()
	for _, reachable := range []bool{true, false} {
		f := newFake(t)
		f.produce(2000)
		sink := newMemSink()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		var commits atomic.Int32
		sink.loseAnswer = func() bool {
			if commits.Add(1) != 3 {
				return false
			}
			cancel() // the stop, while this commit's answer is on its way
			return true
		}
		var down atomic.Bool
		sink.beforeLoad = func() error {
			if down.Load() {
				return store.ErrUnreachable
			}
			return nil
		}
		if !reachable {
			sink.afterLose = func() { down.Store(true) }
		}
		opts := f.options()
		opts.Until = nil
		s, err := Consume(ctx, f.cluster, sink, opts)
		if err != nil {
			t.Fatalf("reachable %v: %v", reachable, err)
		}
		rows := int64(sink.rowCount())
		switch {
		case commits.Load() < 3:
			t.Fatalf("only %d commits", commits.Load())
		case reachable && (s.Stored != rows || s.InDoubt != 0):
			t.Errorf("database reachable at the stop: %d rows, the summary says %d stored, %d in doubt", rows, s.Stored, s.InDoubt)
		case !reachable && (s.InDoubt == 0 || s.Stored+s.InDoubt < rows || s.Stored >= rows):
			t.Errorf("database unreachable at the stop: %d rows, the summary says %d stored, %d in doubt", rows, s.Stored, s.InDoubt)
		}
	}
}
