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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/foodpipe/foodpipe/pkg/store"
)

const testTopic = "orders"

// fake is one test's in-process cluster and what was produced to it.
type fake struct {
	t       *testing.T
	kc      *kfake.Cluster
	cluster kafka.Cluster
	brokers []string
	end     map[int32]int64 // end offsets, from the produce acknowledgements
	valid   int
	bad     map[string]int // dead letters expected, by class
}

func newFake(t *testing.T) *fake {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, testTopic, testTopic+".dlq"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &fake{
		t:       t,
		kc:      c,
		brokers: c.ListenAddrs(),
		cluster: kafka.Cluster{Config: config.Kafka{Brokers: c.ListenAddrs(), ConnectTimeout: 10 * time.Second},
			ClientID: "foodpipe-test", Logger: testenv.Logger(t)},
		end: map[int32]int64{},
		bad: map[string]int{},
	}
}

// produce sends n generated orders and, every tenth, a record that cannot
// be stored: one that is not JSON, and one the sink refuses.
func (f *fake) produce(n int) {
	f.t.Helper()
	gen, err := order.NewGenerator(order.GeneratorConfig{Seed: 7, Now: time.Now})
	if err != nil {
		f.t.Fatal(err)
	}
	var mu sync.Mutex
	p, err := kafka.NewProducer(f.t.Context(), f.cluster, config.Default().KafkaProducer, kafka.ProducerOptions{
		Topic: testTopic,
		OnDelivery: func(d kafka.Delivery) {
			if d.Err != nil {
				f.t.Errorf("produce: %v", d.Err)
				return
			}
			mu.Lock()
			f.end[d.Partition] = max(f.end[d.Partition], d.Offset+1)
			mu.Unlock()
		},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	var o order.Order
	for i := range n {
		gen.Next(&o)
		switch {
		case i%10 == 3:
			f.send(p, o.CustomerID, []byte(`{"order_id": 3}`))
			f.bad[order.ClassDecode]++
		case i%10 == 7:
			o.CustomerName = "REFUSE"
			f.send(p, o.CustomerID, order.AppendJSON(nil, &o))
			f.bad[order.ClassStore]++
		default:
			f.send(p, o.CustomerID, order.AppendJSON(nil, &o))
			f.valid++
		}
	}
	if err := p.Flush(f.t.Context()); err != nil {
		f.t.Fatal(err)
	}
	p.Close()
}

func (f *fake) send(p *kafka.Producer, key string, value []byte) {
	f.t.Helper()
	if err := p.Send(f.t.Context(), []byte(key), value); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fake) options() Options {
	return Options{
		Topic: testTopic, DLQTopic: testTopic + ".dlq", Group: "g",
		BatchRows: 200, BatchBytes: 4 << 20, FetchMaxBytes: 1 << 20,
		SessionTimeout: 6 * time.Second, RebalanceTimeout: 10 * time.Second, HeartbeatInterval: 500 * time.Millisecond,
		OutOfRange: OutOfRangeFail, RetryMin: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		StopGrace: 2 * time.Second, Until: CaughtUp(f.end),
	}
}

// deadLetters reads the dead-letter topic: classes counted, and each
// source position seen once.
func (f *fake) deadLetters() (byClass map[string]int, dups int) {
	f.t.Helper()
	byClass = map[string]int{}
	seen := map[string]bool{}
	for _, r := range testenv.RecordsAt(f.t, f.brokers, testTopic+".dlq") {
		byClass[r.Headers[kafka.HeaderClass]]++
		pos := r.Headers[kafka.HeaderSourcePartition] + "@" + r.Headers[kafka.HeaderSourceOffset]
		if seen[pos] {
			dups++
		}
		seen[pos] = true
	}
	return byClass, dups
}

// consume runs Consume to its end (Until), at most a minute.
func (f *fake) consume(sink Sink, opts Options) Stats {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.t.Context(), time.Minute)
	defer cancel()
	s, err := Consume(ctx, f.cluster, sink, opts)
	if err != nil {
		f.t.Fatalf("Consume: %v", err)
	}
	if ctx.Err() != nil {
		f.t.Fatalf("Consume did not catch up within a minute: stored %v, end %v", s.Offsets, f.end)
	}
	return s
}

// checkChains fails unless, per partition, the committed batches chain:
// each starts where the previous one ended (or at a start the test moved
// the offset to), so no record range was stored twice or skipped.
func checkChains(t *testing.T, writes [][]store.Offset, moved map[int32][]int64) {
	t.Helper()
	next := map[int32]int64{}
	for _, batch := range writes {
		for _, o := range batch {
			want, ok := next[o.Partition]
			if ok && o.Expected != want && !slices.Contains(moved[o.Partition], o.Expected) {
				t.Errorf("partition %d: a batch starts at %d, the previous one ended at %d", o.Partition, o.Expected, want)
			}
			next[o.Partition] = o.Next
		}
	}
}

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

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestConsumeDeadLetterFailureHoldsTheOffset: while the dead-letter topic
// refuses writes, no batch holding a bad record commits: the stored offset
// never passes a record that is neither stored nor dead-lettered. When it
// accepts again, everything is stored and each dead letter sent once.
func TestConsumeDeadLetterFailureHoldsTheOffset(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(300)
	firstBad := map[int32]int64{}
	for _, r := range testenv.RecordsAt(t, f.brokers, testTopic) {
		var o order.Order
		if err := order.DecodeAndValidate(r.Value, &o); err != nil || o.CustomerName == "REFUSE" {
			if cur, ok := firstBad[r.Partition]; !ok || r.Offset < cur {
				firstBad[r.Partition] = r.Offset
			}
		}
	}
	var refusing atomic.Bool
	var refused atomic.Int32
	refusing.Store(true)
	f.kc.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		f.kc.KeepControl()
		req := r.(*kmsg.ProduceRequest)
		if !refusing.Load() {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		refused.Add(1)
		return resp, nil, true
	})
	sink := newMemSink()
	opts := f.options()
	opts.Until = nil
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Consume(ctx, f.cluster, sink, opts)
		done <- err
	}()
	for refused.Load() < 3 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	for p, off := range sink.stored() {
		if off > firstBad[p] {
			t.Errorf("partition %d: stored offset %d passed the bad record at %d while dead letters failed", p, off, firstBad[p])
		}
	}
	refusing.Store(false)
	for !maps.Equal(sink.stored(), f.end) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	classes, dups := f.deadLetters()
	if !maps.Equal(sink.stored(), f.end) || sink.rowCount() != f.valid || dups != 0 ||
		classes[order.ClassDecode]+classes[order.ClassStore] != f.bad[order.ClassDecode]+f.bad[order.ClassStore] {
		t.Errorf("after the refusals: stored %v (end %v), %d rows (want %d), dead letters %v (%d twice, want %v)",
			sink.stored(), f.end, sink.rowCount(), f.valid, classes, dups, f.bad)
	}
}

// TestBackoffBounds: the waits the README promises, 100 ms doubling to
// 30 s, with up to half again as jitter and never beyond 30 s.
func TestBackoffBounds(t *testing.T) {
	lo, hi := 100*time.Millisecond, 30*time.Second
	for attempt := range 40 {
		base := hi
		if attempt < 30 {
			base = min(hi, lo<<attempt)
		}
		for range 200 {
			d := backoff(attempt, lo, hi)
			if d < base || d > min(hi, base+base/2) {
				t.Fatalf("attempt %d: waited %v, want %v to %v", attempt, d, base, min(hi, base+base/2))
			}
		}
	}
	if d := backoff(0, lo, hi); d < 100*time.Millisecond || d > 150*time.Millisecond {
		t.Errorf("first wait %v, want 100–150 ms", d)
	}
}
