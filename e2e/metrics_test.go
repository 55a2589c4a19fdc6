package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

// metricsURL waits for the consumer's "serving metrics" line (it listens
// on a free port) and returns its base URL.
func (c *consumer) metricsURL(t *testing.T) string {
	t.Helper()
	c.waitFor(t, `"msg":"serving metrics"`, time.Minute)
	for _, l := range strings.Split(c.stderr.String(), "\n") {
		var line struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(l), &line) == nil && line.Msg == "serving metrics" {
			return "http://" + line.Addr
		}
	}
	t.Fatal("no metrics address logged")
	return ""
}

// get fetches a path of a metrics server: status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// scrape reads /metrics: the value of every sample, keyed by
// name{label="value",…}.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			key := name
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			out[key] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// TestConsumeMetricsMatchTheData: what a running consumer exports is what
// the database and the dead-letter topic hold.
func TestConsumeMetricsMatchTheData(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	p.produce(1500)
	produceRaw(t, p.brokers,
		&kgo.Record{Topic: p.topic, Key: []byte("CUST-00001"), Value: []byte("not json")},
		&kgo.Record{Topic: p.topic, Key: []byte("CUST-00002"), Value: []byte(`{"order_id":1}`)},
		&kgo.Record{Topic: p.topic, Key: []byte("CUST-00003"), Value: validOrder(t, "ORD-20261129-MET-1")},
		&kgo.Record{Topic: p.topic, Key: []byte("CUST-00003"), Value: validOrder(t, "ORD-20261129-MET-1")}, // a duplicate
		&kgo.Record{Topic: p.topic, Key: []byte("CUST-00004"), Value: badOrder(t, "validate-customer_email-without-at.json")},
	)
	c := p.startConsumer("--metrics-addr", "127.0.0.1:0")
	base := c.metricsURL(t)
	conn := p.db()
	p.waitCaughtUp(conn, 2*time.Minute, c)
	// The lag is listed from the brokers once per progress interval, so the
	// figures scraped just after the catch-up may have been measured before
	// it: wait (a minute at most) for figures of every partition that show
	// it; the checks below fail if none ever do.
	parts := testenv.EndOffsets(t, p.topic)
	caughtUp := func(m map[string]float64) bool {
		for part := range parts {
			if lag, ok := m[fmt.Sprintf(`foodpipe_consumer_lag_records{partition="%d"}`, part)]; !ok || lag != 0 {
				return false
			}
		}
		return true
	}
	var m map[string]float64
	deadline := time.Now().Add(time.Minute)
	for m = scrape(t, base); !caughtUp(m) && time.Now().Before(deadline); m = scrape(t, base) {
		time.Sleep(100 * time.Millisecond)
	}
	rows := p.count(conn)
	if m["foodpipe_rows_stored_total"] != float64(rows) || rows != 1501 {
		t.Errorf("rows_stored_total %v, SELECT count(*) %d (want 1501)", m["foodpipe_rows_stored_total"], rows)
	}
	if m["foodpipe_duplicates_skipped_total"] != 1 {
		t.Errorf("duplicates_skipped_total %v, want 1", m["foodpipe_duplicates_skipped_total"])
	}
	byClass, exported := map[string]float64{}, map[string]float64{}
	for _, d := range testenv.Records(t, p.topic+".dlq") {
		byClass[d.Headers["foodpipe-error-class"]]++
	}
	for k, v := range m {
		if class, ok := strings.CutPrefix(k, `foodpipe_dead_letters_total{class="`); ok {
			exported[strings.TrimSuffix(class, `"}`)] = v
		}
	}
	if want := map[string]float64{"decode": 2, "validate": 1}; !maps.Equal(exported, byClass) || !maps.Equal(byClass, want) {
		t.Errorf("dead_letters_total by class %v, the dead-letter topic holds %v, want %v", exported, byClass, want)
	}
	if m["foodpipe_end_to_end_latency_seconds"] != m["foodpipe_rows_stored_total"]+m["foodpipe_duplicates_skipped_total"] {
		t.Errorf("%v latencies for %v rows and %v duplicates", m["foodpipe_end_to_end_latency_seconds"],
			m["foodpipe_rows_stored_total"], m["foodpipe_duplicates_skipped_total"])
	}
	for part := range parts {
		if lag, ok := m[fmt.Sprintf(`foodpipe_consumer_lag_records{partition="%d"}`, part)]; !ok || lag != 0 {
			t.Errorf("partition %d: lag %v (exported %v), want 0 once caught up\n%s", part, lag, ok, lagLines(m))
		}
	}
	kafkaSeries := 0
	for k := range m {
		if strings.HasPrefix(k, `foodpipe_kafka_connects_total{client="consumer-`) {
			kafkaSeries++
		}
	}
	if m[`foodpipe_pgxpool_max_connections`] == 0 || kafkaSeries == 0 {
		t.Errorf("pool or Kafka client series missing")
	}
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz %d %q while consuming", code, body)
	}
	if code, body := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz %d %q", code, body)
	}
	c.stop(t)
}

// TestReadinessAndLagDuringOutage: PostgreSQL goes down while orders keep
// coming. /readyz turns 503, and the lag — logged and exported — grows with
// the backlog; when PostgreSQL is back, /readyz is 200 again and every order
// is stored.
func TestReadinessAndLagDuringOutage(t *testing.T) {
	t.Parallel()
	pg := testenv.PrivatePostgres(t)
	p := &pipeline{t: t, brokers: testenv.Brokers(t), topic: testenv.Name(t, "orders"), group: testenv.Name(t, "group"), dsn: pg.URL}
	p.init()
	producer := command(t, t.Context(), nil, "produce", p.brokersFlag(), "--topic", p.topic,
		"--rate", "200", "--duration", "40s", "--output", "json")
	if err := producer.Start(); err != nil {
		t.Fatal(err)
	}
	c := p.startConsumer("--metrics-addr", "127.0.0.1:0")
	base := c.metricsURL(t)
	conn := p.db()
	p.waitRows(conn, 1, time.Minute, c)
	waitStatus(t, base+"/readyz", 200)

	pg.Stop()
	waitStatus(t, base+"/readyz", 503)
	first := totalLag(scrape(t, base))
	deadline := time.Now().Add(time.Minute)
	for totalLag(scrape(t, base)) < first+200 { // the producer adds 200 a second
		if time.Now().After(deadline) {
			t.Fatalf("exported lag stayed at %v during the outage", totalLag(scrape(t, base)))
		}
		time.Sleep(200 * time.Millisecond)
	}
	_, reason := get(t, base+"/readyz")
	pg.Start()
	waitStatus(t, base+"/readyz", 200)
	if err := waitProcess(t, producer, 3*time.Minute); err != nil { // 40 s of orders
		t.Fatal(err)
	}
	conn = p.db() // the outage closed the first connection
	p.waitCaughtUp(conn, 2*time.Minute, c)
	s := c.stop(t)
	if !regexp.MustCompile(`failing \(.+\): retrying|PostgreSQL unreachable \(`).MatchString(reason) {
		t.Errorf("/readyz during the outage said %q, want what is failing and why", reason)
	}
	if got := p.count(conn); got != s.Stored {
		t.Errorf("%d rows, the consumer stored %d", got, s.Stored)
	}
	var logged []int64
	for _, l := range strings.Split(c.stderr.String(), "\n") {
		var line struct {
			Msg string `json:"msg"`
			Lag int64  `json:"lag"`
		}
		if json.Unmarshal([]byte(l), &line) == nil && line.Msg == "progress" {
			logged = append(logged, line.Lag)
		}
	}
	peak := int64(0)
	for _, l := range logged {
		peak = max(peak, l)
	}
	if peak < 200 {
		t.Errorf("the logged lag peaked at %d during the outage: %v", peak, logged)
	}
}

func totalLag(m map[string]float64) float64 {
	var sum float64
	for k, v := range m {
		if strings.HasPrefix(k, "foodpipe_consumer_lag_records{") {
			sum += v
		}
	}
	return sum
}

// waitStatus polls url until it answers code, at most a minute.
func waitStatus(t *testing.T, url string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		got, body := get(t, url)
		if got == code {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%s answered %d %q for a minute, want %d", url, got, body, code)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func lagLines(m map[string]float64) string {
	var b strings.Builder
	for k, v := range m {
		if strings.Contains(k, "lag") {
			fmt.Fprintf(&b, "%s %v\n", k, v)
		}
	}
	return b.String()
}

// TestReadyWithoutPartitions: a fourth consumer of a three-partition topic
// is in the group with no partition. It is ready — it joined, and takes
// over when another leaves — not "joining the group" for ever.
func TestReadyWithoutPartitions(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	p.produce(300)
	var urls []string
	for range 4 {
		c := p.startConsumer("--metrics-addr", "127.0.0.1:0")
		urls = append(urls, c.metricsURL(t))
	}
	conn := p.db()
	p.waitCaughtUp(conn, 2*time.Minute)
	for _, u := range urls {
		waitStatus(t, u+"/readyz", 200)
	}
}

// badOrder is one of the bad-record fixtures, as it is on the wire.
func badOrder(t *testing.T, file string) []byte {
	t.Helper()
	data, err := os.ReadFile("../testdata/orders/bad/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
