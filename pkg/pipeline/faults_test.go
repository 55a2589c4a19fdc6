package pipeline

import (
	"context"
	"maps"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

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
