package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/foodpipe/foodpipe/pkg/store"
)

// WatchPool adds the PostgreSQL connection pool's figures, read at each
// scrape from stats.
func (m *Metrics) WatchPool(stats func() store.PoolStats) {
	m.Registry.MustRegister(poolCollector{stats})
}

type poolCollector struct{ stats func() store.PoolStats }

var (
	poolConns = prometheus.NewDesc("foodpipe_pgxpool_connections",
		"Open connections of the PostgreSQL pool, by state: acquired (in use) or idle.", []string{"state"}, nil)
	poolMax = prometheus.NewDesc("foodpipe_pgxpool_max_connections",
		"The most connections the pool opens.", nil, nil)
	poolAcquires = prometheus.NewDesc("foodpipe_pgxpool_acquires_total",
		"Connections acquired from the pool.", nil, nil)
	poolEmpty = prometheus.NewDesc("foodpipe_pgxpool_empty_acquires_total",
		"Acquires that had to wait for a connection (none idle).", nil, nil)
	poolCanceled = prometheus.NewDesc("foodpipe_pgxpool_canceled_acquires_total",
		"Acquires given up (their context ended) before a connection came.", nil, nil)
	poolWait = prometheus.NewDesc("foodpipe_pgxpool_acquire_wait_seconds_total",
		"Time spent waiting to acquire connections, in all.", nil, nil)
)

func (poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolConns, poolMax, poolAcquires, poolEmpty, poolCanceled, poolWait} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.Acquired), "acquired")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.Idle), "idle")
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.Max))
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.Acquires))
	ch <- prometheus.MustNewConstMetric(poolEmpty, prometheus.CounterValue, float64(s.EmptyAcquires))
	ch <- prometheus.MustNewConstMetric(poolCanceled, prometheus.CounterValue, float64(s.CanceledAcquires))
	ch <- prometheus.MustNewConstMetric(poolWait, prometheus.CounterValue, s.AcquireWait.Seconds())
}
