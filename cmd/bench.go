package cmd

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	mrand "math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/foodpipe/foodpipe/pkg/bench"
	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/foodpipe/foodpipe/pkg/pipeline"
	"github.com/foodpipe/foodpipe/pkg/store"
)

func newBenchCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput and latency: produce, sink, end to end",
		Long: `Measure foodpipe on your Kafka and PostgreSQL. Every mode creates its own
uniquely named topic (and schema) and removes them afterwards unless --keep is
given, and prints the machine facts with the result.

  bench produce   producer throughput and ack latency, like kafka-producer-perf-test
  bench sink      drain a backlog into PostgreSQL, next to a raw COPY ceiling
  bench e2e       produce and consume at once; latency = processed_at − created_at`,
	}
	groupCmd(c)
	c.AddCommand(newBenchProduceCmd(app), newBenchSinkCmd(app), newBenchE2ECmd(app))
	return c
}

// benchEnv is what every bench mode needs.
type benchEnv struct {
	cfg        *config.Config
	cluster    kafka.Cluster
	log        *slog.Logger
	stderr     io.Writer
	migrations fs.FS
	name       string // unique name of this run's topic and schema
}

func (a *App) benchEnv(c *cobra.Command) (*benchEnv, error) {
	e, err := a.load(c)
	if err != nil {
		return nil, err
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return &benchEnv{
		cfg:        e.cfg,
		cluster:    a.kafkaCluster(e),
		log:        e.log,
		stderr:     a.Stderr,
		migrations: a.Migrations,
		name:       "foodpipe-bench-" + time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:]),
	}, nil
}

// topic creates the run's topic (and its dead-letter topic when dlq) and
// returns a cleanup that deletes them unless --keep.
func (b *benchEnv) topic(ctx context.Context, admin *kafka.Admin, dlq bool) (string, func(), error) {
	k := b.cfg.Kafka
	k.Topic, k.DLQTopic = b.name, ""
	specs := kafka.Specs(k, b.cfg.Topics)
	if !dlq {
		specs = specs[:1]
	}
	if _, err := admin.EnsureTopics(ctx, specs, false); err != nil {
		return "", nil, err
	}
	names := []string{specs[0].Name}
	if dlq {
		names = append(names, specs[1].Name)
	}
	return b.name, func() {
		if b.cfg.Bench.Keep {
			b.log.Info("kept bench topics", "topics", names)
			return
		}
		if err := admin.DeleteTopics(context.WithoutCancel(ctx), names...); err != nil {
			b.log.Warn("could not delete bench topics", "topics", names, "err", err)
		}
	}, nil
}

// schema creates the run's schema, migrates it and returns a pool on it and
// a cleanup that drops it unless --keep.
func (b *benchEnv) schema(ctx context.Context) (*store.DB, func(), error) {
	name := strings.ReplaceAll(b.name, "-", "_")
	root, err := store.Open(ctx, b.cfg.Postgres, store.Options{AppName: "foodpipe bench", MaxConns: 1}, b.log)
	if err != nil {
		return nil, nil, err
	}
	if err := root.CreateSchema(ctx, name); err != nil {
		root.Close()
		return nil, nil, err
	}
	cleanup := func() {
		defer root.Close()
		if b.cfg.Bench.Keep {
			b.log.Info("kept bench schema", "schema", name)
			return
		}
		if err := root.DropSchema(context.WithoutCancel(ctx), name); err != nil {
			b.log.Warn("could not drop bench schema", "schema", name, "err", err)
		}
	}
	db, err := store.Open(ctx, b.cfg.Postgres, store.Options{AppName: "foodpipe bench", Schema: name}, b.log)
	if err == nil {
		_, err = db.Migrate(ctx, b.migrations)
		if err != nil {
			db.Close()
		}
	}
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return db, func() { db.Close(); cleanup() }, nil
}

// pipeline sets up what sink and e2e need: an admin client, a migrated
// schema and the topic with its dead-letter topic. cleanup undoes it all.
func (b *benchEnv) pipeline(ctx context.Context) (admin *kafka.Admin, db *store.DB, topic string, cleanup func(), err error) {
	admin, err = kafka.NewAdmin(ctx, b.cluster)
	if err != nil {
		return nil, nil, "", nil, err
	}
	db, dropSchema, err := b.schema(ctx)
	if err != nil {
		admin.Close()
		return nil, nil, "", nil, err
	}
	topic, deleteTopics, err := b.topic(ctx, admin, true)
	if err != nil {
		dropSchema()
		admin.Close()
		return nil, nil, "", nil, err
	}
	return admin, db, topic, func() {
		deleteTopics()
		dropSchema()
		admin.Close()
	}, nil
}

func (b *benchEnv) facts(ctx context.Context, admin *kafka.Admin, db *store.DB) bench.Machine {
	m := bench.Facts()
	m.Kafka = admin.BrokerVersion(ctx)
	if db != nil {
		if v, err := db.ServerVersion(ctx); err == nil {
			m.Postgres = v
		}
	}
	return m
}

func printMachine(w io.Writer, m bench.Machine) {
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s, %s", m.CPUs, m.CPUModel, m.OS, m.Go)
	if m.Kafka != "" {
		fmt.Fprintf(w, ", Kafka %s", m.Kafka)
	}
	if m.Postgres != "" {
		fmt.Fprintf(w, ", PostgreSQL %s", m.Postgres)
	}
	fmt.Fprintln(w)
}

// ---------------------------------------------------------------- produce

func newBenchProduceCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "produce",
		Short: "Measure producer throughput and latency, like kafka-producer-perf-test",
		Long: `Produce --records records (after --warmup-records) to a new topic and measure
throughput and per-record latency (acknowledgement time − send time, every record
in an HDR histogram). Every 5 s and at the end it prints the line
kafka-producer-perf-test prints. Payloads are generated orders keyed by customer,
or with --record-size random bytes without a key, as the Kafka tool sends them.
The result is checked against the topic's offset growth.`,
		Example: `  foodpipe bench produce --records 1000000
  foodpipe bench produce --records 500000 --record-size 512 --throughput 100000 --output json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			b, err := app.benchEnv(c)
			if err != nil {
				return err
			}
			return runBenchProduce(c.Context(), app.Stdout, b)
		},
	}
	config.AddFlags(c.Flags(), "records", "throughput", "warmup-records", "record-size", "keep", "partitions",
		"seed", "acks", "compression", "linger", "producer-batch-bytes", "max-buffered-records", "delivery-timeout", "output")
	return c
}

// benchProduceResult is bench produce's result.
type benchProduceResult struct {
	bench.ProduceReport
	Warmup int64 `json:"warmup_records"`
	// TopicRecords is the growth of the topic's end offsets: an independent
	// count of what the broker holds.
	TopicRecords int64         `json:"topic_records"`
	Topic        string        `json:"topic"`
	Settings     benchSettings `json:"settings"`
	Machine      bench.Machine `json:"machine"`
}

type benchSettings struct {
	Acks        string `json:"acks"`
	Compression string `json:"compression"`
	LingerMS    int64  `json:"linger_ms"`
	BatchBytes  int    `json:"batch_bytes"`
	RecordSize  int    `json:"record_size"`
	Payload     string `json:"payload"`
}

func runBenchProduce(ctx context.Context, out io.Writer, b *benchEnv) error {
	cfg := b.cfg
	admin, err := kafka.NewAdmin(ctx, b.cluster)
	if err != nil {
		return err
	}
	defer admin.Close()
	topic, cleanup, err := b.topic(ctx, admin, false)
	if err != nil {
		return err
	}
	defer cleanup()

	var payload bench.Payload
	var headers map[string]string
	kind := "orders"
	if cfg.Bench.RecordSize > 0 {
		payload = bench.NewRandom(cfg.Bench.RecordSize, mrand.New(mrand.NewPCG(uint64(cfg.Generator.Seed), 0)))
		kind = "random bytes"
	} else {
		gen, err := newGenerator(cfg.Generator.Seed, cfg.Generator.Customers)
		if err != nil {
			return err
		}
		payload, headers = bench.NewOrders(gen), order.WireHeaders
	}

	rec := bench.NewRecorder(time.Now)
	p, err := kafka.NewProducer(ctx, b.cluster, cfg.KafkaProducer, kafka.ProducerOptions{
		Topic: topic, Headers: headers,
		OnDelivery: func(d kafka.Delivery) {
			rec.Delivered(d.SentAt, len(d.Value), d.Err)
			payload.Release(d.Value)
		},
	})
	if err != nil {
		return err
	}
	total := cfg.Bench.WarmupRecords + cfg.Bench.Records
	bar := newBar(b.stderr, total, "producing")
	b.log.Info("bench produce", "topic", topic, "records", cfg.Bench.Records, "warmup_records", cfg.Bench.WarmupRecords,
		"throughput", cfg.Bench.Throughput, "payload", kind)
	report, err := bench.RunProduce(ctx, p, payload, rec, bench.ProduceOptions{
		Records: cfg.Bench.Records, Warmup: cfg.Bench.WarmupRecords, Pace: pipeline.Pacer(cfg.Bench.Throughput),
		Window: 5 * time.Second,
		OnWindow: func(r bench.ProduceReport) {
			bar.clear()
			fmt.Fprintln(b.stderr, r.KafkaLine())
		},
		Sent: bar.set,
	})
	p.Close()
	bar.finish()
	if err != nil {
		return err
	}
	end, err := admin.EndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	res := benchProduceResult{
		ProduceReport: report,
		Warmup:        rec.Warmup(),
		Topic:         topic,
		Settings: benchSettings{Acks: cfg.KafkaProducer.Acks, Compression: cfg.KafkaProducer.Compression,
			LingerMS: cfg.KafkaProducer.Linger.Milliseconds(), BatchBytes: cfg.KafkaProducer.BatchMaxBytes,
			RecordSize: cfg.Bench.RecordSize, Payload: kind},
		Machine: b.facts(ctx, admin, nil),
	}
	for _, o := range end {
		res.TopicRecords += o
	}
	if err := writeResult(out, cfg.Output, res, func(w io.Writer) error {
		fmt.Fprintln(w, report.KafkaLine())
		fmt.Fprintf(w, "payload: %s, acks=%s, compression=%s, linger=%s, batch bytes=%d; warmup records: %d\n",
			kind, cfg.KafkaProducer.Acks, cfg.KafkaProducer.Compression, cfg.KafkaProducer.Linger, cfg.KafkaProducer.BatchMaxBytes, res.Warmup)
		fmt.Fprintf(w, "check: the topic grew by %d records (%d measured + %d warmup + %d failed)\n",
			res.TopicRecords, report.Records, res.Warmup, report.Failed)
		printMachine(w, res.Machine)
		return nil
	}); err != nil {
		return err
	}
	if report.Failed > 0 {
		return fmt.Errorf("%d records not delivered", report.Failed)
	}
	return nil
}

// ---------------------------------------------------------------- sink

func newBenchSinkCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "sink",
		Short: "Measure the PostgreSQL sink against a raw COPY of the same rows",
		Long: `Produce a backlog of --records orders to a new topic, drain it with the real
consume path into a new schema (the SPEC's tables and indexes), then COPY the same
rows into an identical empty table with no Kafka involved: the ceiling. Reports
rows/s of both and their ratio, batches and average batch size, and checks the
row count with SELECT count(*). Rates leave out the group join, reported apart.`,
		Example: `  foodpipe bench sink --records 200000
  foodpipe bench sink --records 1000000 --batch-rows 10000 --output json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			b, err := app.benchEnv(c)
			if err != nil {
				return err
			}
			return runBenchSink(c.Context(), app.Stdout, b)
		},
	}
	config.AddFlags(c.Flags(), "records", "keep", "partitions", "seed", "group", "batch-rows", "batch-bytes",
		"fetch-max-bytes", "output")
	return c
}

// replayable returns a generator whose orders are the same, ids and times
// included, every time it is built with the same seed and start: the sink
// bench produces the backlog with one and feeds the raw COPY with another.
func replayable(seed int64, start time.Time) (*order.Generator, error) {
	var tick atomic.Int64
	ids := make([]byte, 16)
	binary.BigEndian.PutUint64(ids, uint64(seed))
	binary.BigEndian.PutUint64(ids[8:], uint64(start.UnixNano()))
	return order.NewGenerator(order.GeneratorConfig{
		Seed:     uint64(seed),
		Now:      func() time.Time { return start.Add(time.Duration(tick.Add(1)) * time.Microsecond) },
		Names:    fakerNames,
		IDSource: strings.NewReader(string(ids)),
	})
}

func runBenchSink(ctx context.Context, out io.Writer, b *benchEnv) error {
	cfg := b.cfg
	admin, db, topic, cleanup, err := b.pipeline(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := db.CreateOrdersLike(ctx, "orders_raw"); err != nil {
		return err
	}

	start := time.Now().UTC()
	n := cfg.Bench.Records
	opts := pipelineOptions(cfg)
	opts.Topic, opts.DLQTopic, opts.Group = topic, topic+".dlq", b.name
	opts.ProgressInterval = 0
	var bar *bar
	steps := bench.SinkSteps{
		Backlog: func(ctx context.Context, n int64) error {
			gen, err := replayable(cfg.Generator.Seed, start)
			if err != nil {
				return err
			}
			_, err = pipeline.ProduceOrders(ctx, b.cluster, cfg.KafkaProducer, topic, gen,
				pipeline.ProduceOptions{Count: n, FlushTimeout: time.Minute})
			return err
		},
		Drain: func(ctx context.Context) (bench.Drained, error) {
			end, err := admin.EndOffsets(ctx, topic)
			if err != nil {
				return bench.Drained{}, err
			}
			opts.Until = pipeline.CaughtUp(end)
			bar = newBar(b.stderr, n, "draining")
			opts.ProgressInterval = 200 * time.Millisecond
			opts.Progress = func(s pipeline.Stats) { bar.set(s.Stored) }
			s, err := pipeline.Consume(ctx, b.cluster, db, opts)
			bar.finish()
			if err == nil && ctx.Err() != nil {
				err = ctx.Err()
			}
			return bench.Drained{Rows: s.Stored, Batches: s.Batches, Join: s.FirstRecords, Write: s.LastCommit - s.FirstRecords}, err
		},
		CountStored: db.CountOrders,
		RawCopy: func(ctx context.Context, n int64) (int64, error) {
			gen, err := replayable(cfg.Generator.Seed, start)
			if err != nil {
				return 0, err
			}
			var o order.Order
			i := int64(0)
			return db.RawCopyFunc(ctx, "orders_raw", func() *order.Order {
				if i == n {
					return nil
				}
				i++
				gen.Next(&o)
				return &o
			})
		},
	}
	b.log.Info("bench sink", "topic", topic, "records", n, "batch_rows", opts.BatchRows, "batch_bytes", opts.BatchBytes)
	report, err := bench.RunSink(ctx, n, steps, func(s string) { b.log.Info(s) })
	if err != nil {
		return err
	}
	report.Machine = b.facts(ctx, admin, db)
	if err := writeResult(out, cfg.Output, report, func(w io.Writer) error {
		tw := table(w)
		fmt.Fprintf(tw, "sink\t%d rows in %.2fs: %.0f rows/s\t(%d batches, %.0f rows on average; group join %.2fs not counted)\n",
			report.Rows, report.Seconds, report.RowsPerSec, report.Batches, report.AvgBatch, report.JoinSeconds)
		fmt.Fprintf(tw, "raw COPY\t%d rows in %.2fs: %.0f rows/s\t(same rows, identical empty table, one COPY, no Kafka)\n",
			report.RawRowsCopied, report.RawSeconds, report.RawRowsPerSec)
		fmt.Fprintf(tw, "ratio\t%.3f of the raw COPY ceiling\t\n", report.RatioToRawCopy)
		fmt.Fprintf(tw, "check\tSELECT count(*) = %d\t\n", report.RowsCounted)
		if err := tw.Flush(); err != nil {
			return err
		}
		printMachine(w, report.Machine)
		return nil
	}); err != nil {
		return err
	}
	if report.RowsCounted != n || report.Rows != n {
		return fmt.Errorf("stored %d rows and counted %d, want %d", report.Rows, report.RowsCounted, n)
	}
	return nil
}

// ---------------------------------------------------------------- e2e

func newBenchE2ECmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "e2e",
		Short: "Measure end-to-end latency: produce and consume at once",
		Long: `Produce orders at --rate for --duration to a new topic while consuming them into
a new schema. End-to-end latency is processed_at − created_at of every stored row,
read back from PostgreSQL, so the database is the witness. processed_at is the
start of the row's transaction. Reports avg/p50/p95/p99/p99.9/max, achieved rates
and the largest consumer lag seen.`,
		Example: `  foodpipe bench e2e --rate 1000 --duration 60s`,
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			b, err := app.benchEnv(c)
			if err != nil {
				return err
			}
			if b.cfg.Generator.Duration <= 0 || b.cfg.Generator.Rate <= 0 {
				return usage(errors.New("bench e2e needs a --rate and a --duration, e.g. --rate 1000 --duration 60s"))
			}
			return runBenchE2E(c.Context(), app.Stdout, b)
		},
	}
	config.AddFlags(c.Flags(), "rate", "duration", "keep", "partitions", "seed", "customers", "batch-rows", "batch-bytes",
		"fetch-max-bytes", "linger", "output")
	return c
}

func runBenchE2E(ctx context.Context, out io.Writer, b *benchEnv) error {
	cfg := b.cfg
	admin, db, topic, cleanup, err := b.pipeline(ctx)
	if err != nil {
		return err
	}
	defer cleanup()

	opts := pipelineOptions(cfg)
	opts.Topic, opts.DLQTopic, opts.Group = topic, topic+".dlq", b.name
	opts.ProgressInterval = 0
	bar := newBar(b.stderr, int64(cfg.Generator.Duration/time.Second), "seconds")
	steps := bench.E2ESteps{
		Produce: func(ctx context.Context) (int64, error) {
			gen, err := newGenerator(cfg.Generator.Seed, cfg.Generator.Customers)
			if err != nil {
				return 0, err
			}
			start := time.Now()
			s, err := pipeline.ProduceOrders(ctx, b.cluster, cfg.KafkaProducer, topic, gen, pipeline.ProduceOptions{
				Rate: cfg.Generator.Rate, Duration: cfg.Generator.Duration, FlushTimeout: cfg.KafkaProducer.FlushTimeout,
				ProgressInterval: time.Second,
				Progress:         func(pipeline.ProduceStats) { bar.set(int64(time.Since(start) / time.Second)) },
			})
			bar.finish()
			return s.Produced, err
		},
		Consume: func(ctx context.Context, stop <-chan struct{}) (int64, int64, error) {
			var end map[int32]int64
			opts.Until = func(stored map[int32]int64) bool {
				select {
				case <-stop:
				default:
					return false
				}
				if end == nil {
					var err error
					if end, err = admin.EndOffsets(ctx, topic); err != nil {
						return false
					}
				}
				return pipeline.CaughtUp(end)(stored)
			}
			s, err := pipeline.Consume(ctx, b.cluster, db, opts)
			return s.Stored, s.MaxLag, err
		},
		Latencies: db.Latencies,
	}
	b.log.Info("bench e2e", "topic", topic, "rate", cfg.Generator.Rate, "duration", cfg.Generator.Duration)
	report, err := bench.RunE2E(ctx, cfg.Generator.Rate, cfg.Generator.Duration, steps, func(s string) { b.log.Info(s) })
	if err != nil {
		return err
	}
	report.Machine = b.facts(ctx, admin, db)
	return writeResult(out, cfg.Output, report, func(w io.Writer) error {
		l := report.Latency
		fmt.Fprintf(w, "end-to-end latency (processed_at − created_at, %d rows): avg %.2f ms, p50 %.2f ms, p95 %.2f ms, "+
			"p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n", report.LatencyCount, l.Avg, l.P50, l.P95, l.P99, l.P999, l.Max)
		fmt.Fprintf(w, "produced %d orders (%.1f/s, target %g/s), stored %d (%.1f/s), max consumer lag %d records\n",
			report.Produced, report.ProducedPerSec, report.Rate, report.Stored, report.StoredPerSec, report.MaxLag)
		printMachine(w, report.Machine)
		return nil
	})
}
