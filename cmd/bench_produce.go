package cmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/foodpipe/foodpipe/pkg/bench"
	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/foodpipe/foodpipe/pkg/pipeline"
)

type benchProduceOptions struct {
	cluster  kafka.Cluster
	sandbox  pipeline.SandboxOptions
	producer config.KafkaProducer
	bench    config.Bench
	seed     int64
	// customers is how many mock customers generated orders come from.
	customers int
	output    string
	log       *slog.Logger
	stderr    io.Writer
}

func newBenchProduceCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "produce",
		Short: "Measure producer throughput and latency, like kafka-producer-perf-test",
		Long: `Produce --records records (after --warmup-records) to a new topic and measure
throughput and per-record latency (acknowledgement time − send time, every record
in an HDR histogram). Every 5 s and at the end it prints the line
kafka-producer-perf-test prints. Payloads are generated orders keyed by customer,
or with --record-size random bytes without a key, as the Kafka tool sends them.
The result is checked against the topic's offset growth, and the process's CPU
time is reported per million records.`,
		Example: `  foodpipe bench produce --records 1000000
  foodpipe bench produce --records 500000 --record-size 512 --throughput 100000 --output json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := app.load(c)
			if err != nil {
				return err
			}
			return runBenchProduce(c.Context(), app.Stdout, benchProduceOptionsFrom(app, e))
		},
	}
	config.AddFlags(c.Flags(), "records", "throughput", "warmup-records", "record-size", "keep", "partitions",
		"seed", "acks", "compression", "linger", "producer-batch-bytes", "max-buffered-records", "delivery-timeout", "output")
	return c
}

func benchProduceOptionsFrom(app *App, e *env) benchProduceOptions {
	cfg := e.cfg
	return benchProduceOptions{
		cluster:   app.kafkaCluster(e),
		sandbox:   pipeline.SandboxOptions{Topics: cfg.Topics, Keep: cfg.Bench.Keep},
		producer:  cfg.KafkaProducer,
		bench:     cfg.Bench,
		seed:      cfg.Generator.Seed,
		customers: cfg.Generator.Customers,
		output:    cfg.Output,
		log:       e.log,
		stderr:    app.Stderr,
	}
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

// payload is what bench produce sends: generated orders, or random bytes of
// --record-size as kafka-producer-perf-test sends them.
func (o benchProduceOptions) payload() (bench.Payload, map[string]string, string, error) {
	if o.bench.RecordSize > 0 {
		return bench.NewRandom(o.bench.RecordSize, uint64(o.seed)), nil, "random bytes", nil
	}
	gen, err := pipeline.NewGenerator(o.seed, o.customers)
	if err != nil {
		return nil, nil, "", err
	}
	return bench.NewOrders(gen), order.WireHeaders, "orders", nil
}

func runBenchProduce(ctx context.Context, out io.Writer, o benchProduceOptions) error {
	sb, err := pipeline.NewSandbox(ctx, o.cluster, pipeline.SandboxName(time.Now()), o.sandbox)
	if err != nil {
		return err
	}
	defer sb.Close()
	payload, headers, kind, err := o.payload()
	if err != nil {
		return err
	}
	rec := bench.NewRecorder(time.Now)
	var lastErr atomic.Pointer[error] // why the last failed record failed
	p, err := kafka.NewProducer(ctx, o.cluster, o.producer, kafka.ProducerOptions{
		Topic: sb.Topic, Headers: headers, Latency: true,
		OnDelivery: func(d kafka.Delivery) {
			rec.Delivered(d.SentAt, d.Latency, len(d.Value), d.Err)
			if d.Err != nil {
				lastErr.Store(&d.Err)
			}
			payload.Release(d.Value)
		},
	})
	if err != nil {
		return err
	}
	bar := newBar(o.stderr, o.bench.WarmupRecords+o.bench.Records, "producing")
	o.log.Info("bench produce", "topic", sb.Topic, "records", o.bench.Records, "warmup_records", o.bench.WarmupRecords,
		"throughput", o.bench.Throughput, "payload", kind)
	report, err := bench.RunProduce(ctx, p, payload, rec, bench.ProduceOptions{
		Records: o.bench.Records, Warmup: o.bench.WarmupRecords, Pace: pipeline.Pacer(o.bench.Throughput),
		Window: 5 * time.Second,
		OnWindow: func(r bench.ProduceReport) {
			bar.clear()
			fmt.Fprintln(o.stderr, r.KafkaLine())
		},
		Sent: bar.set,
	})
	p.Close()
	bar.finish()
	if err != nil {
		return err
	}
	end, err := sb.Admin.EndOffsets(ctx, sb.Topic)
	if err != nil {
		return err
	}
	res := benchProduceResult{
		ProduceReport: report,
		Warmup:        rec.Warmup(),
		Topic:         sb.Topic,
		Settings: benchSettings{Acks: o.producer.Acks, Compression: o.producer.Compression,
			LingerMS: o.producer.Linger.Milliseconds(), BatchBytes: o.producer.BatchMaxBytes,
			RecordSize: o.bench.RecordSize, Payload: kind},
		Machine: machine(ctx, sb.Admin, nil),
	}
	for _, n := range end {
		res.TopicRecords += n
	}
	if err := writeResult(out, o.output, res, func(w io.Writer) error { return printBenchProduce(w, res) }); err != nil {
		return err
	}
	if report.Failed > 0 {
		return fmt.Errorf("%d records not delivered (the last: %v)", report.Failed, *lastErr.Load())
	}
	return nil
}

func printBenchProduce(w io.Writer, r benchProduceResult) error {
	s := r.Settings
	fmt.Fprintln(w, r.KafkaLine())
	fmt.Fprintf(w, "payload: %s, acks=%s, compression=%s, linger=%dms, batch bytes=%d; warmup records: %d\n",
		s.Payload, s.Acks, s.Compression, s.LingerMS, s.BatchBytes, r.Warmup)
	fmt.Fprintf(w, "cpu: %.2f s of this process per million records (user %.2f s + system %.2f s in all)\n",
		r.CPU.SecondsPerMillion, r.CPU.UserSeconds, r.CPU.SystemSeconds)
	fmt.Fprintf(w, "check: the topic grew by %d records (%d measured + %d warmup + %d failed)\n",
		r.TopicRecords, r.Records, r.Warmup, r.Failed)
	printMachine(w, r.Machine)
	return nil
}
