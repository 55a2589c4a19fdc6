package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/foodpipe/foodpipe/pkg/order"
)

// writeFile writes a config file into a fresh temp dir and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "foodpipe.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// flagSet defines the named keys as flags and parses args, like a command.
func flagSet(t *testing.T, args []string, names ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddFlags(fs, names...)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestLoadPrecedence(t *testing.T) {
	// rate is set by all four sources, count by three, customers by two,
	// seed by one: each must come from the strongest source that sets it.
	file := writeFile(t, "rate: 30\ncount: 300\ncustomers: 3000\nbrokers: [file:1, file:2]\n")
	t.Setenv("FOODPIPE_RATE", "20")
	t.Setenv("FOODPIPE_COUNT", "200")
	t.Setenv("FOODPIPE_BROKERS", "env:1,env:2")
	fs := flagSet(t, []string{"--rate", "10"}, "rate", "count", "customers", "seed", "brokers")

	cfg, err := Load(fs, Options{File: file})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key       string
		got, want any
	}{
		{"rate (flag)", cfg.Generator.Rate, 10.0},
		{"count (env)", cfg.Generator.Count, int64(200)},
		{"customers (file)", cfg.Generator.Customers, 3000},
		{"seed (default)", cfg.Generator.Seed, int64(42)},
		{"brokers (env list)", cfg.Kafka.Brokers, []string{"env:1", "env:2"}},
		{"file recorded", cfg.File, file},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.key, tt.got, tt.want)
		}
	}
}

func TestLoadSearchFiles(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.yaml")
	second := writeFile(t, "topic: from-second\n")
	third := writeFile(t, "topic: from-third\n")

	cfg, err := Load(nil, Options{SearchFiles: []string{missing, second, third}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.Topic != "from-second" || cfg.File != second {
		t.Errorf("topic %q from %q, want from-second from %q", cfg.Kafka.Topic, cfg.File, second)
	}

	cfg, err = Load(nil, Options{SearchFiles: []string{missing}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*cfg, Default()) {
		t.Errorf("no file found: got %+v, want the defaults", *cfg)
	}
}

// TestLoadKeepsTheTextOfStrings: YAML reads 007, 0123, 1.50, 1e3 and 0x1F
// as numbers; a string setting gets the text as written, not the number
// (group: 007 must not become group 7, a group that starts over).
func TestLoadKeepsTheTextOfStrings(t *testing.T) {
	file := writeFile(t, "group: 007\ntopic: \"0123\"\ninstance-id: 0x1F\ndlq-topic: 1.50\nreplay-group: 1e3\n"+
		"database-url: 12345678901234567890123\nrate: 0x10\npartitions: 12\n")
	cfg, err := Load(nil, Options{File: file})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key       string
		got, want any
	}{
		{"group", cfg.Consume.Group, "007"},
		{"topic (quoted)", cfg.Kafka.Topic, "0123"},
		{"instance-id", cfg.Consume.InstanceID, "0x1F"},
		{"dlq-topic", cfg.Kafka.DLQTopic, "1.50"},
		{"replay-group", cfg.DLQ.ReplayGroup, "1e3"},
		{"database-url", cfg.Postgres.DatabaseURL, "12345678901234567890123"},
		{"rate (a number)", cfg.Generator.Rate, 16.0},
		{"partitions (a number)", cfg.Topics.Partitions, 12},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.key, tt.got, tt.want)
		}
	}
}

func TestLoadMissingExplicitFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(nil, Options{File: path})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("err = %v, want one naming %s and the missing file", err, path)
	}
}

// TestLoadRefusesNonRegularFiles: a named pipe (or a directory, a device)
// given as the config file is refused at once instead of blocking the read.
func TestLoadRefusesNonRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, dir} {
		done := make(chan error, 1)
		go func() {
			_, err := Load(nil, Options{File: path})
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("Load(%s) = %v, want an error naming it as not a regular file", path, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("Load(%s) blocked for a minute", path)
		}
	}
	// Found by search rather than named, it is refused the same way.
	if _, err := Load(nil, Options{SearchFiles: []string{fifo}}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("search found a named pipe: err = %v", err)
	}
}

func TestLoadNormalises(t *testing.T) {
	t.Setenv("FOODPIPE_ACKS", "-1")
	t.Setenv("FOODPIPE_KAFKA_SASL_MECHANISM", "scram-sha-512")
	t.Setenv("FOODPIPE_KAFKA_USERNAME", "u")
	t.Setenv("FOODPIPE_KAFKA_PASSWORD", "p")
	t.Setenv("FOODPIPE_KAFKA_CA_FILE", "/ca.pem")
	t.Setenv("FOODPIPE_COMPRESSION", "ZSTD")
	t.Setenv("FOODPIPE_OUTPUT", "JSON")
	t.Setenv("FOODPIPE_LOG_FORMAT", "Text")
	cfg, err := Load(nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{cfg.KafkaProducer.Acks, cfg.Kafka.SASLMechanism, cfg.KafkaProducer.Compression, cfg.Output, cfg.Log.Format}; !reflect.DeepEqual(got, []string{"all", "SCRAM-SHA-512", "zstd", "json", "text"}) {
		t.Errorf("got %q", got)
	}
	if !cfg.Kafka.TLS {
		t.Error("kafka-tls false beside a CA file, which implies it")
	}
	if cfg.Kafka.DLQ() != "food-orders.dlq" {
		t.Errorf("DLQ() = %q, want food-orders.dlq", cfg.Kafka.DLQ())
	}
}

// TestUnknownEnv: a FOODPIPE_ variable that is no setting is listed, with
// the setting it was likely meant to be; the settings themselves, and the
// variables foodpipe's config file option, tests and test bed read, are not.
func TestUnknownEnv(t *testing.T) {
	got := UnknownEnv([]string{
		"FOODPIPE_BROKRES=localhost:9092", "FOODPIPE_BROKERS=localhost:9092", "FOODPIPE_SESION_TIMEOUT=5s",
		"FOODPIPE_CONFIG=foodpipe.yaml", "FOODPIPE_TEST_BROKERS=x", "FOODPIPE_TESTBED_DIR=/tmp/t",
		"FOODPIPE_REQUIRE_SERVICES=1", "FOODPIPE_BENCH_ROWS=5000", "FOODPIPE_NOTHING_LIKE_IT=1",
		"PATH=/bin", "foodpipe_rate=3", "FOODPIPE_RATE",
	})
	want := []EnvTypo{
		{Var: "FOODPIPE_BROKRES", Suggest: "FOODPIPE_BROKERS"},
		{Var: "FOODPIPE_SESION_TIMEOUT", Suggest: "FOODPIPE_SESSION_TIMEOUT"},
		{Var: "FOODPIPE_NOTHING_LIKE_IT"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("UnknownEnv = %+v, want %+v", got, want)
	}
}

// TestCustomersLimitIsTheGenerators: config refuses what the generator
// would refuse at run time, no more and no less.
func TestCustomersLimitIsTheGenerators(t *testing.T) {
	if maxCustomers != order.MaxCustomers {
		t.Errorf("config allows %d customers, the generator %d", maxCustomers, order.MaxCustomers)
	}
}
