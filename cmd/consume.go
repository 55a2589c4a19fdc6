package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/foodpipe/foodpipe/pkg/store"
)

type consumeOptions struct {
	conn       kafka.Conn
	pg         config.Postgres
	consume    kafka.ConsumeOptions
	migrations fs.FS
	output     string
	log        *slog.Logger
}

func newConsumeCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "consume",
		Short: "Consume orders and store them in PostgreSQL exactly once",
		Long: `Join the consumer group and store the orders of the topic in PostgreSQL. Each
batch of rows is written in one transaction together with the partitions' next
offsets, so every order is stored exactly once across crashes, restarts and
rebalances; on assignment the consumer resumes from the offsets in PostgreSQL.
Records that cannot be decoded, validated or stored go to the dead-letter topic
(<topic>.dlq) before their offset is passed. While PostgreSQL is unavailable the
consumer keeps its position and retries with backoff for as long as it takes.

The first SIGINT/SIGTERM finishes (or rolls back) the batch in hand, commits,
leaves the group and prints the summary; a second signal exits at once.`,
		Example: `  foodpipe consume --database-url postgres://foodpipe@localhost/foodpipe
  foodpipe consume --group orders --instance-id consumer-1 --output json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := app.load(c)
			if err != nil {
				return err
			}
			if _, err := store.ParseConfig(e.cfg.Postgres, store.Options{}); err != nil {
				return usage(err)
			}
			return runConsume(c.Context(), app.Stdout, consumeOptions{
				conn:       app.kafkaConn(e),
				pg:         e.cfg.Postgres,
				consume:    sinkOptions(e.cfg),
				migrations: app.Migrations,
				output:     e.cfg.Output,
				log:        e.log,
			})
		},
	}
	config.AddFlags(c.Flags(), "group", "instance-id", "dlq-topic", "batch-rows", "batch-bytes",
		"fetch-max-bytes", "progress-interval", "output")
	return c
}

// sinkOptions are the consume options of a configuration; bench uses them too.
func sinkOptions(cfg *config.Config) kafka.ConsumeOptions {
	return kafka.ConsumeOptions{
		Topic:            cfg.Kafka.Topic,
		DLQTopic:         cfg.Kafka.DLQ(),
		Group:            cfg.Consume.Group,
		InstanceID:       cfg.Consume.InstanceID,
		BatchRows:        cfg.Consume.BatchMaxRows,
		BatchBytes:       cfg.Consume.BatchMaxBytes,
		FetchMaxBytes:    cfg.Consume.FetchMaxBytes,
		DLQ:              cfg.Producer,
		RetryMin:         100 * time.Millisecond,
		RetryMax:         30 * time.Second,
		ProgressInterval: cfg.Producer.ProgressInterval,
	}
}

// consumeResult is the summary of consume, in text or JSON.
type consumeResult struct {
	Topic           string           `json:"topic"`
	Group           string           `json:"group"`
	Stored          int64            `json:"stored"`
	Duplicates      int64            `json:"duplicates"`
	DeadLettered    map[string]int64 `json:"dead_lettered"`
	Batches         int64            `json:"batches"`
	DurationSeconds float64          `json:"duration_seconds"`
	RowsPerSecond   float64          `json:"rows_per_second"`
	Offsets         map[int32]int64  `json:"offsets"`
}

func runConsume(ctx context.Context, out io.Writer, opts consumeOptions) error {
	db, err := openSink(ctx, opts.pg, store.Options{AppName: "foodpipe consume"}, opts.migrations, opts.log)
	if err != nil {
		return err
	}
	defer db.Close()

	opts.consume.Started = func() {
		opts.log.Info("consuming", "topic", opts.consume.Topic, "group", opts.consume.Group,
			"dlq_topic", opts.consume.DLQTopic, "database", db.Addr())
	}
	var last kafka.ConsumeStats
	opts.consume.Progress = func(s kafka.ConsumeStats) {
		rate := 0.0
		if d := (s.Elapsed - last.Elapsed).Seconds(); d > 0 {
			rate = float64(s.Stored-last.Stored) / d
		}
		opts.log.Info("progress", "stored", s.Stored, "duplicates", s.Duplicates,
			"dead_lettered", sum(s.DeadLettered), "lag", s.Lag, "rows_per_second", round1(rate))
		last = s
	}
	stats, err := kafka.Consume(ctx, opts.conn, storeSink{db}, opts.consume)
	if stats.Elapsed == 0 {
		return err // never started
	}
	res := consumeResult{
		Topic:           opts.consume.Topic,
		Group:           opts.consume.Group,
		Stored:          stats.Stored,
		Duplicates:      stats.Duplicates,
		DeadLettered:    stats.DeadLettered,
		Batches:         stats.Batches,
		DurationSeconds: round3(stats.Elapsed.Seconds()),
		RowsPerSecond:   round1(float64(stats.Stored) / stats.Elapsed.Seconds()),
		Offsets:         stats.Offsets,
	}
	if werr := writeResult(out, opts.output, res, func(w io.Writer) error { return printConsume(w, res) }); werr != nil {
		return werr
	}
	return err
}

// openSink connects to PostgreSQL and refuses to start on a schema that is
// not migrated: retrying inserts into a missing table would only hide that.
func openSink(ctx context.Context, pg config.Postgres, o store.Options, migrations fs.FS, log *slog.Logger) (*store.DB, error) {
	db, err := store.Open(ctx, pg, o, log)
	if err != nil {
		return nil, err
	}
	status, err := db.MigrationStatus(ctx, migrations)
	if err != nil {
		db.Close()
		return nil, err
	}
	for _, m := range status {
		if !m.Applied {
			db.Close()
			return nil, fmt.Errorf("database at %s is not migrated (%s pending): run foodpipe db migrate", db.Addr(), m.File)
		}
	}
	return db, nil
}

func printConsume(w io.Writer, r consumeResult) error {
	tw := table(w)
	fmt.Fprintf(tw, "topic\t%s (group %s)\n", r.Topic, r.Group)
	fmt.Fprintf(tw, "stored\t%d orders\n", r.Stored)
	fmt.Fprintf(tw, "duplicates\t%d (order_id already stored: skipped)\n", r.Duplicates)
	fmt.Fprintf(tw, "dead-lettered\t%d", sum(r.DeadLettered))
	for _, c := range slices.Sorted(maps.Keys(r.DeadLettered)) {
		fmt.Fprintf(tw, "  %s: %d", c, r.DeadLettered[c])
	}
	fmt.Fprintln(tw)
	avg := 0.0
	if r.Batches > 0 {
		avg = float64(r.Stored) / float64(r.Batches)
	}
	fmt.Fprintf(tw, "batches\t%d (%.1f rows on average)\n", r.Batches, avg)
	fmt.Fprintf(tw, "duration\t%s\n", time.Duration(r.DurationSeconds*float64(time.Second)).Round(time.Millisecond))
	fmt.Fprintf(tw, "rate\t%.1f rows/s\n", r.RowsPerSecond)
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

// storeSink adapts store.DB to kafka.Sink: pkg/kafka and pkg/store do not
// import each other; the consume command wires them.
type storeSink struct{ db *store.DB }

func (s storeSink) LoadOffsets(ctx context.Context, group, topic string) (map[int32]int64, error) {
	return s.db.LoadOffsets(ctx, group, topic)
}

func (s storeSink) Write(ctx context.Context, group string, orders []*order.Order, offsets []kafka.PartitionOffset,
	beforeCommit func([]kafka.RejectedOrder) error) (kafka.SinkResult, error) {
	so := make([]store.Offset, len(offsets))
	for i, o := range offsets {
		so[i] = store.Offset{Topic: o.Topic, Partition: o.Partition, Expected: o.Expected, Next: o.Next}
	}
	var hookErr error
	res, err := s.db.WriteBatch(ctx, group, orders, so, func(rejected []store.Rejected) error {
		kr := make([]kafka.RejectedOrder, len(rejected))
		for i, r := range rejected {
			kr[i] = kafka.RejectedOrder{Index: r.Index, Reason: r.Reason}
		}
		hookErr = beforeCommit(kr)
		return hookErr
	})
	var fenced *store.FencedError
	switch {
	case err == nil:
		return kafka.SinkResult{Inserted: res.Inserted, Duplicates: res.Duplicates}, nil
	case errors.As(err, &fenced):
		parts := make([]int32, len(fenced.Partitions))
		for i, tp := range fenced.Partitions {
			parts[i] = tp.Partition
		}
		return kafka.SinkResult{}, &kafka.FencedError{Partitions: parts}
	case hookErr != nil, store.IsRetryable(err), ctx.Err() != nil:
		// The dead-letter produce (Kafka) or the database failed in a way
		// that passes: the consumer retries the batch.
		return kafka.SinkResult{}, err
	}
	return kafka.SinkResult{}, fmt.Errorf("%w: %w", kafka.ErrPermanent, err)
}
