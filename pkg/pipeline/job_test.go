package pipeline

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/foodpipe/foodpipe/pkg/kafka"
)

// TestStopAtEnd: a batch job stores exactly up to the end offsets seen at
// start, not the records produced after them, and then Consume returns.
func TestStopAtEnd(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(1000)
	end, valid := maps.Clone(f.end), f.valid
	sink := newMemSink()
	opts := f.options()
	opts.Until = nil
	if err := PrepareJob(t.Context(), f.cluster, sink, &opts, JobOptions{StopAtEnd: true}); err != nil {
		t.Fatal(err)
	}
	f.produce(500) // after the start: left for the next run
	s := f.consume(sink, opts)
	if !maps.Equal(sink.stored(), end) || !maps.Equal(s.Offsets, end) {
		t.Errorf("stored offsets %v (stats %v), want the ends at start %v", sink.stored(), s.Offsets, end)
	}
	if got := sink.rowCount(); got != valid {
		t.Errorf("%d rows, want the %d valid orders produced before the start", got, valid)
	}
	checkChains(t, sink.writes, nil)
}

// TestWaitForTopic: without WaitForTopic missing topics fail at once,
// named; with it PrepareJob returns once they exist.
func TestWaitForTopic(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	opts := f.options()
	opts.Topic, opts.DLQTopic = "later", "later.dlq"
	err := PrepareJob(t.Context(), f.cluster, newMemSink(), &opts, JobOptions{})
	if !errors.Is(err, kafka.ErrTopicMissing) || !strings.Contains(err.Error(), "later, later.dlq: run foodpipe topics init") {
		t.Fatalf("missing topics: %v", err)
	}

	done := make(chan error, 1)
	go func() {
		done <- PrepareJob(t.Context(), f.cluster, newMemSink(), &opts, JobOptions{WaitForTopic: true})
	}()
	select {
	case err := <-done:
		t.Fatalf("returned before the topics exist: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopics(context.Background(), 3, 1, nil, "later", "later.dlq"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still waiting 10s after the topics were created")
	}
}
