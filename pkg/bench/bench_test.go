package bench

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSender delivers every record it is sent, with a fixed latency on a
// fake clock, to the recorder: RunProduce measured without a broker.
type fakeSender struct {
	mu      sync.Mutex
	rec     *Recorder
	clock   *fakeClock
	latency time.Duration
	sent    int
	failAt  int // 1-based index of a record that fails; 0: none
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond) // time passes as records go
	return c.now
}

func (s *fakeSender) Send(_ context.Context, _, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent++
	sentAt := s.clock.Now()
	var err error
	if s.sent == s.failAt {
		err = errors.New("broker said no")
	}
	s.clock.mu.Lock()
	s.clock.now = s.clock.now.Add(s.latency) // the ack comes latency later
	s.clock.mu.Unlock()
	s.rec.Delivered(sentAt, s.latency, len(value), err)
	return nil
}

func (s *fakeSender) Flush(context.Context) error { return nil }

func TestRunProduceCountsMeasuredRecordsOnly(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)}
	rec := NewRecorder(clock.Now)
	s := &fakeSender{rec: rec, clock: clock, latency: 5 * time.Millisecond, failAt: 150}
	payload := NewRandom(100, 1)
	r, err := RunProduce(t.Context(), s, payload, rec, ProduceOptions{Records: 1000, Warmup: 100})
	if err != nil {
		t.Fatal(err)
	}
	if s.sent != 1100 || rec.Warmup() != 100 {
		t.Errorf("sent %d (want 1100), warmup counted %d (want 100)", s.sent, rec.Warmup())
	}
	if r.Records != 999 || r.Failed != 1 || r.Bytes != 999*100 {
		t.Errorf("report %+v: want 999 records of 100 bytes and the one failure", r)
	}
	if r.Latency.P50 < 4.9 || r.Latency.P50 > 5.1 || r.Latency.Max > 5.1 {
		t.Errorf("latency %+v, every record took 5 ms", r.Latency)
	}
	if r.RecordsPerSec <= 0 || r.Seconds <= 0 {
		t.Errorf("rates %+v", r)
	}
}

func TestRunSinkComparesWithTheRawCopy(t *testing.T) {
	var order []string
	steps := SinkSteps{
		Backlog: func(_ context.Context, n int64) error { order = append(order, "backlog"); return nil },
		Drain: func(context.Context) (Drained, error) {
			order = append(order, "drain")
			return Drained{Rows: 1000, Batches: 4, Join: time.Second, Write: 2 * time.Second}, nil
		},
		CountStored: func(context.Context) (int64, error) { order = append(order, "count"); return 1000, nil },
		RawCopy: func(_ context.Context, n int64) (int64, error) {
			order = append(order, "raw")
			time.Sleep(20 * time.Millisecond) // something to measure
			return n, nil
		},
	}
	r, err := RunSink(t.Context(), 1000, steps, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := order; len(got) != 4 || got[0] != "backlog" || got[1] != "drain" || got[2] != "count" || got[3] != "raw" {
		t.Errorf("steps ran in the order %v", got)
	}
	if r.Rows != 1000 || r.RowsCounted != 1000 || r.RawRowsCopied != 1000 || r.Batches != 4 || r.AvgBatch != 250 {
		t.Errorf("report %+v", r)
	}
	if r.RowsPerSec != 500 || r.JoinSeconds != 1 || r.Seconds != 2 {
		t.Errorf("rates: %v rows/s over %v s (join %v s); want 500 over 2, the join left out", r.RowsPerSec, r.Seconds, r.JoinSeconds)
	}
	if want := Round3(r.RowsPerSec / r.RawRowsPerSec); r.RatioToRawCopy != want || r.RatioToRawCopy <= 0 {
		t.Errorf("ratio %v, want %v", r.RatioToRawCopy, want)
	}
	steps.Drain = func(context.Context) (Drained, error) { return Drained{}, errors.New("group gone") }
	if _, err := RunSink(t.Context(), 1000, steps, nil); err == nil || err.Error() != "drain: group gone" {
		t.Errorf("a failed drain: %v", err)
	}
}

func TestRunE2EReadsLatenciesToTheCommit(t *testing.T) {
	steps := E2ESteps{
		Produce: func(context.Context) (int64, error) { return 3, nil },
		Consume: func(_ context.Context, stop <-chan struct{}, stages *Stages) (int64, int64, error) {
			<-stop // consumes until the producer is done
			// One batch of three rows created 1, 2 and 3 ms before the
			// poll, written 2 ms after it, committed 3 ms after that.
			t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
			polled := t0.Add(3 * time.Millisecond)
			stages.Record([]time.Time{t0.Add(2 * time.Millisecond), t0.Add(time.Millisecond), t0},
				[]time.Time{polled, polled, polled}, polled.Add(2*time.Millisecond), polled.Add(5*time.Millisecond))
			return 3, 7, nil
		},
		Latencies: func(_ context.Context, each func(time.Duration)) error {
			for _, ms := range []int{1, 2, 3} {
				each(time.Duration(ms) * time.Millisecond)
			}
			return nil
		},
		CommitLatencies: func(_ context.Context, each func(time.Duration)) error {
			for _, ms := range []int{4, 5, 6} {
				each(time.Duration(ms) * time.Millisecond)
			}
			return nil
		},
	}
	r, err := RunE2E(t.Context(), 100, time.Second, steps, nil)
	if err != nil {
		t.Fatal(err)
	}
	near := func(got, want float64) bool { return got >= want && got < want+0.01 } // HDR keeps 3 digits
	if r.LatencyTo != LatencyToCommit || !near(r.Latency.Max, 6) || !near(r.LatencyToTxStart.Max, 3) || r.LatencyCount != 3 ||
		r.Produced != 3 || r.Stored != 3 || r.MaxLag != 7 {
		t.Errorf("report %+v", r)
	}
	if len(r.Stages) != 3 || !near(r.Stages[0].Latency.Max, 3) || !near(r.Stages[0].Latency.P50, 2) ||
		!near(r.Stages[1].Latency.Max, 2) || !near(r.Stages[2].Latency.Max, 3) {
		t.Errorf("stages %+v: want to poll 1–3 ms, batch wait 2 ms, write 3 ms", r.Stages)
	}
	steps.CommitLatencies = func(_ context.Context, each func(time.Duration)) error {
		each(4 * time.Millisecond) // two of the three rows have no commit time
		return nil
	}
	if _, err = RunE2E(t.Context(), 100, time.Second, steps, nil); err == nil || !strings.Contains(err.Error(), "latencies of 1 rows read back, but the run stored 3") {
		t.Errorf("latencies of 1 row of 3: err %v, want the run refused", err)
	}
	steps.CommitLatencies = func(context.Context, func(time.Duration)) error { return ErrNoCommitTimes }
	if r, err = RunE2E(t.Context(), 100, time.Second, steps, nil); err != nil || r.LatencyTo != LatencyToTxStart || !near(r.Latency.Max, 3) {
		t.Errorf("without commit times: %+v, %v; want the transaction start figures, said so", r, err)
	}
}
