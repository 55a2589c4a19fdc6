package bench

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// E2ESteps are the parts of the end-to-end bench, filled in by cmd.
type E2ESteps struct {
	// Produce produces orders at rate for duration and returns how many
	// were acknowledged.
	Produce func(ctx context.Context) (int64, error)
	// Consume runs the consume path until stop is closed and the backlog
	// is stored, and reports what it stored and the largest lag it saw;
	// it records each committed batch's rows in stages.
	Consume func(ctx context.Context, stop <-chan struct{}, stages *Stages) (stored, maxLag int64, err error)
	// Latencies calls each with processed_at − created_at of every stored
	// row, read back from PostgreSQL: the database is the witness.
	// processed_at is the start of the row's transaction.
	Latencies func(ctx context.Context, each func(time.Duration)) error
	// CommitLatencies calls each with the commit time of every row's
	// transaction − created_at: the latency to the moment the row became
	// visible. It fails with ErrNoCommitTimes where the database does not
	// keep commit times; the report then says so.
	CommitLatencies func(ctx context.Context, each func(time.Duration)) error
}

// ErrNoCommitTimes is what CommitLatencies returns when the database keeps
// no commit times (PostgreSQL's track_commit_timestamp is off).
var ErrNoCommitTimes = errors.New("the database keeps no commit times")

// E2EReport is the result of the end-to-end bench.
type E2EReport struct {
	Rate            float64 `json:"rate"`
	DurationSeconds float64 `json:"duration_seconds"`
	Produced        int64   `json:"produced"`
	Stored          int64   `json:"stored"`
	ProducedPerSec  float64 `json:"produced_per_sec"`
	StoredPerSec    float64 `json:"stored_per_sec"`
	MaxLag          int64   `json:"max_lag"`
	// Latency is created_at to the commit that made the row visible, when
	// the database keeps commit times (LatencyTo says which).
	Latency      Latency `json:"latency_ms"`
	LatencyTo    string  `json:"latency_to"`
	LatencyCount int64   `json:"latency_samples"`
	// LatencyToTxStart is created_at to processed_at, the start of the
	// row's transaction: it leaves out the write and the commit.
	LatencyToTxStart Latency `json:"latency_to_transaction_start_ms"`
	// Stages is where the time to the commit went, by the consumer's clock.
	Stages  []StageLatency `json:"stages"`
	Machine Machine        `json:"machine"`
	// Topic and Schema are where the run's data was (kept with --keep).
	Topic  string `json:"topic"`
	Schema string `json:"schema"`
}

// What E2EReport.Latency is measured to.
const (
	LatencyToCommit  = "commit"
	LatencyToTxStart = "transaction start (track_commit_timestamp is off)"
)

// RunE2E consumes while producing, then reads every stored row's latency.
func RunE2E(ctx context.Context, rate float64, duration time.Duration, steps E2ESteps, phase func(string)) (E2EReport, error) {
	r := E2EReport{Rate: rate, DurationSeconds: duration.Seconds()}
	if phase != nil {
		phase("producing and consuming")
	}
	stop := make(chan struct{})
	type consumed struct {
		stored, maxLag int64
		err            error
		took           time.Duration
	}
	done := make(chan consumed, 1)
	stages := NewStages()
	start := time.Now()
	go func() {
		s, l, err := steps.Consume(ctx, stop, stages)
		done <- consumed{s, l, err, time.Since(start)}
	}()
	produced, perr := steps.Produce(ctx)
	produceTook := time.Since(start)
	close(stop)
	c := <-done
	if perr != nil {
		return r, fmt.Errorf("produce: %w", perr)
	}
	if c.err != nil {
		return r, fmt.Errorf("consume: %w", c.err)
	}
	r.Produced, r.Stored, r.MaxLag = produced, c.stored, c.maxLag
	r.ProducedPerSec = Round3(float64(produced) / produceTook.Seconds())
	r.StoredPerSec = Round3(float64(c.stored) / c.took.Seconds())
	r.Stages = stages.Summary()

	if phase != nil {
		phase("reading latencies back from PostgreSQL")
	}
	txStart := NewHistogram()
	if err := steps.Latencies(ctx, txStart.Record); err != nil {
		return r, fmt.Errorf("latencies: %w", err)
	}
	r.LatencyToTxStart = txStart.Summary()
	commit := NewHistogram()
	err := steps.CommitLatencies(ctx, commit.Record)
	switch {
	case err == nil:
		r.Latency, r.LatencyTo, r.LatencyCount = commit.Summary(), LatencyToCommit, commit.Count()
	case errors.Is(err, ErrNoCommitTimes):
		r.Latency, r.LatencyTo, r.LatencyCount = txStart.Summary(), LatencyToTxStart, txStart.Count()
	default:
		return r, fmt.Errorf("commit latencies: %w", err)
	}
	if r.LatencyCount != r.Stored {
		// A row without a latency (no commit time kept for it) or one the
		// run did not store: the figures would not be of the run's orders.
		return r, fmt.Errorf("latencies of %d rows read back, but the run stored %d", r.LatencyCount, r.Stored)
	}
	return r, nil
}
