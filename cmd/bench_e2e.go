package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/foodpipe/foodpipe/pkg/bench"
	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/pipeline"
)

type benchE2EOptions struct {
	cluster   kafka.Cluster
	sandbox   pipeline.SandboxOptions
	producer  config.KafkaProducer
	generator config.Generator
	consume   pipeline.Options
	output    string
	log       *slog.Logger
	stderr    io.Writer
}

func newBenchE2ECmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "e2e",
		Short: "Measure end-to-end latency: produce and consume at once",
		Long: `Produce orders at --rate for --duration to a new topic while consuming them into
a new schema, then read every stored row's latency back from PostgreSQL, so the
database is the witness: from created_at to the commit that made the row visible
(pg_xact_commit_timestamp, with track_commit_timestamp = on), and to processed_at,
the start of the row's transaction. Reports avg/p50/p95/p99/p99.9/max, achieved
rates and the largest consumer lag seen.`,
		Example: `  foodpipe bench e2e --rate 1000 --duration 60s`,
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := app.load(c)
			if err != nil {
				return err
			}
			o := benchE2EOptionsFrom(app, e)
			if err := o.check(); err != nil {
				return err
			}
			return runBenchE2E(c.Context(), app.Stdout, o)
		},
	}
	config.AddFlags(c.Flags(), "rate", "duration", "keep", "partitions", "seed", "customers", "batch-rows", "batch-bytes",
		"fetch-max-bytes", "linger", "output")
	// A latency measured at no set rate or for no set time means nothing.
	c.Flags().Lookup("rate").Usage = "orders per second to produce (required)"
	c.Flags().Lookup("rate").DefValue = "0" // the producer's default 10 does not apply
	c.Flags().Lookup("duration").Usage = "how long to produce and measure (required)"
	return c
}

// check refuses a run without a rate or a duration.
func (o benchE2EOptions) check() error {
	if o.generator.Duration <= 0 || o.generator.Rate <= 0 {
		return usage(errors.New("bench e2e needs a --rate and a --duration, e.g. --rate 1000 --duration 60s"))
	}
	return nil
}

func benchE2EOptionsFrom(app *App, e *env) benchE2EOptions {
	cfg := e.cfg
	generator := cfg.Generator
	if !cfg.IsSet("rate") {
		generator.Rate = 0 // required: check refuses it
	}
	consume := pipelineOptions(cfg)
	consume.ProgressInterval = 0
	return benchE2EOptions{
		cluster: app.kafkaCluster(e),
		sandbox: pipeline.SandboxOptions{Topics: cfg.Topics, DeadLetters: true, Postgres: &cfg.Postgres,
			Migrations: app.Migrations, Keep: cfg.Bench.Keep},
		producer:  cfg.KafkaProducer,
		generator: generator,
		consume:   consume,
		output:    cfg.Output,
		log:       e.log,
		stderr:    app.Stderr,
	}
}

func runBenchE2E(ctx context.Context, out io.Writer, o benchE2EOptions) error {
	sb, err := pipeline.NewSandbox(ctx, o.cluster, pipeline.SandboxName(time.Now()), o.sandbox)
	if err != nil {
		return err
	}
	defer sb.Close()
	g := o.generator
	steps := bench.E2ESteps{
		Produce: func(ctx context.Context) (int64, error) {
			gen, err := pipeline.NewGenerator(g.Seed, g.Customers)
			if err != nil {
				return 0, err
			}
			bar := newBar(o.stderr, int64(g.Duration/time.Second), "seconds")
			start := time.Now()
			s, err := pipeline.ProduceOrders(ctx, o.cluster, o.producer, sb.Topic, gen, pipeline.ProduceOptions{
				Rate: g.Rate, Duration: g.Duration, FlushTimeout: o.producer.FlushTimeout,
				ProgressInterval: time.Second,
				Progress:         func(pipeline.ProduceStats) { bar.set(int64(time.Since(start) / time.Second)) },
			})
			bar.finish()
			return s.Produced, err
		},
		Consume: func(ctx context.Context, stop <-chan struct{}, stages *bench.Stages) (int64, int64, error) {
			consume := o.consume
			consume.Observer = stageObserver{stages: stages}
			s, err := sb.ConsumeUntil(ctx, consume, stop)
			return s.Stored, s.MaxLag, err
		},
		Latencies: sb.DB.Latencies,
		CommitLatencies: func(ctx context.Context, each func(time.Duration)) error {
			ok, err := sb.DB.CommitLatencies(ctx, each)
			if err == nil && !ok {
				err = bench.ErrNoCommitTimes
			}
			return err
		},
	}
	o.log.Info("bench e2e", "topic", sb.Topic, "rate", g.Rate, "duration", g.Duration.String())
	report, err := bench.RunE2E(ctx, g.Rate, g.Duration, steps, phaseLog(o.log))
	if err != nil {
		return err
	}
	report.Machine = machine(ctx, sb.Admin, sb.DB)
	report.Topic, report.Schema = sb.Topic, sb.Schema
	return writeResult(out, o.output, report, func(w io.Writer) error { return printBenchE2E(w, report) })
}

func printBenchE2E(w io.Writer, r bench.E2EReport) error {
	line := func(name string, l bench.Latency) {
		fmt.Fprintf(w, "%s: avg %.2f ms, p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
			name, l.Avg, l.P50, l.P95, l.P99, l.P999, l.Max)
	}
	line(fmt.Sprintf("end-to-end latency, created_at to %s (%d rows)", r.LatencyTo, r.LatencyCount), r.Latency)
	line("created_at to the start of the row's transaction (processed_at)", r.LatencyToTxStart)
	if len(r.Stages) > 0 {
		fmt.Fprintln(w, "where the time to the commit went, by the consumer's clock:")
		for _, s := range r.Stages {
			line("  "+s.Stage, s.Latency)
		}
	}
	fmt.Fprintf(w, "produced %d orders (%.1f/s, target %g/s), stored %d (%.1f/s), max consumer lag %d records\n",
		r.Produced, r.ProducedPerSec, r.Rate, r.Stored, r.StoredPerSec, r.MaxLag)
	printMachine(w, r.Machine)
	return nil
}

// stageObserver records each committed batch's rows in the bench's stages.
type stageObserver struct {
	pipeline.NopObserver
	stages *bench.Stages
}

func (o stageObserver) Committed(c pipeline.Commit) {
	created := make([]time.Time, len(c.Orders))
	for i, ord := range c.Orders {
		created[i] = ord.CreatedAt
	}
	o.stages.Record(created, c.Polled, c.At.Add(-c.Took), c.At)
}
