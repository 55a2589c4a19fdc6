package kafka

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/foodpipe/foodpipe/pkg/config"
)

// TestProducerBoundsRecordsInFlight: with the broker holding every produce
// request, Send lets exactly MaxBufferedRecords records through and then
// waits until its context ends; once the broker answers, each of them is
// delivered once, and the records sent afterwards reuse their envelopes.
func TestProducerBoundsRecordsInFlight(t *testing.T) {
	t.Parallel()
	c, cluster := fakeCluster(t, 1, "t")
	hold := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { <-hold })
		return nil, nil, false
	})
	cfg := config.Default().KafkaProducer
	cfg.MaxBufferedRecords = 5
	var mu sync.Mutex
	delivered := map[string]int{}
	p, err := NewProducer(t.Context(), cluster, cfg, ProducerOptions{Topic: "t", Latency: true,
		OnDelivery: func(d Delivery) {
			mu.Lock()
			defer mu.Unlock()
			if d.Err == nil && d.Latency > 0 && !d.SentAt.IsZero() {
				delivered[string(d.Value)]++
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	// Every wait has a deadline: a producer that lost its envelopes would
	// make the later sends wait for ever.
	wait, stop := context.WithTimeout(t.Context(), time.Minute)
	defer stop()
	send := func(ctx context.Context, v string) error { return p.Send(ctx, nil, []byte(v)) }
	for _, v := range []string{"a", "b", "c", "d", "e"} {
		if err := send(wait, v); err != nil {
			t.Fatalf("send %s within the bound: %v", v, err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := send(ctx, "f"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the sixth record with five in flight: %v, want it to wait until its context ends", err)
	}
	if n := p.Buffered(); n != 5 {
		t.Errorf("%d records buffered, want 5", n)
	}

	close(hold)
	if err := p.Flush(wait); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"g", "h", "i"} {
		if err := send(wait, v); err != nil {
			t.Fatalf("send %s after every record was delivered: %v", v, err)
		}
	}
	if err := p.Flush(wait); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, v := range []string{"a", "b", "c", "d", "e", "g", "h", "i"} {
		if delivered[v] != 1 {
			t.Errorf("record %s delivered %d times with a send time and latency, want once", v, delivered[v])
		}
	}
	if len(delivered) != 8 {
		t.Errorf("delivered %v, want the eight records sent", delivered)
	}
	if n, made := p.Buffered(), p.made.Load(); n != 0 || made != 5 {
		t.Errorf("after the flush: %d buffered, %d envelopes made; want 0 and 5", n, made)
	}
}

// TestProducerWaitingDoesNotLinger: when every envelope is out, the records
// in flight wait for their linger, for company that cannot come until one
// of them is delivered. Send stops the lingering, as franz-go does when its
// own buffer is full and the Java client when a send waits for memory:
// with one record in flight and a linger of a minute, ten records took ten
// minutes (about one record per linger).
func TestProducerWaitingDoesNotLinger(t *testing.T) {
	t.Parallel()
	_, cluster := fakeCluster(t, 1, "t")
	cfg := config.Default().KafkaProducer
	cfg.MaxBufferedRecords, cfg.Linger = 1, time.Minute
	var delivered sync.WaitGroup
	p, err := NewProducer(t.Context(), cluster, cfg, ProducerOptions{Topic: "t",
		OnDelivery: func(d Delivery) {
			if d.Err == nil {
				delivered.Done()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// The deadline is far below one linger: a lingering send fails it.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	delivered.Add(10)
	for i := range 10 {
		if err := p.Send(ctx, nil, []byte{byte(i)}); err != nil {
			t.Fatalf("record %d: %v: the records before it waited for their linger", i, err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	delivered.Wait()
}
