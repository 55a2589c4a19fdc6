package bench

import (
	"context"
	"fmt"
	"time"
)

// SinkSteps are the parts of the sink bench, filled in by cmd with the real
// producer, consumer and database.
type SinkSteps struct {
	// Backlog produces n orders into the bench topic.
	Backlog func(ctx context.Context, n int64) error
	// Drain consumes the whole backlog with the real consume path.
	Drain func(ctx context.Context) (Drained, error)
	// CountStored counts the rows of the sink's table (an independent check).
	CountStored func(ctx context.Context) (int64, error)
	// RawCopy copies the same n orders into an identical empty table with
	// one COPY, no Kafka involved: the ceiling.
	RawCopy func(ctx context.Context, n int64) (int64, error)
}

// Drained is what the consume path reports after draining the backlog.
type Drained struct {
	Rows    int64
	Batches int64
	// Join is the time from start to the first records (group join, first
	// fetch); Write is from the first records to the last commit.
	Join, Write time.Duration
}

// SinkReport is the result of the sink bench.
type SinkReport struct {
	Records        int64   `json:"records"`
	Rows           int64   `json:"rows"`
	RowsCounted    int64   `json:"rows_counted"`
	Batches        int64   `json:"batches"`
	AvgBatch       float64 `json:"avg_batch"`
	JoinSeconds    float64 `json:"join_seconds"`
	Seconds        float64 `json:"seconds"`
	RowsPerSec     float64 `json:"rows_per_sec"`
	RawSeconds     float64 `json:"raw_copy_seconds"`
	RawRowsPerSec  float64 `json:"raw_copy_rows_per_sec"`
	RatioToRawCopy float64 `json:"ratio_to_raw_copy"`
	BacklogSeconds float64 `json:"backlog_seconds"`
	RawRowsCopied  int64   `json:"raw_copy_rows"`
	// CPU is this process's CPU time while draining (the database's is not
	// in it).
	CPU     CPU     `json:"cpu"`
	Machine Machine `json:"machine"`
	// Topic and Schema are where the run's data was (kept with --keep).
	Topic  string `json:"topic"`
	Schema string `json:"schema"`
}

// RunSink produces a backlog, drains it through the consume path, counts
// the rows, then measures the raw COPY ceiling with the same rows, and
// compares the two. phase, if set, is told which step runs.
func RunSink(ctx context.Context, n int64, steps SinkSteps, phase func(string)) (SinkReport, error) {
	say := func(s string) {
		if phase != nil {
			phase(s)
		}
	}
	r := SinkReport{Records: n}

	say("producing the backlog")
	t := time.Now()
	if err := steps.Backlog(ctx, n); err != nil {
		return r, fmt.Errorf("backlog: %w", err)
	}
	r.BacklogSeconds = Round3(time.Since(t).Seconds())

	say("draining through the consume path")
	cpu := markCPU()
	d, err := steps.Drain(ctx)
	if err != nil {
		return r, fmt.Errorf("drain: %w", err)
	}
	r.CPU = cpu.since(d.Rows)
	r.Rows, r.Batches = d.Rows, d.Batches
	r.JoinSeconds, r.Seconds = Round3(d.Join.Seconds()), Round3(d.Write.Seconds())
	if d.Write > 0 {
		r.RowsPerSec = Round3(float64(d.Rows) / d.Write.Seconds())
	}
	if d.Batches > 0 {
		r.AvgBatch = Round3(float64(d.Rows) / float64(d.Batches))
	}
	if r.RowsCounted, err = steps.CountStored(ctx); err != nil {
		return r, fmt.Errorf("count rows: %w", err)
	}

	say("raw COPY of the same rows")
	t = time.Now()
	if r.RawRowsCopied, err = steps.RawCopy(ctx, n); err != nil {
		return r, fmt.Errorf("raw copy: %w", err)
	}
	raw := time.Since(t)
	r.RawSeconds = Round3(raw.Seconds())
	r.RawRowsPerSec = Round3(float64(r.RawRowsCopied) / raw.Seconds())
	if r.RawRowsPerSec > 0 {
		r.RatioToRawCopy = Round3(r.RowsPerSec / r.RawRowsPerSec)
	}
	return r, nil
}
