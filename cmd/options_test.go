package cmd

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/pipeline"
)

// loaded parses args with foodpipe's own command tree and loads the
// configuration the way RunE does, with no I/O beyond the environment: it
// returns what every command's optionsFrom builds its options from.
func loaded(t *testing.T, env map[string]string, args ...string) (*App, *env) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", home)
	t.Chdir(home) // no ./foodpipe.yaml
	for _, k := range []string{"FOODPIPE_CONFIG", "FOODPIPE_OUTPUT", "FOODPIPE_BROKERS", "FOODPIPE_DATABASE_URL"} {
		t.Setenv(k, "")
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	app := &App{Version: "test", Migrations: fstest.MapFS{}, Stdout: io.Discard, Stderr: &bytes.Buffer{}}
	c, rest, err := newRootCmd(app).Find(args)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ParseFlags(rest); err != nil {
		t.Fatal(err)
	}
	e, err := app.load(c)
	if err != nil {
		t.Fatalf("load %v: %v", args, err)
	}
	return app, e
}

func TestConsumeOptions(t *testing.T) {
	app, e := loaded(t, map[string]string{"FOODPIPE_SESSION_TIMEOUT": "7s"},
		"consume", "--topic", "pizza", "--group", "g1", "--instance-id", "c-1", "--batch-rows", "700",
		"--batch-bytes", "65536", "--fetch-max-bytes", "4096", "--lock-timeout", "2s", "--offset-out-of-range", "latest",
		"--heartbeat-interval", "2s", "--rebalance-timeout", "40s", "--progress-interval", "1s",
		"--database-url", "postgres://u@db/x", "--output", "json", "--brokers", "k1:9092,k2:9092")
	o := consumeOptionsFrom(app, e)
	want := pipeline.Options{
		Topic: "pizza", DLQTopic: "pizza.dlq", Group: "g1", InstanceID: "c-1",
		BatchRows: 700, BatchBytes: 65536, FetchMaxBytes: 4096,
		SessionTimeout: 7 * time.Second, HeartbeatInterval: 2 * time.Second, RebalanceTimeout: 40 * time.Second,
		OutOfRange: pipeline.OutOfRangeLatest, RetryMin: 100 * time.Millisecond, RetryMax: 30 * time.Second,
		StopGrace: 4 * time.Second, ProgressInterval: time.Second,
	}
	if got := o.consume; got.Topic != want.Topic || got.DLQTopic != want.DLQTopic || got.Group != want.Group ||
		got.InstanceID != want.InstanceID || got.BatchRows != want.BatchRows || got.BatchBytes != want.BatchBytes ||
		got.FetchMaxBytes != want.FetchMaxBytes || got.SessionTimeout != want.SessionTimeout ||
		got.HeartbeatInterval != want.HeartbeatInterval || got.RebalanceTimeout != want.RebalanceTimeout ||
		got.OutOfRange != want.OutOfRange || got.RetryMin != want.RetryMin || got.RetryMax != want.RetryMax ||
		got.StopGrace != want.StopGrace || got.ProgressInterval != want.ProgressInterval {
		t.Errorf("pipeline options\n got %+v\nwant %+v", got, want)
	}
	if o.lockWait != 2*time.Second || o.pg.DatabaseURL != "postgres://u@db/x" || o.output != "json" {
		t.Errorf("lock wait %v, database %q, output %q", o.lockWait, o.pg.DatabaseURL, o.output)
	}
	if b := o.cluster.Config.Brokers; len(b) != 2 || b[0] != "k1:9092" || o.cluster.ClientID != "foodpipe/test" {
		t.Errorf("cluster %+v", o.cluster)
	}
	if o.consume.Pause != nil {
		t.Errorf("test pauses without FOODPIPE_TEST_PAUSE: %v", o.consume.Pause)
	}
	app, e = loaded(t, map[string]string{"FOODPIPE_TEST_PAUSE": "in-transaction=300ms,after-commit=1s,bogus"}, "consume")
	if p := consumeOptionsFrom(app, e).consume.Pause; len(p) != 2 || p[pipeline.PauseInTx] != 300*time.Millisecond ||
		p[pipeline.PauseAfterCommit] != time.Second {
		t.Errorf("FOODPIPE_TEST_PAUSE: %v", p)
	}
	if o.job.StopAtEnd || o.job.WaitForTopic {
		t.Errorf("batch job by default: %+v", o.job)
	}
	app, e = loaded(t, map[string]string{"FOODPIPE_WAIT_FOR_TOPIC": "true"}, "consume", "--stop-at-end")
	if j := consumeOptionsFrom(app, e).job; !j.StopAtEnd || !j.WaitForTopic {
		t.Errorf("--stop-at-end, FOODPIPE_WAIT_FOR_TOPIC: %+v", j)
	}
	// --dlq-topic wins over <topic>.dlq.
	app, e = loaded(t, nil, "consume", "--topic", "pizza", "--dlq-topic", "pizza-dead")
	if got := consumeOptionsFrom(app, e).consume.DLQTopic; got != "pizza-dead" {
		t.Errorf("--dlq-topic: %q", got)
	}
}

func TestProduceOptions(t *testing.T) {
	app, e := loaded(t, map[string]string{"FOODPIPE_RATE": "40"},
		"produce", "--count", "12", "--duration", "3s", "--seed", "9", "--customers", "5", "--acks", "leader",
		"--linger", "0s", "--flush-timeout", "2s", "--progress-interval", "0", "--topic", "t")
	o := produceOptionsFrom(app, e)
	p := o.produce
	if p.Rate != 40 || p.Count != 12 || p.Duration != 3*time.Second || p.FlushTimeout != 2*time.Second || p.ProgressInterval != 0 {
		t.Errorf("produce options %+v", p)
	}
	if o.seed != 9 || o.customers != 5 || o.topic != "t" || o.producer.Acks != "leader" || o.producer.Linger != 0 {
		t.Errorf("seed %d, customers %d, topic %q, producer %+v", o.seed, o.customers, o.topic, o.producer)
	}
}

func TestTopicsInitOptions(t *testing.T) {
	app, e := loaded(t, nil, "topics", "init", "--topic", "t", "--partitions", "6", "--replication-factor", "3",
		"--retention", "24h", "--add-partitions")
	o := topicsInitOptionsFrom(app, e)
	if len(o.specs) != 2 || !o.addPartitions {
		t.Fatalf("options %+v", o)
	}
	orders, dlq := o.specs[0], o.specs[1]
	if orders.Name != "t" || orders.Partitions != 6 || orders.ReplicationFactor != 3 ||
		orders.Configs["retention.ms"] != "86400000" || orders.Configs["min.insync.replicas"] != "2" {
		t.Errorf("orders topic %+v", orders)
	}
	if dlq.Name != "t.dlq" || dlq.RoomFor != "t" || dlq.Configs["retention.ms"] != "2592000000" {
		t.Errorf("dead-letter topic %+v", dlq)
	}
}

func TestDBOptions(t *testing.T) {
	for _, args := range [][]string{{"db", "migrate"}, {"db", "status"}} {
		app, e := loaded(t, map[string]string{"FOODPIPE_DATABASE_URL": "host=db user=u"}, append(args, "--db-timeout", "3s")...)
		o := dbOptionsFrom(app, e)
		if o.pg.DatabaseURL != "host=db user=u" || o.pg.ConnectTimeout != 3*time.Second || o.migrations == nil {
			t.Errorf("%v: %+v", args, o)
		}
	}
}

func TestLagOptions(t *testing.T) {
	app, e := loaded(t, map[string]string{"FOODPIPE_MAX_LAG": "500"},
		"lag", "--topic", "t", "--group", "g", "--database-url", "postgres://u@db/x", "--output", "json")
	o := lagOptionsFrom(app, e)
	if o.topic != "t" || o.group != "g" || o.maxLag != 500 || o.output != "json" || o.pg.DatabaseURL != "postgres://u@db/x" ||
		o.migrations == nil {
		t.Errorf("lag options %+v", o)
	}
	app, e = loaded(t, map[string]string{"FOODPIPE_MAX_LAG": ""}, "lag")
	if o := lagOptionsFrom(app, e); o.maxLag != -1 || o.group != "orders" || o.topic != "food-orders" {
		t.Errorf("lag defaults %+v, want no limit, group orders, topic food-orders", o)
	}
}

func TestDLQOptions(t *testing.T) {
	app, e := loaded(t, nil, "dlq", "inspect", "--topic", "t", "--class", "store, decode", "--since", "90m", "--output", "json")
	i := dlqInspectOptionsFrom(app, e)
	if i.inspect.Topic != "t.dlq" || !slices.Equal(i.inspect.Classes, []string{"store", "decode"}) ||
		i.since.Ago != 90*time.Minute || i.output != "json" {
		t.Errorf("dlq inspect options %+v", i)
	}
	app, e = loaded(t, nil, "dlq", "inspect", "--dlq-topic", "dead", "--since", "2026-11-27T13:00:00Z")
	i = dlqInspectOptionsFrom(app, e)
	if i.inspect.Topic != "dead" || len(i.inspect.Classes) != 0 || !i.since.At.Equal(time.Date(2026, 11, 27, 13, 0, 0, 0, time.UTC)) {
		t.Errorf("dlq inspect options %+v", i)
	}

	app, e = loaded(t, map[string]string{"FOODPIPE_DRY_RUN": "true"}, "dlq", "replay", "--topic", "t", "--class", "validate",
		"--replay-group", "ops")
	r := dlqReplayOptionsFrom(app, e)
	if r.replay.Topic != "t.dlq" || !slices.Equal(r.replay.Classes, []string{"validate"}) || r.replay.GroupPrefix != "ops" || !r.replay.DryRun {
		t.Errorf("dlq replay options %+v", r)
	}
	app, e = loaded(t, map[string]string{"FOODPIPE_DRY_RUN": ""}, "dlq", "replay")
	if r := dlqReplayOptionsFrom(app, e); r.replay.GroupPrefix != "foodpipe-dlq-replay" || r.replay.DryRun || len(r.replay.Classes) != 0 {
		t.Errorf("dlq replay defaults %+v", r)
	}
}

func TestBenchOptions(t *testing.T) {
	app, e := loaded(t, nil, "bench", "produce", "--records", "1000", "--warmup-records", "10", "--record-size", "512",
		"--throughput", "500", "--keep", "--partitions", "6")
	p := benchProduceOptionsFrom(app, e)
	if p.bench.Records != 1000 || p.bench.WarmupRecords != 10 || p.bench.RecordSize != 512 || p.bench.Throughput != 500 ||
		!p.sandbox.Keep || p.sandbox.Topics.Partitions != 6 || p.sandbox.DeadLetters || p.sandbox.Postgres != nil {
		t.Errorf("bench produce options %+v", p)
	}

	app, e = loaded(t, nil, "bench", "sink", "--records", "2000", "--batch-rows", "100", "--database-url", "postgres://u@db/x")
	s := benchSinkOptionsFrom(app, e)
	if s.records != 2000 || s.consume.BatchRows != 100 || !s.sandbox.DeadLetters || !s.sandbox.RawTable ||
		s.sandbox.Postgres == nil || s.sandbox.Postgres.DatabaseURL != "postgres://u@db/x" {
		t.Errorf("bench sink options %+v", s)
	}

	app, e = loaded(t, nil, "bench", "e2e", "--rate", "1000", "--duration", "1m", "--linger", "5ms")
	x := benchE2EOptionsFrom(app, e)
	if x.generator.Rate != 1000 || x.generator.Duration != time.Minute || x.producer.Linger != 5*time.Millisecond ||
		x.sandbox.RawTable || !x.sandbox.DeadLetters {
		t.Errorf("bench e2e options %+v", x)
	}
}

// TestMisspeltEnvironmentVariableWarns: FOODPIPE_SESION_TIMEOUT sets
// nothing; the command says so, naming the variable it resembles, and the
// setting keeps its default.
func TestMisspeltEnvironmentVariableWarns(t *testing.T) {
	app, e := loaded(t, map[string]string{"FOODPIPE_SESION_TIMEOUT": "3s"}, "consume", "--log-format", "json")
	if e.cfg.Consume.SessionTimeout != config.Default().Consume.SessionTimeout {
		t.Errorf("session-timeout = %v, want the default", e.cfg.Consume.SessionTimeout)
	}
	want := `"msg":"environment variable ignored: it is not a foodpipe setting","variable":"FOODPIPE_SESION_TIMEOUT","did_you_mean":"FOODPIPE_SESSION_TIMEOUT"}`
	if got := app.Stderr.(*bytes.Buffer).String(); !strings.Contains(got, want) {
		t.Errorf("stderr %q does not contain %q", got, want)
	}
}

// TestReadableSecretsWarn: a config file with a password that other users
// may read is named in a warning; the command still runs.
func TestReadableSecretsWarn(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes do not say who may read a file on Windows")
	}
	file := filepath.Join(t.TempDir(), "foodpipe.yaml")
	if err := os.WriteFile(file, []byte("kafka-sasl-mechanism: PLAIN\nkafka-username: app\nkafka-password: s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	app, _ := loaded(t, map[string]string{"FOODPIPE_CONFIG": file}, "consume", "--log-format", "json")
	want := `"msg":"the config file holds a password and other users may read it: chmod 600 it","file":` + strconv.Quote(file)
	got := app.Stderr.(*bytes.Buffer).String()
	if !strings.Contains(got, want) || strings.Contains(got, "s3cret") {
		t.Errorf("stderr %q: want %q, and never the password", got, want)
	}
}

// TestBenchE2EHelpOffersNoRefusedValue: bench e2e needs a rate and a
// duration, so its help must not offer the producer's "0: no limit".
func TestBenchE2EHelpOffersNoRefusedValue(t *testing.T) {
	c, _, err := newRootCmd(&App{}).Find([]string{"bench", "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"rate", "duration"} {
		if u := c.Flags().Lookup(name).Usage; strings.Contains(u, "0:") || !strings.Contains(u, "required") {
			t.Errorf("--%s: %q offers 0 or does not say it is required", name, u)
		}
	}
	for _, args := range [][]string{{"--rate", "0", "--duration", "5s"}, {"--duration", "5s"}, {"--rate", "100"}} {
		app, e := loaded(t, nil, append([]string{"bench", "e2e"}, args...)...)
		if err := benchE2EOptionsFrom(app, e).check(); err == nil || exitCode(t.Context(), err) != ExitUsage {
			t.Errorf("%v: err %v, want a usage error", args, err)
		}
	}
	if def := c.Flags().Lookup("rate").DefValue; def != "0" {
		t.Errorf("help shows a default rate of %s for a flag that is required", def)
	}
}
