package cmd

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/foodpipe/foodpipe/pkg/bench"
	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/pipeline"
	"github.com/foodpipe/foodpipe/pkg/store"
)

type consumeOptions struct {
	cluster     kafka.Cluster
	metricsAddr string
	pg          config.Postgres
	lockWait    time.Duration
	consume     pipeline.Options
	job         pipeline.JobOptions
	migrations  fs.FS
	output      string
	log         *slog.Logger
}

func newConsumeCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "consume",
		Short: "Consume orders and store them in PostgreSQL exactly once",
		Long: `Join the consumer group and store the orders of the topic in PostgreSQL. Each
batch of rows is written in one transaction together with the partitions' next
offsets, so every order is stored exactly once across crashes, restarts and
rebalances; on assignment the consumer resumes from the offsets in PostgreSQL
(a partition with none starts at its first record). Records that cannot be
decoded, validated or stored go to the dead-letter topic (<topic>.dlq) before
their offset is passed. While PostgreSQL is unavailable the consumer keeps its
position and retries with backoff for as long as it takes.

A stored offset outside what its partition holds — records deleted by retention
before they were consumed, a topic deleted and created again — stops the
consumer with exit 1 and a line naming the group, partition and offsets, unless
--offset-out-of-range says to resume at the earliest or latest record.

A topic or dead-letter topic that does not exist stops the consumer at start with
exit 1 and a line naming it, unless --wait-for-topic says to wait for it.
--stop-at-end makes consume a batch job: it exits 0 with the summary once the
group has stored, in every partition, everything up to the end offsets seen at
start (whichever member of the group stored it), like kcat -e.

The first SIGINT/SIGTERM/SIGHUP finishes (or rolls back) the batch in hand,
commits, leaves the group and prints the summary; a second signal exits at once.`,
		Example: `  foodpipe consume --database-url postgres://foodpipe@localhost/foodpipe
  foodpipe consume --group orders --instance-id consumer-1 --output json
  foodpipe consume --offset-out-of-range earliest
  foodpipe consume --stop-at-end --output json      # drain the backlog, then exit`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := app.load(c)
			if err != nil {
				return err
			}
			return runConsume(c.Context(), app.Stdout, consumeOptionsFrom(app, e))
		},
	}
	config.AddFlags(c.Flags(), "group", "instance-id", "dlq-topic", "batch-rows", "batch-bytes",
		"fetch-max-bytes", "session-timeout", "heartbeat-interval", "rebalance-timeout", "lock-timeout",
		"offset-out-of-range", "stop-at-end", "wait-for-topic", "progress-interval", "metrics-addr", "output")
	return c
}

func consumeOptionsFrom(app *App, e *env) consumeOptions {
	consume := pipelineOptions(e.cfg)
	consume.Pause = testPauses(os.Getenv("FOODPIPE_TEST_PAUSE"))
	return consumeOptions{
		cluster:     app.kafkaCluster(e),
		metricsAddr: e.cfg.Log.MetricsAddr,
		pg:          e.cfg.Postgres,
		lockWait:    e.cfg.Consume.LockTimeout,
		consume:     consume,
		job:         pipeline.JobOptions{WaitForTopic: e.cfg.Consume.WaitForTopic, StopAtEnd: e.cfg.Consume.StopAtEnd},
		migrations:  app.Migrations,
		output:      e.cfg.Output,
		log:         e.log,
	}
}

// pipelineOptions are the consume options of a configuration; bench uses
// them too.
func pipelineOptions(cfg *config.Config) pipeline.Options {
	c := cfg.Consume
	return pipeline.Options{
		Topic:             cfg.Kafka.Topic,
		DLQTopic:          cfg.Kafka.DLQ(),
		Group:             c.Group,
		InstanceID:        c.InstanceID,
		BatchRows:         c.BatchMaxRows,
		BatchBytes:        c.BatchMaxBytes,
		FetchMaxBytes:     c.FetchMaxBytes,
		SessionTimeout:    c.SessionTimeout,
		HeartbeatInterval: c.HeartbeatInterval,
		RebalanceTimeout:  c.RebalanceTimeout,
		OutOfRange:        c.OutOfRange,
		RetryMin:          100 * time.Millisecond,
		RetryMax:          30 * time.Second,
		StopGrace:         4 * time.Second,
		ProgressInterval:  cfg.Log.ProgressInterval,
	}
}

// consumeResult is the summary of consume, in text or JSON.
type consumeResult struct {
	Topic      string `json:"topic"`
	Group      string `json:"group"`
	Stored     int64  `json:"stored"`
	Duplicates int64  `json:"duplicates"`
	// Dropped counts the orders the database skipped without an error (a
	// trigger returning NULL or a rule on orders).
	Dropped int64 `json:"dropped_by_database"`
	// InDoubt counts the orders of a commit whose answer never came, with
	// a database that could not say at the stop whether it landed.
	InDoubt      int64            `json:"in_doubt"`
	DeadLettered map[string]int64 `json:"dead_lettered"`
	Batches      int64            `json:"batches"`
	// DurationSeconds is the whole run; ActiveSeconds the part from the
	// first records to the last commit, which RowsPerSecond is over.
	DurationSeconds float64         `json:"duration_seconds"`
	ActiveSeconds   float64         `json:"active_seconds"`
	RowsPerSecond   float64         `json:"rows_per_second"`
	Offsets         map[int32]int64 `json:"offsets"`
}

func runConsume(ctx context.Context, out io.Writer, opts consumeOptions) error {
	m, stopMetrics, err := serveMetrics(ctx, opts.metricsAddr, opts.log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	db, err := store.Open(ctx, opts.pg, store.Options{AppName: "foodpipe consume", LockTimeout: opts.lockWait}, opts.log)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.CheckMigrated(ctx, opts.migrations); err != nil {
		return err
	}
	if err := checkColumns(ctx, db); err != nil {
		return err
	}
	if err := db.CheckWritable(ctx, opts.pg.ConnectTimeout); err != nil {
		return err
	}
	if err := pipeline.PrepareJob(ctx, opts.cluster, db, &opts.consume, opts.job); err != nil {
		return err
	}
	if m != nil {
		m.WatchPool(db.PoolStats)
		opts.cluster.Metrics = m.Registry
		opts.consume.Observer = m
	}
	opts.consume.Started = func() {
		opts.log.Info("consuming", "topic", opts.consume.Topic, "group", opts.consume.Group,
			"dlq_topic", opts.consume.DLQTopic, "database", db.Addr())
	}
	var last pipeline.Stats
	opts.consume.Progress = func(s pipeline.Stats) {
		opts.log.Info("progress", "stored", s.Stored, "duplicates", s.Duplicates, "dead_lettered", sum(s.DeadLettered),
			"lag", s.Lag, "rows_per_second", perSecond(s.Stored-last.Stored, s.Elapsed-last.Elapsed))
		last = s
	}
	stats, err := pipeline.Consume(ctx, opts.cluster, db, opts.consume)
	if stats.Elapsed == 0 {
		return err // never started
	}
	res := newConsumeResult(opts.consume.Topic, opts.consume.Group, stats)
	if werr := writeResult(out, opts.output, res, func(w io.Writer) error { return printConsume(w, res) }); werr != nil {
		return werr
	}
	return err
}

// newConsumeResult is the summary of a run: its rate is over the busy part,
// from the first records to the last commit, not over time spent waiting.
func newConsumeResult(topic, group string, stats pipeline.Stats) consumeResult {
	res := consumeResult{
		Topic:           topic,
		Group:           group,
		Stored:          stats.Stored,
		Duplicates:      stats.Duplicates,
		Dropped:         stats.Dropped,
		InDoubt:         stats.InDoubt,
		DeadLettered:    stats.DeadLettered,
		Batches:         stats.Batches,
		DurationSeconds: bench.Round3(stats.Elapsed.Seconds()),
		Offsets:         stats.Offsets,
	}
	if active := stats.LastCommit - stats.FirstRecords; stats.Batches > 0 && active > 0 {
		res.ActiveSeconds = bench.Round3(active.Seconds())
		res.RowsPerSecond = bench.Round1(float64(stats.Stored) / active.Seconds())
	}
	return res
}

func printConsume(w io.Writer, r consumeResult) error {
	tw := table(w)
	dead := sum(r.DeadLettered)
	fmt.Fprintf(tw, "topic\t%s (group %s)\n", r.Topic, r.Group)
	fmt.Fprintf(tw, "stored\t%d orders\n", r.Stored)
	fmt.Fprintf(tw, "duplicates\t%d (order_id already stored: skipped)\n", r.Duplicates)
	if r.Dropped > 0 {
		fmt.Fprintf(tw, "dropped\t%d by the database without an error (a trigger or rule on orders): not stored, not dead-lettered\n", r.Dropped)
	}
	if r.InDoubt > 0 {
		fmt.Fprintf(tw, "in doubt\t%d orders of a commit whose answer never came: stored or not as the stored offsets say; the next run resumes from those\n", r.InDoubt)
	}
	fmt.Fprintf(tw, "dead-lettered\t%d", dead)
	for _, c := range slices.Sorted(maps.Keys(r.DeadLettered)) {
		fmt.Fprintf(tw, "  %s: %d", c, r.DeadLettered[c])
	}
	fmt.Fprintln(tw)
	avg := 0.0
	if r.Batches > 0 {
		avg = float64(r.Stored+r.Duplicates+r.Dropped+dead) / float64(r.Batches)
	}
	fmt.Fprintf(tw, "batches\t%d transactions (%.1f records each on average)\n", r.Batches, avg)
	fmt.Fprintf(tw, "duration\t%s\n", time.Duration(r.DurationSeconds*float64(time.Second)).Round(time.Millisecond))
	if r.ActiveSeconds > 0 {
		fmt.Fprintf(tw, "rate\t%.1f rows/s (over %s, from the first records to the last commit)\n",
			r.RowsPerSecond, time.Duration(r.ActiveSeconds*float64(time.Second)).Round(time.Millisecond))
	}
	for _, p := range slices.Sorted(maps.Keys(r.Offsets)) {
		fmt.Fprintf(tw, "partition %d\tnext offset %d\n", p, r.Offsets[p])
	}
	return tw.Flush()
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// testPauses reads FOODPIPE_TEST_PAUSE, e.g. "in-transaction=500ms,after-commit=500ms":
// the fault tests' way to hold the consumer where they kill it. Not a
// setting: nothing but the tests sets it, and a value that does not parse
// is ignored.
func testPauses(spec string) map[string]time.Duration {
	if spec == "" {
		return nil
	}
	out := map[string]time.Duration{}
	for _, part := range strings.Split(spec, ",") {
		point, d, _ := strings.Cut(part, "=")
		if dur, err := time.ParseDuration(d); err == nil {
			out[strings.TrimSpace(point)] = dur
		}
	}
	return out
}
