package cmd

import (
	"context"
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

type benchSinkOptions struct {
	cluster     kafka.Cluster
	metricsAddr string
	sandbox     pipeline.SandboxOptions
	producer    config.KafkaProducer
	consume     pipeline.Options
	records     int64
	seed        int64
	output      string
	log         *slog.Logger
	stderr      io.Writer
}

func newBenchSinkCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "sink",
		Short: "Measure the PostgreSQL sink against a raw COPY of the same rows",
		Long: `Produce a backlog of --records orders to a new topic, drain it with the real
consume path into a new schema (the SPEC's tables and indexes), then COPY the same
rows into an identical empty table with no Kafka involved: the ceiling. Reports
rows/s of both and their ratio, batches and average batch size, this process's
CPU time per million rows, and checks the row count with SELECT count(*). Rates
leave out the group join, reported apart.`,
		Example: `  foodpipe bench sink --records 200000
  foodpipe bench sink --records 1000000 --batch-rows 10000 --output json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := app.load(c)
			if err != nil {
				return err
			}
			return runBenchSink(c.Context(), app.Stdout, benchSinkOptionsFrom(app, e))
		},
	}
	config.AddFlags(c.Flags(), "records", "keep", "partitions", "seed", "batch-rows", "batch-bytes",
		"fetch-max-bytes", "metrics-addr", "output")
	return c
}

func benchSinkOptionsFrom(app *App, e *env) benchSinkOptions {
	cfg := e.cfg
	consume := pipelineOptions(cfg)
	consume.ProgressInterval = 200 * time.Millisecond
	return benchSinkOptions{
		cluster:     app.kafkaCluster(e),
		metricsAddr: cfg.Log.MetricsAddr,
		sandbox: pipeline.SandboxOptions{Topics: cfg.Topics, DeadLetters: true, Postgres: &cfg.Postgres,
			Migrations: app.Migrations, RawTable: true, Keep: cfg.Bench.Keep},
		producer: cfg.KafkaProducer,
		consume:  consume,
		records:  cfg.Bench.Records,
		seed:     cfg.Generator.Seed,
		output:   cfg.Output,
		log:      e.log,
		stderr:   app.Stderr,
	}
}

func runBenchSink(ctx context.Context, out io.Writer, o benchSinkOptions) error {
	// With --metrics-addr the drain is observed as consume is: what
	// metrics cost shows next to a run without.
	m, stopMetrics, err := serveMetrics(ctx, o.metricsAddr, o.log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	if m != nil {
		o.cluster.Metrics = m.Registry
		o.consume.Observer = m
	}
	sb, err := pipeline.NewSandbox(ctx, o.cluster, pipeline.SandboxName(time.Now()), o.sandbox)
	if err != nil {
		return err
	}
	defer sb.Close()
	start := time.Now().UTC() // the replayable orders' clock: the same rows twice
	steps := bench.SinkSteps{
		Backlog: func(ctx context.Context, n int64) error { return sb.Backlog(ctx, o.producer, o.seed, start, n) },
		Drain: func(ctx context.Context) (bench.Drained, error) {
			bar := newBar(o.stderr, o.records, "draining")
			opts := o.consume
			opts.Progress = func(s pipeline.Stats) { bar.set(s.Stored) }
			s, err := sb.Drain(ctx, opts)
			bar.finish()
			return bench.Drained{Rows: s.Stored, Batches: s.Batches, Join: s.FirstRecords, Write: s.LastCommit - s.FirstRecords}, err
		},
		CountStored: sb.DB.CountOrders,
		RawCopy:     func(ctx context.Context, n int64) (int64, error) { return sb.RawCopy(ctx, o.seed, start, n) },
	}
	o.log.Info("bench sink", "topic", sb.Topic, "records", o.records, "batch_rows", o.consume.BatchRows, "batch_bytes", o.consume.BatchBytes)
	report, err := bench.RunSink(ctx, o.records, steps, phaseLog(o.log))
	if err != nil {
		return err
	}
	report.Machine = machine(ctx, sb.Admin, sb.DB)
	report.Topic, report.Schema = sb.Topic, sb.Schema
	if err := writeResult(out, o.output, report, func(w io.Writer) error { return printBenchSink(w, report) }); err != nil {
		return err
	}
	if report.RowsCounted != o.records || report.Rows != o.records {
		return fmt.Errorf("stored %d rows and counted %d, want %d", report.Rows, report.RowsCounted, o.records)
	}
	return nil
}

func printBenchSink(w io.Writer, r bench.SinkReport) error {
	tw := table(w)
	fmt.Fprintf(tw, "sink\t%d rows in %.2fs: %.0f rows/s\t(%d batches, %.0f rows on average; group join %.2fs not counted)\n",
		r.Rows, r.Seconds, r.RowsPerSec, r.Batches, r.AvgBatch, r.JoinSeconds)
	fmt.Fprintf(tw, "raw COPY\t%d rows in %.2fs: %.0f rows/s\t(same rows, identical empty table, one COPY, no Kafka)\n",
		r.RawRowsCopied, r.RawSeconds, r.RawRowsPerSec)
	fmt.Fprintf(tw, "ratio\t%.3f of the raw COPY ceiling\t\n", r.RatioToRawCopy)
	fmt.Fprintf(tw, "cpu\t%.2f s of this process per million rows\t(user %.2f s + system %.2f s while draining; PostgreSQL's own is not in it)\n",
		r.CPU.SecondsPerMillion, r.CPU.UserSeconds, r.CPU.SystemSeconds)
	fmt.Fprintf(tw, "check\tSELECT count(*) = %d\t\n", r.RowsCounted)
	if err := tw.Flush(); err != nil {
		return err
	}
	printMachine(w, r.Machine)
	return nil
}
