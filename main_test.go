package main

// These tests run the real foodpipe binary, built once in TestMain, the way
// a user runs it: flags, environment, exit codes, stdout and stderr.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/order"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "foodpipe-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "foodpipe")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build foodpipe:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the binary did.
type result struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

// command prepares the binary with args in an empty working directory and
// config home, so no stray foodpipe.yaml is read, and with env added.
func command(t *testing.T, ctx context.Context, env []string, args ...string) *exec.Cmd {
	t.Helper()
	home := t.TempDir()
	c := exec.CommandContext(ctx, binary, args...)
	c.Dir = home
	c.Env = append(os.Environ(), "XDG_CONFIG_HOME="+home, "HOME="+home, "FOODPIPE_LOG_FORMAT=text")
	c.Env = append(c.Env, env...)
	return c
}

// run runs the binary to completion, at most two minutes.
func run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c := command(t, ctx, env, args...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	start := time.Now()
	err := c.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run foodpipe %v: %v", args, err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// errorLine returns the "foodpipe: …" error line of stderr, failing the test
// unless there is exactly one.
func errorLine(t *testing.T, r result) string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.HasPrefix(l, "foodpipe: ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("want exactly one error line, got %d:\n%s", len(lines), r)
	}
	return lines[0]
}

func brokersFlag(t *testing.T) string {
	return "--brokers=" + strings.Join(testenv.Brokers(t), ",")
}

func TestHelpListsEveryCommand(t *testing.T) {
	t.Parallel()
	r := run(t, nil, "--help")
	if r.code != 0 {
		t.Fatal(r)
	}
	for _, c := range []string{"produce", "consume", "topics", "db", "bench", "config", "version", "completion"} {
		if !strings.Contains(r.stdout, "\n  "+c+" ") {
			t.Errorf("--help does not list %q:\n%s", c, r.stdout)
		}
	}
	v := run(t, nil, "version")
	if v.code != 0 || !strings.HasPrefix(v.stdout, "foodpipe ") {
		t.Errorf("version: %s", v)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	t.Parallel()
	cfgDir := t.TempDir()
	badKey := filepath.Join(cfgDir, "bad.yaml")
	if err := os.WriteFile(badKey, []byte("brokers: [127.0.0.1:9092]\npartitionz: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"zero partitions", nil, []string{"topics", "init", "--partitions", "0"}, "invalid partitions 0"},
		{"negative rate", nil, []string{"produce", "--rate", "-1"}, "invalid rate -1"},
		{"rate not a number", []string{"FOODPIPE_RATE=fast"}, []string{"produce"}, `invalid rate "fast" (from FOODPIPE_RATE)`},
		{"unknown config key", nil, []string{"topics", "init", "--config", badKey}, `unknown key "partitionz"`},
		{"unknown config key via env", []string{"FOODPIPE_CONFIG=" + badKey}, []string{"db", "status"}, `unknown key "partitionz"`},
		{"missing config file", nil, []string{"config", "show", "--config", filepath.Join(cfgDir, "none.yaml")}, "no such file"},
		{"bad env value", []string{"FOODPIPE_KAFKA_TIMEOUT=soon"}, []string{"topics", "init"}, `invalid kafka-timeout "soon" (from FOODPIPE_KAFKA_TIMEOUT)`},
		{"unknown flag", nil, []string{"topics", "init", "--partitons", "3"}, "unknown flag: --partitons"},
		{"unknown command", nil, []string{"topics", "nuke"}, `unknown command "nuke"`},
		{"stray argument", nil, []string{"db", "migrate", "now"}, "takes no arguments"},
		{"bad database url", nil, []string{"db", "migrate", "--database-url", "postgres://u:hunter2@[::1"}, "invalid database-url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, tt.env, tt.args...)
			if r.code != 2 {
				t.Fatalf("want exit 2:\n%s", r)
			}
			if line := errorLine(t, r); !strings.Contains(line, tt.want) {
				t.Errorf("error line %q does not contain %q", line, tt.want)
			}
			if strings.Contains(r.stderr, "hunter2") || strings.Contains(r.stderr, "goroutine ") {
				t.Errorf("stderr leaks a secret or a stack:\n%s", r.stderr)
			}
		})
	}
}

func TestUnreachableServicesExit1InOneLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"kafka", []string{"topics", "init", "--brokers", "127.0.0.1:1"}, "foodpipe: cannot reach Kafka at 127.0.0.1:1: connection refused"},
		{"kafka, produce", []string{"produce", "--brokers", "127.0.0.1:1", "--count", "1"}, "foodpipe: cannot reach Kafka at 127.0.0.1:1: connection refused"},
		{"postgres", []string{"db", "migrate", "--database-url", "postgres://foodpipe@127.0.0.1:1/foodpipe"}, "foodpipe: cannot reach PostgreSQL at 127.0.0.1:1: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, nil, tt.args...)
			if r.code != 1 {
				t.Fatalf("want exit 1:\n%s", r)
			}
			if r.elapsed > 15*time.Second {
				// Not a timing assertion on performance: the contract says an
				// unreachable service is reported, not waited for forever.
				t.Errorf("took %v, the contract allows 15s", r.elapsed)
			}
			if got := strings.TrimSpace(r.stderr); got != tt.want {
				t.Errorf("stderr = %q, want exactly %q", got, tt.want)
			}
		})
	}
}

func TestConfigShowNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	env := []string{
		"FOODPIPE_KAFKA_PASSWORD=kafka-s3cret",
		"FOODPIPE_KAFKA_SASL_MECHANISM=SCRAM-SHA-256",
		"FOODPIPE_KAFKA_USERNAME=app",
	}
	for _, format := range []string{"text", "json"} {
		r := run(t, env, "config", "show", "--output", format, "--database-url", "postgres://app:pg-s3cret@db:5432/orders", "--rate", "250")
		if r.code != 0 {
			t.Fatal(r)
		}
		if strings.Contains(r.stdout+r.stderr, "s3cret") {
			t.Errorf("%s output shows a secret:\n%s", format, r)
		}
		if format == "json" {
			var m map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
				t.Fatalf("json output: %v\n%s", err, r.stdout)
			}
			if m["rate"] != 250.0 || m["kafka-username"] != "app" || m["kafka-password"] != "[redacted]" {
				t.Errorf("json output: rate=%v user=%v password=%v", m["rate"], m["kafka-username"], m["kafka-password"])
			}
		} else if !strings.Contains(r.stdout, "rate: 250\n") || !strings.Contains(r.stdout, "postgres://app:[redacted]@db:5432/orders") {
			t.Errorf("text output:\n%s", r.stdout)
		}
	}
}

type topicResult struct {
	Topic             string            `json:"topic"`
	Status            string            `json:"status"`
	Partitions        int               `json:"partitions"`
	ReplicationFactor int               `json:"replication_factor"`
	Configs           map[string]string `json:"configs"`
	Differences       []struct {
		Key, Want, Got string
	} `json:"differences"`
}

func topicsInit(t *testing.T, topic string, args ...string) (result, []topicResult) {
	t.Helper()
	r := run(t, nil, append([]string{"topics", "init", brokersFlag(t), "--topic", topic, "--output", "json"}, args...)...)
	var res []topicResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("topics init output is not JSON: %v\n%s", err, r)
	}
	return r, res
}

func TestTopicsInit(t *testing.T) {
	t.Parallel()
	topic := testenv.Name(t, "orders")

	r, res := topicsInit(t, topic)
	if r.code != 0 || len(res) != 2 {
		t.Fatalf("first run:\n%s", r)
	}
	for i, want := range []struct{ topic, retention string }{{topic, "604800000"}, {topic + ".dlq", "2592000000"}} {
		got := res[i]
		if got.Topic != want.topic || got.Status != "created" || got.Partitions != 3 || got.ReplicationFactor != 1 ||
			got.Configs["retention.ms"] != want.retention || got.Configs["cleanup.policy"] != "delete" {
			t.Errorf("first run, topic %d: %+v", i, got)
		}
	}

	r, res = topicsInit(t, topic)
	if r.code != 0 {
		t.Fatalf("second run:\n%s", r)
	}
	for _, got := range res {
		if got.Status != "exists, matches" || got.Configs["retention.ms"] == "" {
			t.Errorf("second run: %+v", got)
		}
	}

	text := run(t, nil, "topics", "init", brokersFlag(t), "--topic", topic)
	if text.code != 0 || !strings.Contains(text.stdout, "TOPIC") || !strings.Contains(text.stdout, "exists, matches") {
		t.Errorf("text output:\n%s", text)
	}
}

func TestTopicsInitDrift(t *testing.T) {
	t.Parallel()
	topic := testenv.Name(t, "orders")
	if r, _ := topicsInit(t, topic, "--partitions", "2", "--retention", "24h"); r.code != 0 {
		t.Fatal(r)
	}

	r, res := topicsInit(t, topic)
	if r.code != 1 {
		t.Fatalf("drifted topic: want exit 1:\n%s", r)
	}
	keys := map[string]string{}
	for _, d := range res[0].Differences {
		keys[d.Key] = d.Want + " vs " + d.Got
	}
	if !strings.HasPrefix(keys["partitions"], "3 vs 2") || keys["retention.ms"] != "604800000 vs 86400000" {
		t.Errorf("differences = %v", keys)
	}
	if line := errorLine(t, r); !strings.Contains(line, topic) {
		t.Errorf("error line %q does not name the topic", line)
	}

	r, res = topicsInit(t, topic, "--retention", "24h", "--add-partitions")
	if r.code != 0 || res[0].Partitions != 3 || res[0].Status != "partitions added" {
		t.Errorf("--add-partitions: %+v\n%s", res, r)
	}
}

func TestDBMigrate(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.Schema(t)
	url := "--database-url=" + dsn
	for i := range 2 {
		r := run(t, nil, "db", "migrate", url)
		if r.code != 0 {
			t.Fatalf("migrate run %d:\n%s", i+1, r)
		}
	}
	r := run(t, nil, "db", "status", url, "--output", "json")
	if r.code != 0 {
		t.Fatal(r)
	}
	var status []struct {
		File    string `json:"file"`
		Applied bool   `json:"applied"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &status); err != nil {
		t.Fatalf("%v\n%s", err, r)
	}
	files, _ := filepath.Glob("sql/*.sql")
	if len(status) != len(files) {
		t.Fatalf("status lists %d migrations, sql/ has %d", len(status), len(files))
	}
	for i, s := range status {
		if !s.Applied || s.File != filepath.Base(files[i]) {
			t.Errorf("status[%d] = %+v, want %s applied", i, s, filepath.Base(files[i]))
		}
	}
}

// TestDBMigrateConcurrentProcesses starts three db migrate processes at the
// same moment on an empty schema: all exit 0, and the schema is applied once
// (a second application would fail on CREATE TABLE).
func TestDBMigrateConcurrentProcesses(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.Schema(t)
	cmds := make([]*exec.Cmd, 3)
	outs := make([]bytes.Buffer, 3)
	for i := range cmds {
		cmds[i] = command(t, t.Context(), nil, "db", "migrate", "--database-url="+dsn, "--output", "json")
		cmds[i].Stdout, cmds[i].Stderr = &outs[i], &outs[i]
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, c := range cmds {
		wg.Go(func() { errs[i] = c.Run() })
	}
	wg.Wait()
	ranNow := 0
	for i, err := range errs {
		if err != nil {
			t.Errorf("process %d: %v\n%s", i, err, outs[i].String())
			continue
		}
		ranNow += strings.Count(outs[i].String(), `"ran": true`)
	}
	files, _ := filepath.Glob("sql/*.sql")
	if ranNow != len(files) {
		t.Errorf("the three processes applied %d migrations in total, want each of %d exactly once", ranNow, len(files))
	}
}

type produceSummary struct {
	Topic           string           `json:"topic"`
	Produced        int64            `json:"produced"`
	Failed          int64            `json:"failed"`
	DurationSeconds float64          `json:"duration_seconds"`
	RatePerSecond   float64          `json:"rate_per_second"`
	Stopped         string           `json:"stopped"`
	Partitions      map[string]int64 `json:"partitions"`
}

func parseProduce(t *testing.T, r result) produceSummary {
	t.Helper()
	var s produceSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("produce output is not JSON: %v\n%s", err, r)
	}
	return s
}

// orderIDs decodes every record of topic and returns the order ids,
// failing on an invalid record, a duplicate id or a key in two partitions.
func orderIDs(t *testing.T, topic string) (ids map[string]bool, partitions map[int32]int) {
	t.Helper()
	ids, partitions = map[string]bool{}, map[int32]int{}
	keyPart := map[string]int32{}
	var o order.Order
	for _, r := range testenv.Records(t, topic) {
		if err := order.DecodeAndValidate(r.Value, &o); err != nil {
			t.Fatalf("record %d/%d invalid: %v", r.Partition, r.Offset, err)
		}
		if ids[o.OrderID] {
			t.Fatalf("order id %s twice in %s", o.OrderID, topic)
		}
		ids[o.OrderID] = true
		if p, ok := keyPart[string(r.Key)]; ok && p != r.Partition {
			t.Errorf("key %s in partitions %d and %d", r.Key, p, r.Partition)
		}
		keyPart[string(r.Key)] = r.Partition
		partitions[r.Partition]++
	}
	return ids, partitions
}

func TestProduceCountTwice(t *testing.T) {
	t.Parallel()
	topic := testenv.Name(t, "orders")
	testenv.CreateTopic(t, topic, 3)
	args := []string{"produce", brokersFlag(t), "--topic", topic, "--count", "10000", "--rate", "0", "--output", "json"}

	r := run(t, nil, args...)
	s := parseProduce(t, r)
	if r.code != 0 || s.Produced != 10000 || s.Failed != 0 {
		t.Fatalf("first run:\n%s", r)
	}
	first, parts := orderIDs(t, topic)
	if len(first) != 10000 || len(parts) != 3 {
		t.Fatalf("topic holds %d orders in %d partitions, want 10000 in 3", len(first), len(parts))
	}
	for p, n := range parts {
		if s.Partitions[fmt.Sprint(p)] != int64(n) {
			t.Errorf("partition %d: summary %d, topic %d", p, s.Partitions[fmt.Sprint(p)], n)
		}
	}

	r = run(t, nil, args...)
	if s := parseProduce(t, r); r.code != 0 || s.Produced != 10000 {
		t.Fatalf("second run:\n%s", r)
	}
	all, _ := orderIDs(t, topic) // fails on any id produced twice
	if len(all) != 20000 {
		t.Errorf("after two runs the topic holds %d distinct orders, want 20000", len(all))
	}
	for id := range first {
		if !all[id] {
			t.Fatalf("order %s of the first run vanished", id)
		}
	}
}

// TestProduceRate checks the pacing contract: --rate 200 for 10s gives
// 2000 ± 2 % orders, none of the seconds holding more than twice its share.
// Record timestamps are stamped at send time, so they show the pacing.
func TestProduceRate(t *testing.T) {
	t.Parallel()
	topic := testenv.Name(t, "orders")
	testenv.CreateTopic(t, topic, 3)
	r := run(t, nil, "produce", brokersFlag(t), "--topic", topic, "--rate", "200", "--duration", "10s", "--output", "json")
	s := parseProduce(t, r)
	if r.code != 0 || s.Stopped != "duration" {
		t.Fatalf("%s", r)
	}
	if s.Produced < 1960 || s.Produced > 2040 {
		t.Errorf("produced %d in 10s at --rate 200, want 2000 ± 2%%", s.Produced)
	}
	records := testenv.Records(t, topic)
	if int64(len(records)) != s.Produced {
		t.Fatalf("topic holds %d, summary says %d", len(records), s.Produced)
	}
	start := records[0].Timestamp
	for _, rec := range records {
		if rec.Timestamp.Before(start) {
			start = rec.Timestamp
		}
	}
	perSecond := map[int]int{}
	for _, rec := range records {
		perSecond[int(rec.Timestamp.Sub(start)/time.Second)]++
	}
	for sec, n := range perSecond {
		if n > 400 {
			t.Errorf("second %d holds %d orders, more than twice its share of 200", sec, n)
		}
	}
}

// TestProduceSIGTERM stops a producer under load with SIGTERM: it exits 0
// promptly, and its summary claims exactly what the topic holds.
func TestProduceSIGTERM(t *testing.T) {
	t.Parallel()
	topic := testenv.Name(t, "orders")
	testenv.CreateTopic(t, topic, 3)
	c := command(t, t.Context(), nil, "produce", brokersFlag(t), "--topic", topic, "--rate", "5000", "--output", "json", "--progress-interval", "200ms")
	var stdout bytes.Buffer
	stderr := &lineWaiter{want: "rate_actual"}
	c.Stdout, c.Stderr = &stdout, stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	stderr.wait(t, 30*time.Second) // orders are flowing
	time.Sleep(time.Second)
	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	err := c.Wait()
	if err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
	}
	if d := time.Since(signalled); d > 5*time.Second {
		t.Errorf("took %v to exit after SIGTERM, the contract allows 5s", d)
	}
	s := parseProduce(t, result{stdout: stdout.String()})
	if s.Stopped != "signal" || s.Produced == 0 || s.Failed != 0 {
		t.Fatalf("summary %+v", s)
	}
	ids, _ := orderIDs(t, topic)
	if int64(len(ids)) != s.Produced {
		t.Errorf("topic holds %d orders, the summary claims %d", len(ids), s.Produced)
	}
}

// lineWaiter is an io.Writer that collects output and signals when a line
// containing want was written.
type lineWaiter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.init()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		select {
		case <-w.seen:
		default:
			close(w.seen)
		}
	}
	return len(p), nil
}

func (w *lineWaiter) init() { w.once.Do(func() { w.seen = make(chan struct{}) }) }

func (w *lineWaiter) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	w.mu.Lock()
	w.init()
	w.mu.Unlock()
	select {
	case <-w.seen:
	case <-time.After(timeout):
		t.Fatalf("no %q within %v:\n%s", w.want, timeout, w.String())
	}
}

func (w *lineWaiter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestBenchProduceAgreesWithTopic: bench produce's record count equals the
// growth of the topic's end offsets, read independently.
func TestBenchProduceAgreesWithTopic(t *testing.T) {
	t.Parallel()
	for _, size := range []string{"0", "512"} {
		r := run(t, nil, "bench", "produce", brokersFlag(t), "--records", "20000", "--warmup-records", "1000",
			"--record-size", size, "--keep", "--output", "json")
		if r.code != 0 {
			t.Fatal(r)
		}
		var res struct {
			Records       int64   `json:"records"`
			RecordsPerSec float64 `json:"records_per_sec"`
			MBPerSec      float64 `json:"mb_per_sec"`
			Warmup        int64   `json:"warmup_records"`
			TopicRecords  int64   `json:"topic_records"`
			Topic         string  `json:"topic"`
			Latency       struct {
				Avg, Max, P50, P95, P99, P999 float64
			} `json:"latency_ms"`
			Machine struct {
				CPUs  int    `json:"cpus"`
				Kafka string `json:"kafka"`
			} `json:"machine"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("%v\n%s", err, r)
		}
		var grew int64
		for _, o := range testenv.EndOffsets(t, res.Topic) {
			grew += o
		}
		if res.Records != 20000 || res.Warmup != 1000 || grew != 21000 || res.TopicRecords != grew {
			t.Errorf("record size %s: records %d + warmup %d, reported topic growth %d, actual growth %d; want 20000 + 1000 = 21000",
				size, res.Records, res.Warmup, res.TopicRecords, grew)
		}
		l := res.Latency
		if !(l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) || l.Max <= 0 || res.RecordsPerSec <= 0 || res.MBPerSec <= 0 {
			t.Errorf("record size %s: implausible figures %+v", size, res)
		}
		if res.Machine.CPUs == 0 || res.Machine.Kafka == "" {
			t.Errorf("machine facts missing: %+v", res.Machine)
		}
		if _, err := testenv.Admin(t).DeleteTopic(context.Background(), res.Topic); err != nil {
			t.Log(err)
		}
	}
}

// TestBenchSinkAgreesWithCount: bench sink's rows equal SELECT count(*),
// and it cleans up after itself.
func TestBenchSinkAgreesWithCount(t *testing.T) {
	t.Parallel()
	r := run(t, nil, "bench", "sink", brokersFlag(t), "--database-url", testenv.DatabaseURL(t),
		"--records", "20000", "--batch-rows", "1000", "--output", "json")
	if r.code != 0 {
		t.Fatal(r)
	}
	var res struct {
		Records, Rows, RowsCounted, Batches, RawRows int64
		RowsPerSec, RawPerSec, Ratio                 float64
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatalf("%v\n%s", err, r)
	}
	num := func(k string) float64 { f, _ := raw[k].(float64); return f }
	res.Records, res.Rows, res.RowsCounted = int64(num("records")), int64(num("rows")), int64(num("rows_counted"))
	res.Batches, res.RawRows = int64(num("batches")), int64(num("raw_copy_rows"))
	res.RowsPerSec, res.RawPerSec, res.Ratio = num("rows_per_sec"), num("raw_copy_rows_per_sec"), num("ratio_to_raw_copy")
	if res.Rows != 20000 || res.RowsCounted != 20000 || res.RawRows != 20000 {
		t.Errorf("rows %d, counted %d, raw copy %d: want 20000 each", res.Rows, res.RowsCounted, res.RawRows)
	}
	if res.Batches < 20 || res.RowsPerSec <= 0 || res.RawPerSec <= 0 || res.Ratio <= 0 {
		t.Errorf("implausible figures %+v", res)
	}
}

// TestBenchE2E: every stored row has a latency, read back from PostgreSQL.
func TestBenchE2E(t *testing.T) {
	t.Parallel()
	r := run(t, nil, "bench", "e2e", brokersFlag(t), "--database-url", testenv.DatabaseURL(t),
		"--rate", "200", "--duration", "5s", "--output", "json")
	if r.code != 0 {
		t.Fatal(r)
	}
	var res struct {
		Produced     int64 `json:"produced"`
		Stored       int64 `json:"stored"`
		LatencyCount int64 `json:"latency_samples"`
		MaxLag       int64 `json:"max_lag"`
		Latency      struct {
			Avg, Max, P50, P99 float64
		} `json:"latency_ms"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("%v\n%s", err, r)
	}
	if res.Produced < 900 || res.Stored != res.Produced || res.LatencyCount != res.Stored {
		t.Errorf("produced %d, stored %d, latencies %d: want about 1000, all stored, one latency each", res.Produced, res.Stored, res.LatencyCount)
	}
	if res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
		t.Errorf("implausible latency %+v", res.Latency)
	}
	if r := run(t, nil, "bench", "e2e", "--rate", "100"); r.code != 2 {
		t.Errorf("bench e2e without --duration: want exit 2\n%s", r)
	}
}
