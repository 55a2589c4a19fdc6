package cmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/foodpipe/foodpipe/pkg/bench"
	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/pipeline"
)

type produceOptions struct {
	cluster     kafka.Cluster
	metricsAddr string
	producer    config.KafkaProducer
	topic       string
	seed        int64
	customers   int
	produce     pipeline.ProduceOptions
	output      string
	log         *slog.Logger
}

func newProduceCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "produce",
		Short: "Generate mock orders and produce them to Kafka",
		Long: `Generate mock food orders and produce them to the orders topic, keyed by
customer_id, paced at --rate orders per second. An order counts as produced
only when the broker acknowledged it (acks=all, idempotent).

The first SIGINT/SIGTERM stops generating, waits up to --flush-timeout for the
orders in flight, prints the summary and exits 0 if every order was
acknowledged; a second signal exits at once. Progress goes to stderr every
--progress-interval, the summary to stdout.`,
		Example: `  foodpipe produce --rate 100
  foodpipe produce --count 10000 --rate 0 --output json
  foodpipe produce --rate 200 --duration 10s --seed 7`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := app.load(c)
			if err != nil {
				return err
			}
			return runProduce(c.Context(), app.Stdout, produceOptionsFrom(app, e))
		},
	}
	config.AddFlags(c.Flags(), "rate", "count", "duration", "seed", "customers",
		"acks", "compression", "linger", "producer-batch-bytes", "max-buffered-records",
		"delivery-timeout", "flush-timeout", "progress-interval", "metrics-addr", "output")
	return c
}

func produceOptionsFrom(app *App, e *env) produceOptions {
	cfg := e.cfg
	return produceOptions{
		cluster:     app.kafkaCluster(e),
		metricsAddr: cfg.Log.MetricsAddr,
		producer:    cfg.KafkaProducer,
		topic:       cfg.Kafka.Topic,
		seed:        cfg.Generator.Seed,
		customers:   cfg.Generator.Customers,
		produce: pipeline.ProduceOptions{
			Rate:             cfg.Generator.Rate,
			Count:            cfg.Generator.Count,
			Duration:         cfg.Generator.Duration,
			FlushTimeout:     cfg.KafkaProducer.FlushTimeout,
			ProgressInterval: cfg.Log.ProgressInterval,
		},
		output: cfg.Output,
		log:    e.log,
	}
}

// produceResult is the summary of produce, in text or JSON.
type produceResult struct {
	Topic           string          `json:"topic"`
	Produced        int64           `json:"produced"`
	Failed          int64           `json:"failed"`
	DurationSeconds float64         `json:"duration_seconds"`
	RatePerSecond   float64         `json:"rate_per_second"`
	TargetRate      float64         `json:"target_rate"`
	Stopped         string          `json:"stopped"`
	Partitions      map[int32]int64 `json:"partitions"`
	// Acks says what "produced" means: acknowledged by all in-sync
	// replicas, by the leader, or (none) only sent.
	Acks string `json:"acks"`
}

func runProduce(ctx context.Context, out io.Writer, opts produceOptions) error {
	gen, err := pipeline.NewGenerator(opts.seed, opts.customers)
	if err != nil {
		return err
	}
	m, stopMetrics, err := serveMetrics(ctx, opts.metricsAddr, opts.log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	if m != nil {
		opts.cluster.Metrics = m.Registry
		opts.produce.Observer = m
	}
	opts.produce.Started = func() {
		opts.log.Info("producing", "topic", opts.topic, "rate", opts.produce.Rate, "count", opts.produce.Count,
			"duration", opts.produce.Duration, "seed", opts.seed, "customers", opts.customers, "generator", gen.InstanceID())
	}

	var last pipeline.ProduceStats
	opts.produce.Progress = func(s pipeline.ProduceStats) {
		opts.log.Info("progress", "produced", s.Produced, "failed", s.Failed, "rate_target", opts.produce.Rate,
			"rate_actual", perSecond(s.Produced-last.Produced, s.Elapsed-last.Elapsed))
		last = s
	}
	stats, err := pipeline.ProduceOrders(ctx, opts.cluster, opts.producer, opts.topic, gen, opts.produce)
	if stats.Elapsed == 0 {
		return err // never started: Kafka unreachable
	}
	res := produceResult{
		Topic:           opts.topic,
		Produced:        stats.Produced,
		Failed:          stats.Failed,
		DurationSeconds: bench.Round3(stats.Elapsed.Seconds()),
		RatePerSecond:   bench.Round1(float64(stats.Produced) / stats.Elapsed.Seconds()),
		TargetRate:      opts.produce.Rate,
		Stopped:         stats.Stopped,
		Partitions:      stats.Partitions,
		Acks:            opts.producer.Acks,
	}
	if werr := writeResult(out, opts.output, res, func(w io.Writer) error { return printProduce(w, res) }); werr != nil {
		return werr
	}
	return err
}

func printProduce(w io.Writer, r produceResult) error {
	tw := table(w)
	target := "as fast as possible"
	if r.TargetRate > 0 {
		target = fmt.Sprintf("%g orders/s", r.TargetRate)
	}
	fmt.Fprintf(tw, "topic\t%s\n", r.Topic)
	fmt.Fprintf(tw, "produced\t%d orders (%s)\n", r.Produced, producedMeans(r.Acks))
	fmt.Fprintf(tw, "failed\t%d\n", r.Failed)
	fmt.Fprintf(tw, "duration\t%s\n", time.Duration(r.DurationSeconds*float64(time.Second)).Round(time.Millisecond))
	fmt.Fprintf(tw, "rate\t%.1f orders/s (target: %s)\n", r.RatePerSecond, target)
	fmt.Fprintf(tw, "stopped by\t%s\n", r.Stopped)
	for _, p := range slices.Sorted(maps.Keys(r.Partitions)) {
		fmt.Fprintf(tw, "partition %d\t%d orders\n", p, r.Partitions[p])
	}
	return tw.Flush()
}

// producedMeans says which orders count as produced under acks.
func producedMeans(acks string) string {
	switch acks {
	case "leader":
		return "acknowledged by the partition leader: acks=leader"
	case "none":
		return "sent, none confirmed: acks=none asks the broker for no acknowledgement"
	}
	return "acknowledged by the broker"
}

// perSecond is n over d, to one decimal; 0 for no time.
func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return bench.Round1(float64(n) / d.Seconds())
}
