package pipeline

// The in-process cluster of the consume tests: franz-go's kfake broker,
// orders and bad records produced to it, and what a test checks after.

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/foodpipe/foodpipe/pkg/store"
	"github.com/twmb/franz-go/pkg/kfake"
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
	calls   int            // produce calls so far: each draws from its own seed
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
// be stored: one that is not JSON, and one the sink refuses. Each call's
// orders are new ones (new order ids), not the previous call's again.
func (f *fake) produce(n int) {
	f.t.Helper()
	f.calls++
	gen, err := order.NewGenerator(order.GeneratorConfig{Seed: uint64(6 + f.calls), Now: time.Now})
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

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
