package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/store"
)

// DemoOptions configure a demo. By default it runs its own services: an
// in-process Kafka broker and an embedded PostgreSQL. Given real ones
// (RealKafka, Postgres) it works in a topic and a schema of its own there.
type DemoOptions struct {
	ClientID string
	Log      *slog.Logger
	// Kafka names the topics and, with RealKafka, the cluster and how to
	// reach it; Topics shapes the topics, as topics init would.
	Kafka     config.Kafka
	RealKafka bool
	Topics    config.Topics
	// Producer tunes the producer; Seed and Customers shape the orders.
	Producer  config.KafkaProducer
	Seed      int64
	Customers int
	Rate      float64
	Duration  time.Duration
	// Consume is the template of the consumers' options; the demo sets
	// their topics, group and callbacks.
	Consume   Options
	Consumers int
	// Postgres, when set, is a server of the user's: the demo works in a
	// schema of its own there. Otherwise Embedded says how to start an
	// embedded one.
	Postgres   *config.Postgres
	Embedded   store.EmbeddedOptions
	Migrations fs.FS
	// Keep leaves the real services' topic and schema in place at Close.
	Keep bool
	// AtHardStop, when set, registers a quick step to run if the process
	// ends at once (a second signal) before Close: the embedded PostgreSQL
	// is shut down immediately and removed, and what is left on the real
	// services is named in the log. The returned func unregisters it.
	AtHardStop func(func()) (remove func())
	// Step is told of each start-up step, for the person waiting.
	Step func(string)
	// View is called every ViewInterval, and once at the end, with where
	// the run stands.
	ViewInterval time.Duration
	View         func(DemoView)
	// TrimInterval is how often the broker's records below what
	// PostgreSQL holds are deleted, which bounds its memory.
	TrimInterval time.Duration
	// MaxBacklog bounds the orders the in-process broker holds that
	// PostgreSQL does not: the producer waits while that many are (read
	// every TrimInterval). 0, or a real Kafka: no bound.
	MaxBacklog int64
	// DrainTimeout bounds the wait for the consumers to store the last
	// orders once producing ended; StopDrainTimeout the same wait after a
	// signal stopped producing.
	DrainTimeout     time.Duration
	StopDrainTimeout time.Duration
	// PoisonAfter is when the poison records are produced: a third of the
	// duration, or this long into a run without one.
	PoisonAfter time.Duration
	// Observer, when set, is told what the producer and each consumer do
	// (pkg/metrics), and KafkaMetrics gets the Kafka clients' series.
	Observer     DemoObserver
	KafkaMetrics prometheus.Registerer
}

// DemoObserver is told what the members of a demo do: the producer's
// deliveries, each consumer's work by its name, and the database pool.
type DemoObserver interface {
	ProduceObserver
	Member(consumer string) Observer
	WatchPool(stats func() store.PoolStats)
}

// DemoView is where a demo run stands.
type DemoView struct {
	Elapsed  time.Duration
	Duration time.Duration
	// Phase is "producing", "draining" (storing the last orders) or "done".
	Phase string
	// Produced counts the orders the broker acknowledged, Failed those it
	// did not; Poisoned the poison records acknowledged so far.
	Produced  int64
	Failed    int64
	Poisoned  int
	Consumers []ConsumerView
}

// ConsumerView is one consumer of the demo's group.
type ConsumerView struct {
	Name         string           `json:"name"`
	Partitions   []int32          `json:"partitions"`
	Stored       int64            `json:"stored"`
	Duplicates   int64            `json:"duplicates"`
	DeadLettered map[string]int64 `json:"dead_lettered"`
	Batches      int64            `json:"batches"`
	Lag          int64            `json:"lag"`
}

// Poison is a record the demo produced that cannot be stored, and what
// the consumers must do with it.
type Poison struct {
	Class     string `json:"class"`
	What      string `json:"what"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// DemoResult is what a demo run did and what the database answers.
type DemoResult struct {
	Topics   []kafka.TopicResult `json:"topics"`
	Brokers  []string            `json:"brokers"`
	Postgres string              `json:"postgres"`
	// StartupSeconds is how long the broker, PostgreSQL, the topics and
	// the schema took to be ready.
	StartupSeconds float64 `json:"startup_seconds"`
	// Downloaded says the PostgreSQL binaries were fetched by this run.
	Downloaded      bool    `json:"downloaded"`
	DurationSeconds float64 `json:"duration_seconds"`
	Stopped         string  `json:"stopped"`
	Group           string  `json:"group"`
	DLQTopic        string  `json:"dlq_topic"`
	// Produced counts every record the broker acknowledged: Orders plus
	// the Poison records. Failed counts orders not acknowledged.
	Produced  int64          `json:"produced"`
	Orders    int64          `json:"orders"`
	Failed    int64          `json:"failed"`
	Poison    []Poison       `json:"poison"`
	Consumers []ConsumerView `json:"consumers"`
	// Rows is count(*) of orders; DeadLetters the records of the
	// dead-letter topic. Checked: Produced == Rows + DeadLetters, Rows ==
	// Orders and DeadLetters == len(Poison).
	Rows        int64 `json:"rows"`
	DeadLetters int64 `json:"dead_letters"`
	// Trimmed is how many records of the orders topic the broker no longer
	// holds because PostgreSQL has them (what bounds the in-process
	// broker's memory).
	Trimmed int64 `json:"trimmed"`
	// Drained says every record produced was stored or dead-lettered
	// before the consumers stopped (a stop by signal may end the wait).
	Drained bool `json:"drained"`
	// Explore says how to reach the services while Close has not run.
	Explore       Explore             `json:"explore"`
	ByStatus      []store.StatusCount `json:"by_status"`
	TopItems      []store.ItemSales   `json:"top_items"`
	RevenueByHour []store.HourRevenue `json:"revenue_by_hour"`
}

// Explore is how to look at the demo's services yourself. DatabaseURL
// carries the embedded server's password (the demo's own, for a server on
// 127.0.0.1 that lives as long as the demo) but never the password of a
// server of the user's.
type Explore struct {
	Brokers     []string `json:"brokers"`
	Topic       string   `json:"topic"`
	DatabaseURL string   `json:"database_url"`
	Schema      string   `json:"schema,omitempty"`
}

// ErrNotExactlyOnce is returned when the database does not hold exactly
// the orders produced, or the dead-letter topic not exactly the poison.
var ErrNotExactlyOnce = errors.New("the demo's counts do not add up")

// Demo is the whole pipeline in one process: StartDemo sets up the
// services, Run runs it, Close stops and removes what it made.
type Demo struct {
	opts    DemoOptions
	cluster kafka.Cluster
	admin   *kafka.Admin
	db      *store.DB
	undo    []func()
	start   time.Time  // of StartDemo
	running time.Time  // of producing
	res     DemoResult // what setUp found

	backlog *backlog // nil: the producer is not held back

	// The producer's deliveries, counted as they come: the view's produced
	// is never behind the consumers' stored.
	acked, failed atomic.Int64

	mu        sync.Mutex
	phase     string
	poison    []Poison
	consumers []ConsumerView
}

// StartDemo starts the services (or reaches the real ones), creates the
// topics the way topics init does and migrates the schema the way db
// migrate does. On an error, what was started is stopped again.
func StartDemo(ctx context.Context, opts DemoOptions) (_ *Demo, err error) {
	d := &Demo{opts: opts, phase: "starting", consumers: make([]ConsumerView, opts.Consumers), start: time.Now()}
	if opts.MaxBacklog > 0 && !opts.RealKafka {
		d.backlog = newBacklog(opts.MaxBacklog, func() {
			opts.Log.Info("the consumers are behind: the producer waits while orders not stored yet fill the in-process broker's bound",
				"max_backlog", opts.MaxBacklog)
		})
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if err := d.setUp(ctx); err != nil {
		return nil, err
	}
	d.res.StartupSeconds = time.Since(d.start).Round(time.Millisecond).Seconds()
	opts.Log.Info("demo ready", "startup", time.Since(d.start).Round(time.Millisecond).String(),
		"brokers", d.res.Brokers, "postgres", d.res.Postgres)
	return d, nil
}

// Run produces at Rate for Duration, with a few poison records, while
// Consumers consumers in one group store the orders exactly once. When
// producing ends (Duration, or ctx cancelled by a signal) the consumers
// store what is left and stop; then the database is asked what it holds,
// and the counts are checked.
func (d *Demo) Run(ctx context.Context) (DemoResult, error) {
	res := d.res
	stats, drained, err := d.run(ctx)
	if err != nil {
		return res, err
	}
	res.Group, res.Stopped, res.Drained = d.opts.Consume.Group, stats.Stopped, drained
	res.Orders, res.Failed = stats.Produced, stats.Failed
	res.DurationSeconds = stats.Elapsed.Round(time.Millisecond).Seconds()
	d.mu.Lock()
	res.Poison, res.Consumers = append([]Poison(nil), d.poison...), append([]ConsumerView(nil), d.consumers...)
	d.mu.Unlock()
	res.Produced = res.Orders + int64(len(res.Poison))
	// Answer even after a signal: the database is still ours until Close.
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := d.answers(qctx, &res); err != nil {
		return res, err
	}
	if drained && (res.Rows != res.Orders || res.DeadLetters != int64(len(res.Poison))) {
		return res, fmt.Errorf("%w: %d records produced (%d orders, %d poison), %d rows stored, %d dead letters",
			ErrNotExactlyOnce, res.Produced, res.Orders, len(res.Poison), res.Rows, res.DeadLetters)
	}
	return res, nil
}

func (d *Demo) step(s string) {
	if d.opts.Step != nil {
		d.opts.Step(s)
	}
}

// Close stops the services the demo started and removes the topic and
// schema it made on real ones (unless Keep).
func (d *Demo) Close() {
	for i := len(d.undo) - 1; i >= 0; i-- {
		d.undo[i]()
	}
	d.undo = nil
}

// setUp starts the broker and PostgreSQL (or reaches the real ones) and
// makes the topics and the schema, the way topics init and db migrate do.
func (d *Demo) setUp(ctx context.Context) error {
	if err := d.kafka(ctx); err != nil {
		return err
	}
	pg, schema, err := d.postgres(ctx)
	if err != nil {
		return err
	}
	d.step("applying the schema")
	if d.db, err = store.Open(ctx, pg, store.Options{AppName: "foodpipe demo", Schema: schema}, d.opts.Log); err != nil {
		return err
	}
	d.undo = append(d.undo, d.db.Close)
	if d.opts.Observer != nil {
		d.opts.Observer.WatchPool(d.db.PoolStats)
	}
	d.res.Explore.DatabaseURL, d.res.Explore.Schema = pg.DatabaseURL, schema
	if schema != "" {
		// The user's server: its password is theirs, not the demo's to
		// print; psql asks for it or reads PGPASSWORD or ~/.pgpass.
		d.res.Explore.DatabaseURL = config.WithoutPasswords(pg.DatabaseURL)
	}
	_, err = d.db.Migrate(ctx, d.opts.Migrations)
	return err
}
