// Package metrics shows what foodpipe does to Prometheus and answers the
// health and readiness probes: /metrics, /healthz and /readyz on
// --metrics-addr. It has a registry of its own (never the global one), so
// two pipelines in one process (the demo's three consumers) and tests do
// not collide. The Kafka clients' series come from franz-go's kprom, wired
// in pkg/kafka; this package holds foodpipe's own.
package metrics

import (
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/foodpipe/foodpipe/pkg/pipeline"
)

// Metrics is foodpipe's registry and series. It is a pipeline.Observer and
// a pipeline.ProduceObserver.
type Metrics struct {
	// Registry holds every series served on /metrics.
	Registry *prometheus.Registry
	Health   *Health

	produced prometheus.Counter
	failed   prometheus.Counter

	consumed      prometheus.Counter
	stored        prometheus.Counter
	duplicates    prometheus.Counter
	dropped       prometheus.Counter
	deadLetters   *prometheus.CounterVec
	transactions  prometheus.Counter
	batchRecords  prometheus.Histogram
	commitSeconds prometheus.Histogram
	latency       prometheus.Histogram
	lag           *prometheus.GaugeVec
	retries       *prometheus.CounterVec

	mu     sync.Mutex
	lags   map[string]map[int32]int64 // each member's owned partitions' lag
	lagged map[int32]bool             // partitions with a lag series, to drop the revoked
}

// New makes a registry with foodpipe's series, the Go runtime's and the
// process's.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := factory{reg}
	return &Metrics{
		Registry: reg,
		Health:   newHealth(),
		produced: f.counter("orders_produced_total", "Orders the broker acknowledged."),
		failed:   f.counter("orders_failed_total", "Orders that could not be delivered."),
		consumed: f.counter("records_consumed_total", "Records read from the orders topic (a record read again after a rebalance counts again)."),
		stored:   f.counter("rows_stored_total", "Orders inserted into PostgreSQL."),
		duplicates: f.counter("duplicates_skipped_total",
			"Orders not inserted because their order_id was already stored."),
		dropped: f.counter("rows_dropped_by_database_total",
			"Orders PostgreSQL skipped without an error: a trigger returning NULL or a rule on orders."),
		deadLetters: f.counterVec("dead_letters_total", "Records sent to the dead-letter topic, by class.", "class"),
		transactions: f.counter("transactions_total",
			"Database transactions committed, each with its batch's rows and offsets."),
		batchRecords: f.histogram("batch_records", "Records covered by one committed transaction.",
			prometheus.ExponentialBuckets(1, 4, 9)),
		commitSeconds: f.histogram("batch_commit_duration_seconds",
			"Time to write and commit one batch, dead letters included.", prometheus.ExponentialBuckets(0.001, 2, 15)),
		latency: f.histogram("end_to_end_latency_seconds",
			"From an order's created_at to the commit that stored it; 0 for one stamped after it (clock skew).", prometheus.ExponentialBuckets(0.001, 2, 17)),
		lag: f.gaugeVec("consumer_lag_records",
			"Records of the partition not stored yet: its last stable offset (the end a read_committed reader can reach), listed from the brokers, minus the stored offset.", "partition"),
		retries: f.counterVec("retries_total",
			"Failed attempts that are retried while a service is down (store batch and load stored offsets: PostgreSQL), by operation.", "operation"),
		lags:   map[string]map[int32]int64{},
		lagged: map[int32]bool{},
	}
}

// factory registers foodpipe_* series on one registry.
type factory struct{ reg prometheus.Registerer }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "foodpipe", Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, label string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "foodpipe", Name: name, Help: help}, []string{label})
	f.reg.MustRegister(c)
	return c
}

func (f factory) gaugeVec(name, help string, label string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "foodpipe", Name: name, Help: help}, []string{label})
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "foodpipe", Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

// Delivered counts one order delivered or failed (pipeline.ProduceObserver)
// and keeps the producer's readiness: the broker is accepting records.
func (m *Metrics) Delivered(err error) {
	if err != nil {
		m.failed.Inc()
		m.Health.SetReady("producer", false, "the broker is not accepting records: "+err.Error())
		return
	}
	m.produced.Inc()
	m.Health.SetReady("producer", true, "")
}

// Stalled marks the producer not ready (pipeline.ProduceObserver): records
// wait and the broker acknowledges none.
func (m *Metrics) Stalled(reason string) { m.Health.SetReady("producer", false, reason) }

// Consumed counts records read (pipeline.Observer).
func (m *Metrics) Consumed(records int) { m.consumed.Add(float64(records)) }

// Committed counts a committed batch and the latency of its orders.
func (m *Metrics) Committed(c pipeline.Commit) {
	m.stored.Add(float64(c.Inserted))
	m.duplicates.Add(float64(c.Duplicates))
	m.dropped.Add(float64(c.Dropped))
	for class, n := range c.DeadLetters {
		m.deadLetters.WithLabelValues(class).Add(float64(n))
	}
	m.transactions.Inc()
	m.batchRecords.Observe(float64(c.Records))
	m.commitSeconds.Observe(c.Took.Seconds())
	for _, o := range c.Orders {
		// A negative observation would take from _sum, which rate() reads
		// as a counter.
		m.latency.Observe(max(0, c.At.Sub(o.CreatedAt).Seconds()))
	}
}

// Retrying counts a failed attempt that will be retried.
func (m *Metrics) Retrying(op string, _ error) { m.retries.WithLabelValues(op).Inc() }

// Lag sets the lag of every partition the consumer owns and drops the
// series of the partitions it no longer owns.
func (m *Metrics) Lag(lag map[int32]int64) { m.setLag("consumer", lag) }

// Ready sets the consumer's readiness (pipeline.Observer).
func (m *Metrics) Ready(ready bool, reason string) { m.Health.SetReady("consumer", ready, reason) }

// Writing records when the write in progress started (zero: none), for
// /healthz.
func (m *Metrics) Writing(since time.Time) { m.Health.SetBusySince("consumer", since) }

// Member is the pipeline.Observer of one consumer among several in one
// process (the demo's): the counters add up, each partition's lag comes
// from the member that owns it, and the process is ready when every member
// is.
func (m *Metrics) Member(name string) pipeline.Observer { return member{m, name} }

type member struct {
	*Metrics
	name string
}

func (mb member) Lag(lag map[int32]int64)         { mb.setLag(mb.name, lag) }
func (mb member) Ready(ready bool, reason string) { mb.Health.SetReady(mb.name, ready, reason) }
func (mb member) Writing(since time.Time)         { mb.Health.SetBusySince(mb.name, since) }

// setLag records a member's lag and sets the series of every partition some
// member owns, dropping the others.
func (m *Metrics) setLag(name string, lag map[int32]int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lags[name] = maps.Clone(lag)
	owned := map[int32]int64{}
	for _, l := range m.lags {
		maps.Copy(owned, l)
	}
	for _, p := range slices.Sorted(maps.Keys(m.lagged)) {
		if _, ok := owned[p]; !ok {
			m.lag.DeleteLabelValues(strconv.Itoa(int(p)))
			delete(m.lagged, p)
		}
	}
	for p, n := range owned {
		m.lag.WithLabelValues(strconv.Itoa(int(p))).Set(float64(n))
		m.lagged[p] = true
	}
}
