package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/foodpipe/foodpipe/internal/tick"
)

// MB is the unit of the MB/sec figures, as kafka-producer-perf-test uses it.
const MB = 1024 * 1024

// Sender hands records to a producer; kafka.Producer is one.
type Sender interface {
	Send(ctx context.Context, key, value []byte) error
	Flush(ctx context.Context) error
}

// Payload makes the records to send. Next may reuse a value once Release
// was called for it.
type Payload interface {
	Next() (key, value []byte)
	Release(value []byte)
}

// ProduceOptions configure RunProduce.
type ProduceOptions struct {
	Records int64 // measured records
	Warmup  int64 // records sent first and left out of the results
	// Pace is called before each record: it waits for the record's turn
	// (kafka.Pacer paces at --throughput). nil means unlimited.
	Pace func(context.Context) error
	// Window is how often OnWindow gets the figures of the last window.
	Window   time.Duration
	OnWindow func(ProduceReport)
	// Sent, if set, is called after each record is handed over (progress).
	Sent func(n int64)
}

// ProduceReport is the throughput and latency of some records, as
// kafka-producer-perf-test reports them.
type ProduceReport struct {
	Records       int64   `json:"records"`
	Failed        int64   `json:"failed"`
	Bytes         int64   `json:"bytes"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	Latency       Latency `json:"latency_ms"`
	// CPU is this process's CPU time over the measured records.
	CPU CPU `json:"cpu"`
}

// KafkaLine renders the report as kafka-producer-perf-test's line:
// "N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max
// latency, P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th."
func (r ProduceReport) KafkaLine() string {
	l := r.Latency
	return fmt.Sprintf("%d records sent, %.1f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency, "+
		"%.1f ms 50th, %.1f ms 95th, %.1f ms 99th, %.1f ms 99.9th.",
		r.Records, r.RecordsPerSec, r.MBPerSec, l.Avg, l.Max, l.P50, l.P95, l.P99, l.P999)
}

// Recorder takes every delivery of a produce bench: wire Delivered as the
// producer's delivery callback. Latency is ack time − send time, per
// record, into HDR histograms: one for the whole run, one per window.
type Recorder struct {
	mu        sync.Mutex
	now       func() time.Time
	warmupEnd time.Time // zero until the last warmup record is sent
	start     time.Time // first measured send
	lastAck   time.Time
	total     *Histogram
	window    *Histogram
	win       ProduceReport
	winStart  time.Time
	sum       ProduceReport
	warmup    int64
}

// NewRecorder returns a Recorder; now is the clock (time.Now).
func NewRecorder(now func() time.Time) *Recorder {
	return &Recorder{now: now, total: NewHistogram(), window: NewHistogram()}
}

// Delivered records one acknowledgement (err nil) or failure, sent at
// sentAt and acknowledged latency later (the producer measures both, so
// this reads no clock). Records sent before the warm-up ended are counted
// apart.
func (r *Recorder) Delivered(sentAt time.Time, latency time.Duration, bytes int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.warmupEnd.IsZero() || !sentAt.After(r.warmupEnd) {
		r.warmup++
		return
	}
	if err != nil {
		r.sum.Failed++
		r.win.Failed++
		return
	}
	r.total.Record(latency)
	r.window.Record(latency)
	r.sum.Records++
	r.sum.Bytes += int64(bytes)
	r.win.Records++
	r.win.Bytes += int64(bytes)
	r.lastAck = sentAt.Add(latency)
}

// endWarmup marks the moment after which sends are measured.
func (r *Recorder) endWarmup() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.warmupEnd = r.now()
	r.start = r.warmupEnd
	r.winStart = r.warmupEnd
}

// flushWindow returns the figures since the last window and starts a new one.
func (r *Recorder) flushWindow() ProduceReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	w := r.win
	w.Latency = r.window.Summary()
	finish(&w, now.Sub(r.winStart))
	r.win, r.winStart = ProduceReport{}, now
	r.window.Reset()
	return w
}

// Total returns the figures of every measured record, from the first
// measured send to the last acknowledgement.
func (r *Recorder) Total() ProduceReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.sum
	t.Latency = r.total.Summary()
	finish(&t, r.lastAck.Sub(r.start))
	return t
}

// Warmup is the number of warm-up records delivered or failed.
func (r *Recorder) Warmup() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.warmup
}

func finish(r *ProduceReport, d time.Duration) {
	r.Seconds = Round3(d.Seconds())
	if d > 0 {
		r.RecordsPerSec = Round3(float64(r.Records) / d.Seconds())
		r.MBPerSec = Round3(float64(r.Bytes) / MB / d.Seconds())
	}
}

// RunProduce sends Warmup+Records records from payload through s, paced at
// opts.Pace, waits for every delivery, and returns the measured report.
// It stops early, still flushing, when ctx is cancelled.
func RunProduce(ctx context.Context, s Sender, payload Payload, rec *Recorder, opts ProduceOptions) (ProduceReport, error) {
	var cpu cpuMark
	if opts.Warmup == 0 {
		rec.endWarmup()
		cpu = markCPU()
	}
	stopWindows := windows(rec, opts)
	defer stopWindows()
	total := opts.Warmup + opts.Records
	for i := int64(0); i < total; i++ {
		if opts.Pace != nil && opts.Pace(ctx) != nil {
			break
		}
		key, value := payload.Next()
		if err := s.Send(ctx, key, value); err != nil {
			break
		}
		if i+1 == opts.Warmup {
			rec.endWarmup()
			cpu = markCPU()
		}
		if opts.Sent != nil {
			opts.Sent(i + 1)
		}
	}
	if err := s.Flush(context.WithoutCancel(ctx)); err != nil {
		return rec.Total(), fmt.Errorf("flush: %w", err)
	}
	stopWindows()
	r := rec.Total()
	r.CPU = cpu.since(r.Records)
	return r, nil
}

// windows reports a window every opts.Window until stopped; stopping twice
// is harmless.
func windows(rec *Recorder, opts ProduceOptions) (stop func()) {
	if opts.OnWindow == nil {
		return func() {}
	}
	return tick.Every(opts.Window, func() { opts.OnWindow(rec.flushWindow()) })
}
