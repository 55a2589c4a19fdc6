package metrics

import (
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/foodpipe/foodpipe/pkg/pipeline"
	"github.com/foodpipe/foodpipe/pkg/store"
)

// observed is a Metrics that saw one of everything.
func observed(t *testing.T) *Metrics {
	t.Helper()
	m := New()
	m.WatchPool(func() store.PoolStats { return store.PoolStats{Acquired: 1, Idle: 2, Max: 4, Acquires: 9} })
	m.Delivered(nil)
	m.Delivered(errors.New("broker gone"))
	m.Consumed(12)
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	m.Committed(pipeline.Commit{Inserted: 9, Duplicates: 1, DeadLetters: map[string]int{order.ClassDecode: 2},
		Records: 12, Took: 30 * time.Millisecond, At: at,
		Orders: []*order.Order{{CreatedAt: at.Add(-50 * time.Millisecond)}, {CreatedAt: at.Add(-2 * time.Second)},
			{CreatedAt: at.Add(time.Hour)}}}) // a producer whose clock runs ahead
	m.Retrying("store batch", errors.New("down"))
	m.Lag(map[int32]int64{0: 5, 1: 7})
	return m
}

// withKafkaClient registers the kprom series of a real client, as every
// command with --metrics-addr does, against franz-go's in-process broker.
func withKafkaClient(t *testing.T, m *Metrics) {
	t.Helper()
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	admin, err := kafka.NewAdmin(t.Context(), kafka.Cluster{
		Config:   config.Kafka{Brokers: fake.ListenAddrs(), ConnectTimeout: 5 * time.Second},
		ClientID: "foodpipe-test", Logger: testenv.Logger(t), Metrics: m.Registry,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
}

// TestSeriesFollowTheConventions lints every series served on /metrics,
// foodpipe's, a Kafka client's (kprom), the pool's, Go's and the
// process's, with client_golang's own linter.
func TestSeriesFollowTheConventions(t *testing.T) {
	m := observed(t)
	withKafkaClient(t, m)
	problems, err := testutil.GatherAndLint(m.gatherer())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func TestSeriesCountWhatHappened(t *testing.T) {
	m := observed(t)
	tests := []struct {
		c    prometheus.Collector
		want float64
	}{
		{m.produced, 1}, {m.failed, 1}, {m.consumed, 12}, {m.stored, 9}, {m.duplicates, 1},
		{m.deadLetters.WithLabelValues("decode"), 2}, {m.transactions, 1},
		{m.retries.WithLabelValues("store batch"), 1},
		{m.lag.WithLabelValues("0"), 5}, {m.lag.WithLabelValues("1"), 7},
	}
	for i, tt := range tests {
		if got := testutil.ToFloat64(tt.c); got != tt.want {
			t.Errorf("series %d: %v, want %v", i, got, tt.want)
		}
	}
	// A partition no longer owned loses its lag series.
	m.Lag(map[int32]int64{1: 3})
	if n := testutil.CollectAndCount(m.lag); n != 1 {
		t.Errorf("%d lag series after partition 0 left, want 1", n)
	}
	// The latencies are created_at to the commit: 50 ms, 2 s, and 0 for the
	// order stamped in the future, which would otherwise take an hour off
	// the sum, a counter for rate().
	want := `
# HELP foodpipe_end_to_end_latency_seconds From an order's created_at to the commit that stored it; 0 for one stamped after it (clock skew).
# TYPE foodpipe_end_to_end_latency_seconds histogram
`
	got, err := testutil.CollectAndFormat(m.latency, expfmt.TypeTextPlain, "foodpipe_end_to_end_latency_seconds")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), strings.TrimPrefix(want, "\n")) || !strings.Contains(string(got), "foodpipe_end_to_end_latency_seconds_sum 2.05\n") ||
		!strings.Contains(string(got), "foodpipe_end_to_end_latency_seconds_count 3\n") {
		t.Errorf("latency histogram:\n%s", got)
	}
}

func TestProbes(t *testing.T) {
	m := New()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	m.Health.now = func() time.Time { return now }
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(body))
	}
	steps := []struct {
		do           func()
		path         string
		code         int
		reasonPrefix string
	}{
		{func() {}, "/readyz", 503, "starting"},
		{func() { m.Ready(false, "joining the group") }, "/readyz", 503, "joining the group"},
		{func() { m.Ready(true, "") }, "/readyz", 200, "ok"},
		{func() { m.Ready(false, "storing batches failing: retrying") }, "/readyz", 503, "storing batches failing"},
		{func() { m.Writing(now.Add(-time.Minute)) }, "/healthz", 200, "ok"},
		{func() { m.Writing(now.Add(-3 * time.Minute)) }, "/healthz", 503, "a database write has been running for 3m0s"},
		{func() { m.Writing(time.Time{}) }, "/healthz", 200, "ok"},
		// A producer beside the consumer, as in the demo: each says who is
		// not ready, and the process is ready when both are.
		{func() { m.Ready(true, "") }, "/readyz", 200, "ok"},
		{func() { m.Delivered(errors.New("NOT_LEADER")) }, "/readyz", 503, "producer: the broker is not accepting records: NOT_LEADER"},
		{func() { m.Delivered(nil) }, "/readyz", 200, "ok"},
		{func() { m.Member("consumer-2").Ready(false, "joining the group") }, "/readyz", 503, "consumer-2: joining the group"},
		{func() { m.Member("consumer-2").Ready(true, "") }, "/readyz", 200, "ok"},
		{func() { m.Member("consumer-2").Writing(now.Add(-3 * time.Minute)) }, "/healthz", 503, "consumer-2: a database write"},
		{func() { m.Member("consumer-2").Writing(time.Time{}) }, "/healthz", 200, "ok"},
	}
	for i, s := range steps {
		s.do()
		code, reason := get(s.path)
		if code != s.code || !strings.HasPrefix(reason, s.reasonPrefix) || strings.Contains(reason, "\n") {
			t.Errorf("step %d: %s = %d %q, want %d %q…", i, s.path, code, reason, s.code, s.reasonPrefix)
		}
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "foodpipe_rows_stored_total 0") {
		t.Errorf("/metrics = %d\n%.300s", code, body)
	}
}

// TestMemberLag: each member of a process reports the partitions it owns;
// the series are their union, and a partition no member owns any more has
// none.
func TestMemberLag(t *testing.T) {
	m := New()
	a, b := m.Member("consumer-1"), m.Member("consumer-2")
	a.Lag(map[int32]int64{0: 5, 1: 3})
	b.Lag(map[int32]int64{2: 7})
	if got := lagSeries(t, m); !maps.Equal(got, map[string]float64{"0": 5, "1": 3, "2": 7}) {
		t.Errorf("after both members: %v", got)
	}
	a.Lag(map[int32]int64{0: 1}) // partition 1 went elsewhere
	if got := lagSeries(t, m); !maps.Equal(got, map[string]float64{"0": 1, "2": 7}) {
		t.Errorf("after consumer-1 lost partition 1: %v", got)
	}
	b.Lag(map[int32]int64{1: 4, 2: 6})
	if got := lagSeries(t, m); !maps.Equal(got, map[string]float64{"0": 1, "1": 4, "2": 6}) {
		t.Errorf("after consumer-2 took partition 1: %v", got)
	}
}

// lagSeries gathers foodpipe_consumer_lag_records by partition.
func lagSeries(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "foodpipe_consumer_lag_records" {
			continue
		}
		for _, s := range f.GetMetric() {
			got[s.GetLabel()[0].GetValue()] = s.GetGauge().GetValue()
		}
	}
	return got
}
