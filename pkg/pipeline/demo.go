package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/order"
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
	// Step is told of each start-up step, for the person waiting.
	Step func(string)
	// View is called every ViewInterval, and once at the end, with where
	// the run stands.
	ViewInterval time.Duration
	View         func(DemoView)
	// TrimInterval is how often the broker's records below what
	// PostgreSQL holds are deleted, which bounds its memory.
	TrimInterval time.Duration
	// DrainTimeout bounds the wait for the consumers to store the last
	// orders once producing ended; StopDrainTimeout the same wait after a
	// signal stopped producing.
	DrainTimeout     time.Duration
	StopDrainTimeout time.Duration
	// PoisonAfter is when the poison records are produced: a third of the
	// duration, or this long into a run without one.
	PoisonAfter time.Duration
}

// DemoView is where a demo run stands.
type DemoView struct {
	Elapsed  time.Duration
	Duration time.Duration
	// Phase is "producing", "draining" (storing the last orders) or "done".
	Phase     string
	Produced  int64
	Failed    int64
	Poisoned  int // poison records produced so far
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

// Explore is how to look at the demo's services yourself.
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

	mu        sync.Mutex
	phase     string
	produced  ProduceStats
	poison    []Poison
	consumers []ConsumerView
}

// StartDemo starts the services (or reaches the real ones), creates the
// topics the way topics init does and migrates the schema the way db
// migrate does. On an error, what was started is stopped again.
func StartDemo(ctx context.Context, opts DemoOptions) (_ *Demo, err error) {
	d := &Demo{opts: opts, phase: "starting", consumers: make([]ConsumerView, opts.Consumers), start: time.Now()}
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
	d.res.Explore.DatabaseURL, d.res.Explore.Schema = pg.DatabaseURL, schema
	_, err = d.db.Migrate(ctx, d.opts.Migrations)
	return err
}

// kafka starts the in-process broker, or reaches the real cluster and
// names a topic of the demo's own there, and creates the topics.
func (d *Demo) kafka(ctx context.Context) error {
	k := d.opts.Kafka
	if d.opts.RealKafka {
		// A topic of its own: the demo's counts are of its own records, and
		// it never writes into a topic that holds real orders.
		k.Topic, k.DLQTopic = demoName(time.Now(), "-"), ""
		d.opts.Consume.Group = k.Topic
	} else {
		d.step("starting the in-process Kafka broker")
		addrs, stopBroker, err := kafka.StartLocalBroker()
		if err != nil {
			return err
		}
		d.undo = append(d.undo, stopBroker)
		k.Brokers = addrs
	}
	d.opts.Kafka = k
	d.res.Brokers = k.Brokers
	d.res.Explore.Brokers, d.res.Explore.Topic = k.Brokers, k.Topic
	d.cluster = kafka.Cluster{Config: k, ClientID: d.opts.ClientID, Logger: d.opts.Log}
	var err error
	if d.admin, err = kafka.NewAdmin(ctx, d.cluster); err != nil {
		return err
	}
	d.undo = append(d.undo, d.admin.Close)
	specs := kafka.Specs(k, d.opts.Topics)
	if d.opts.RealKafka {
		d.undo = append(d.undo, func() {
			if d.opts.Keep {
				d.opts.Log.Info("kept the demo's topics", "topics", []string{k.Topic, k.DLQ()})
				return
			}
			if err := d.admin.DeleteTopics(context.WithoutCancel(ctx), k.Topic, k.DLQ()); err != nil {
				d.opts.Log.Warn("could not delete the demo's topics", "err", err)
			}
		})
	}
	d.step("creating the topics " + k.Topic + " and " + k.DLQ())
	d.res.Topics, err = d.admin.EnsureTopics(ctx, specs, false)
	return err
}

// demoName is a name unique to this run: foodpipe-demo-<time>-<random>,
// with sep between the words.
func demoName(now time.Time, sep string) string {
	return strings.ReplaceAll(strings.Replace(SandboxName(now), "foodpipe-bench-", "foodpipe-demo-", 1), "-", sep)
}

// postgres starts the embedded server, or makes a schema of the demo's own
// on the user's.
func (d *Demo) postgres(ctx context.Context) (config.Postgres, string, error) {
	if d.opts.Postgres == nil {
		d.step("starting the embedded PostgreSQL " + string(store.EmbeddedVersion) + " (the first run downloads it)")
		e, err := store.StartEmbedded(ctx, d.opts.Embedded)
		if err != nil {
			return config.Postgres{}, "", err
		}
		d.undo = append(d.undo, e.Stop)
		d.res.Postgres, d.res.Downloaded = "embedded PostgreSQL "+string(store.EmbeddedVersion)+", data in "+e.DataDir+" (removed at exit)", e.Downloaded
		return config.Postgres{DatabaseURL: e.URL, ConnectTimeout: 30 * time.Second}, "", nil
	}
	pg := *d.opts.Postgres
	schema := demoName(time.Now(), "_")
	root, err := store.Open(ctx, pg, store.Options{AppName: "foodpipe demo", MaxConns: 1}, d.opts.Log)
	if err != nil {
		return pg, "", err
	}
	d.undo = append(d.undo, root.Close)
	if err := root.CreateSchema(ctx, schema); err != nil {
		return pg, "", err
	}
	d.undo = append(d.undo, func() {
		if d.opts.Keep {
			d.opts.Log.Info("kept the demo's schema", "schema", schema)
			return
		}
		if err := root.DropSchema(context.WithoutCancel(ctx), schema); err != nil {
			d.opts.Log.Warn("could not drop the demo's schema", "schema", schema, "err", err)
		}
	})
	d.res.Postgres = "PostgreSQL at " + root.Addr() + ", schema " + schema
	return pg, schema, nil
}

// run produces, consumes and injects the poison, and returns once every
// consumer stopped. The consumers outlive a signal by a bounded drain, so
// that a stopped run still ends with every record it produced stored.
func (d *Demo) run(ctx context.Context) (stats ProduceStats, drained bool, err error) {
	d.mu.Lock()
	d.running = time.Now()
	d.mu.Unlock()
	consumeCtx, stopConsumers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsumers()
	var wg sync.WaitGroup
	errs := make([]error, d.opts.Consumers)
	for i := range d.opts.Consumers {
		wg.Go(func() { errs[i] = d.consume(consumeCtx, i) })
	}
	// Not consumeCtx: the last trim runs after the consumers stopped.
	stopTrim := every(d.opts.TrimInterval, func() { d.trim(context.WithoutCancel(ctx)) })
	stopView := every(d.opts.ViewInterval, d.view)
	defer stopView()

	poisoned := make(chan error, 1)
	go func() { poisoned <- d.injectPoison(ctx) }()
	stats, err = d.produce(ctx)
	if perr := <-poisoned; err == nil {
		err = perr
	}
	if err == nil {
		d.setPhase("draining")
		timeout := d.opts.DrainTimeout
		if ctx.Err() != nil {
			timeout = d.opts.StopDrainTimeout
		}
		drained, err = d.drain(consumeCtx, timeout, ctx.Err() != nil)
	}
	stopConsumers()
	wg.Wait()
	stopTrim()
	d.setPhase("done")
	if err != nil {
		return stats, false, err
	}
	return stats, drained, errors.Join(errs...)
}

func (d *Demo) setPhase(p string) {
	d.mu.Lock()
	d.phase = p
	d.mu.Unlock()
}

func (d *Demo) produce(ctx context.Context) (ProduceStats, error) {
	gen, err := NewGenerator(d.opts.Seed, d.opts.Customers)
	if err != nil {
		return ProduceStats{}, err
	}
	d.setPhase("producing")
	return ProduceOrders(ctx, d.cluster, d.opts.Producer, d.opts.Kafka.Topic, gen, ProduceOptions{
		Rate: d.opts.Rate, Duration: d.opts.Duration, FlushTimeout: d.opts.Producer.FlushTimeout,
		ProgressInterval: min(d.opts.ViewInterval, time.Second),
		Progress: func(s ProduceStats) {
			d.mu.Lock()
			d.produced = s
			d.mu.Unlock()
		},
	})
}

// consume runs consumer i of the group until ctx ends.
func (d *Demo) consume(ctx context.Context, i int) error {
	opts := d.opts.Consume
	opts.Topic, opts.DLQTopic = d.opts.Kafka.Topic, d.opts.Kafka.DLQ()
	opts.ProgressInterval = min(d.opts.ViewInterval, time.Second)
	name := fmt.Sprintf("consumer-%d", i+1)
	log := d.opts.Log.With("consumer", name)
	opts.Progress = func(s Stats) {
		d.mu.Lock()
		defer d.mu.Unlock()
		v := ConsumerView{Name: name, Partitions: s.Partitions, Stored: s.Stored, Duplicates: s.Duplicates,
			DeadLettered: s.DeadLettered, Batches: s.Batches, Lag: s.Lag}
		if len(v.Partitions) == 0 && ctx.Err() != nil {
			v.Partitions = d.consumers[i].Partitions // what it owned before it left the group
		}
		d.consumers[i] = v
	}
	d.mu.Lock()
	d.consumers[i] = ConsumerView{Name: name, DeadLettered: map[string]int64{}}
	d.mu.Unlock()
	cluster := d.cluster
	cluster.Logger = log
	_, err := Consume(ctx, cluster, d.db, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// trim deletes the broker's records that every consumer stored: the
// in-process broker keeps records in memory, and the stored offsets in
// PostgreSQL say which ones nobody needs again.
func (d *Demo) trim(ctx context.Context) {
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	stored, err := d.db.LoadOffsets(tctx, d.opts.Consume.Group, d.opts.Kafka.Topic)
	if err != nil {
		return
	}
	below := make(map[int32]int64, len(stored))
	for p, s := range stored {
		below[p] = s.Next
	}
	if err := d.admin.DeleteBefore(tctx, d.opts.Kafka.Topic, below); err != nil && ctx.Err() == nil {
		d.opts.Log.Debug("trimming the broker's stored records failed", "err", err)
	}
}

// drain waits until PostgreSQL holds the offsets of every record produced,
// at most timeout. Past it, a drain after a signal gives up quietly
// (drained false); one after the end of the duration is an error.
func (d *Demo) drain(ctx context.Context, timeout time.Duration, stopping bool) (bool, error) {
	end, err := d.admin.EndOffsets(ctx, d.opts.Kafka.Topic)
	if err != nil {
		return false, err
	}
	deadline := time.Now().Add(timeout)
	for {
		stored, err := d.db.LoadOffsets(ctx, d.opts.Consume.Group, d.opts.Kafka.Topic)
		if err == nil {
			next := make(map[int32]int64, len(stored))
			for p, s := range stored {
				next[p] = s.Next
			}
			if CaughtUp(end)(next) {
				return true, nil
			}
		}
		if time.Now().After(deadline) {
			if stopping {
				d.opts.Log.Warn("stopping before every record produced was stored", "stored_offsets", fmtStored(stored),
					"end_offsets", fmtOffsets(end))
				return false, nil
			}
			return false, fmt.Errorf("the consumers did not store every record within %s of the end of producing (stored offsets %s, end offsets %s)",
				timeout, fmtStored(stored), fmtOffsets(end))
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return false, err
		}
	}
}

func fmtStored(m map[int32]store.StoredOffset) string {
	out := make(map[int32]int64, len(m))
	for p, s := range m {
		out[p] = s.Next
	}
	return fmtOffsets(out)
}

func (d *Demo) view() {
	if d.opts.View == nil {
		return
	}
	d.mu.Lock()
	v := DemoView{Elapsed: time.Since(d.running), Duration: d.opts.Duration, Phase: d.phase,
		Produced: d.produced.Produced, Failed: d.produced.Failed, Poisoned: len(d.poison)}
	for _, c := range d.consumers {
		c.DeadLettered = maps.Clone(c.DeadLettered)
		v.Consumers = append(v.Consumers, c)
	}
	d.mu.Unlock()
	d.opts.View(v)
}

// answers asks the database what it holds, and the dead-letter topic how
// many records it has.
func (d *Demo) answers(ctx context.Context, res *DemoResult) (err error) {
	if res.Rows, err = d.db.CountOrders(ctx); err != nil {
		return err
	}
	if res.ByStatus, err = d.db.OrdersByStatus(ctx); err != nil {
		return err
	}
	if res.TopItems, err = d.db.TopItems(ctx, 5); err != nil {
		return err
	}
	if res.RevenueByHour, err = d.db.RevenueByHour(ctx); err != nil {
		return err
	}
	end, err := d.admin.EndOffsets(ctx, d.opts.Kafka.DLQ())
	if err != nil {
		return err
	}
	for _, n := range end {
		res.DeadLetters += n
	}
	start, err := d.admin.StartOffsets(ctx, d.opts.Kafka.Topic)
	if err != nil {
		return err
	}
	for _, n := range start {
		res.Trimmed += n
	}
	return nil
}

// injectPoison produces, a third of the way into the run (PoisonAfter
// into one without a duration), one record of each kind the consumers must
// dead-letter instead of storing: bytes that are not JSON, an order whose
// subtotal is wrong, one whose customer name does not fit its column, and
// one PostgreSQL refuses. It returns early, with nothing sent, when ctx
// ends first.
func (d *Demo) injectPoison(ctx context.Context) error {
	after := d.opts.Duration / 3
	if d.opts.Duration <= 0 {
		after = d.opts.PoisonAfter
	}
	if err := sleep(ctx, after); err != nil {
		return nil
	}
	recs, err := poisonRecords(d.opts.Seed, d.opts.Customers)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var deliveryErr error
	p, err := kafka.NewProducer(ctx, d.cluster, d.opts.Producer, kafka.ProducerOptions{
		Topic: d.opts.Kafka.Topic, Headers: order.WireHeaders,
		OnDelivery: func(del kafka.Delivery) {
			mu.Lock()
			defer mu.Unlock()
			if del.Err != nil {
				deliveryErr = del.Err
				return
			}
			for _, r := range recs {
				if bytes.Equal(del.Value, r.value) {
					d.mu.Lock()
					d.poison = append(d.poison, Poison{Class: r.class, What: r.what, Partition: del.Partition, Offset: del.Offset})
					d.mu.Unlock()
				}
			}
		},
	})
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := p.Send(ctx, []byte(r.key), r.value); err != nil {
			break
		}
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.opts.Producer.FlushTimeout)
	defer cancel()
	ferr := p.Flush(fctx)
	p.Close()
	mu.Lock()
	defer mu.Unlock()
	if deliveryErr != nil {
		return fmt.Errorf("produce the poison records: %w", deliveryErr)
	}
	return ferr
}

// poisonRecord is a record the consumers cannot store, and why.
type poisonRecord struct {
	class, what, key string
	value            []byte
}

// poisonRecords are the demo's poison, built from generated orders so that
// each breaks exactly one rule.
func poisonRecords(seed int64, customers int) ([]poisonRecord, error) {
	gen, err := NewGenerator(seed+1, customers)
	if err != nil {
		return nil, err
	}
	var o order.Order
	next := func() order.Order {
		gen.Next(&o)
		c := o
		c.Items = append([]order.Item(nil), o.Items...)
		return c
	}
	subtotal := next()
	subtotal.Items[0].Subtotal++ // a cent off: no longer price × quantity
	subtotal.TotalAmount++       // the total still agrees, so only the subtotal is wrong
	name := next()
	name.CustomerName = strings.Repeat("Bartholomew ", 10) + name.CustomerName // past the column's 100 characters
	refused := next()
	huge := bytes.Replace(order.AppendJSON(nil, &refused), []byte(`"item_id":`), []byte(`"calories":1e200000,"item_id":`), 1)
	return []poisonRecord{
		{order.ClassDecode, "bad JSON: a record cut short", "CUST-00001", []byte(`{"order_id":"ORD-BROKEN","customer_id":`)},
		{order.ClassValidate, "a subtotal a cent off price × quantity", subtotal.CustomerID, order.AppendJSON(nil, &subtotal)},
		{order.ClassValidate, "a customer name longer than its column (100)", name.CustomerID, order.AppendJSON(nil, &name)},
		{order.ClassStore, "a number too large for PostgreSQL's jsonb", refused.CustomerID, huge},
	}, nil
}
