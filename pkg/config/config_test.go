package config

import (
	"bufio"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/foodpipe/foodpipe/pkg/order"
	"go.yaml.in/yaml/v3"
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

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		env     map[string]string
		args    []string
		wantErr []string // substrings of the one-line error
	}{
		{name: "unknown file key", file: "brokerz: [a:1]\n", wantErr: []string{`unknown key "brokerz"`, `did you mean "brokers"`}},
		{name: "nested section is unknown", file: "kafka:\n  tls: true\n", wantErr: []string{`unknown key "kafka"`}},
		{name: "bad yaml", file: "rate: [1\n", wantErr: []string{"config file", "line"}},
		{name: "key twice", file: "topic: a\nrate: 5\ntopic: b\n", wantErr: []string{`key "topic" given twice`, "lines 1 and 3"}},
		{name: "not a mapping", file: "- topic\n", wantErr: []string{"config file", "want key: value lines"}},
		{name: "a scalar", file: "just text\n", wantErr: []string{"config file", "want key: value lines"}},
		{name: "two documents", file: "topic: a\n---\ntopic: b\nrate: 99\n", wantErr: []string{"more than one YAML document"}},
		{name: "an empty document first", file: "---\n---\ntopic: b\n", wantErr: []string{"more than one YAML document"}},
		{name: "bad number from file", file: "rate: fast\n", wantErr: []string{`invalid rate "fast"`, "foodpipe.yaml", "want a number"}},
		{name: "bad number from env", env: map[string]string{"FOODPIPE_COUNT": "ten"}, wantErr: []string{`invalid count "ten" (from FOODPIPE_COUNT): want a whole number`}},
		{name: "duration without unit", file: "duration: 10\n", wantErr: []string{"invalid duration", "with a unit"}},
		{name: "negative rate", args: []string{"--rate=-1"}, wantErr: []string{"invalid rate -1"}},
		{name: "zero partitions", args: []string{"--partitions=0"}, wantErr: []string{"invalid partitions 0: must be between 1 and"}},
		{name: "bad output", env: map[string]string{"FOODPIPE_OUTPUT": "xml"}, wantErr: []string{`invalid output "xml": must be one of text, json`}},
		{name: "broker without port", env: map[string]string{"FOODPIPE_BROKERS": "localhost"}, wantErr: []string{`invalid brokers "localhost": want host:port`}},
		{name: "broker port out of range", env: map[string]string{"FOODPIPE_BROKERS": "h:70000"}, wantErr: []string{"port must be"}},
		{name: "bad topic", env: map[string]string{"FOODPIPE_TOPIC": "orders!"}, wantErr: []string{`invalid topic "orders!"`}},
		{name: "derived dlq name too long", env: map[string]string{"FOODPIPE_TOPIC": strings.Repeat("a", 246)},
			wantErr: []string{"invalid topic", "its dead-letter topic " + strings.Repeat("a", 246) + ".dlq", "249", "--dlq-topic"}},
		{name: "group of spaces", env: map[string]string{"FOODPIPE_GROUP": "   "}, wantErr: []string{`invalid group "   "`, "only spaces"}},
		{name: "instance id of spaces", env: map[string]string{"FOODPIPE_INSTANCE_ID": " "}, wantErr: []string{`invalid instance-id " "`, "only spaces"}},
		{name: "dlq equals topic", env: map[string]string{"FOODPIPE_DLQ_TOPIC": "food-orders"}, wantErr: []string{"must differ from topic"}},
		// Kafka refuses a topic whose name differs from an existing one only
		// in '.' versus '_' (their metric names would clash).
		{name: "dlq collides with topic", env: map[string]string{"FOODPIPE_TOPIC": "food_orders", "FOODPIPE_DLQ_TOPIC": "food.orders"},
			wantErr: []string{`invalid dlq-topic "food.orders"`, `collides with topic "food_orders"`}},
		// retention.ms is whole milliseconds: 500µs would become 0, "delete at once".
		// Values the Kafka client, the order generator or PostgreSQL would
		// refuse at run time (exit 1, in their words) are usage errors.
		{name: "delivery timeout under franz-go's 1s", env: map[string]string{"FOODPIPE_DELIVERY_TIMEOUT": "999ms"}, wantErr: []string{"invalid delivery-timeout 999ms: must be between 1s and"}},
		{name: "linger over franz-go's minute", env: map[string]string{"FOODPIPE_LINGER": "61s"}, wantErr: []string{"invalid linger 1m1s: must be between 0s and 1m0s"}},
		{name: "fetch over franz-go's read limit", env: map[string]string{"FOODPIPE_FETCH_MAX_BYTES": "104857601"}, wantErr: []string{"invalid fetch-max-bytes 104857601: must be between 1024 and 104857600"}},
		{name: "rebalance timeout under 100ms", env: map[string]string{"FOODPIPE_REBALANCE_TIMEOUT": "1ms"}, wantErr: []string{"invalid rebalance-timeout 1ms: must be between 100ms and"}},
		{name: "session timeout under 100ms", env: map[string]string{"FOODPIPE_SESSION_TIMEOUT": "50ms", "FOODPIPE_HEARTBEAT_INTERVAL": "10ms"}, wantErr: []string{"invalid session-timeout 50ms: must be between 100ms and"}},
		{name: "session timeout past int32 ms", env: map[string]string{"FOODPIPE_SESSION_TIMEOUT": "1000h"}, wantErr: []string{"invalid session-timeout 1000h0m0s: must be between 100ms and 596h31m23.647s"}},
		{name: "lock timeout past int32 ms", env: map[string]string{"FOODPIPE_LOCK_TIMEOUT": "597h"}, wantErr: []string{"invalid lock-timeout 597h0m0s: must be between 1ms and 596h31m23.647s"}},
		{name: "heartbeat that spins", env: map[string]string{"FOODPIPE_HEARTBEAT_INTERVAL": "1ns"}, wantErr: []string{"invalid heartbeat-interval 1ns: must be between 100ms and"}},
		{name: "progress that floods", env: map[string]string{"FOODPIPE_PROGRESS_INTERVAL": "1ns"}, wantErr: []string{"invalid progress-interval 1ns: must be 0 (never) or at least 100ms"}},
		{name: "more customers than the generator has", env: map[string]string{"FOODPIPE_CUSTOMERS": "1000001"}, wantErr: []string{"invalid customers 1000001: must be between 1 and 1000000"}},
		{name: "retention under a millisecond", env: map[string]string{"FOODPIPE_RETENTION": "500us"}, wantErr: []string{"invalid retention 500µs: must be at least 1ms"}},
		{name: "dlq retention under a millisecond", env: map[string]string{"FOODPIPE_DLQ_RETENTION": "999us"}, wantErr: []string{"invalid dlq-retention 999µs: must be at least 1ms"}},
		{name: "bad sasl", env: map[string]string{"FOODPIPE_KAFKA_SASL_MECHANISM": "GSSAPI"}, wantErr: []string{`invalid kafka-sasl-mechanism "GSSAPI"`}},
		{name: "sasl needs user", env: map[string]string{"FOODPIPE_KAFKA_SASL_MECHANISM": "plain"}, wantErr: []string{"kafka-username", "required"}},
		{name: "sasl needs a password", env: map[string]string{"FOODPIPE_KAFKA_SASL_MECHANISM": "plain", "FOODPIPE_KAFKA_USERNAME": "u"},
			wantErr: []string{`invalid kafka-password ""`, "is required with kafka-sasl-mechanism"}},
		{name: "a password needs sasl", env: map[string]string{"FOODPIPE_KAFKA_PASSWORD": "s3cret"},
			wantErr: []string{`invalid kafka-sasl-mechanism ""`, "is required with kafka-password"}},
		{name: "tls off beside a CA file", env: map[string]string{"FOODPIPE_KAFKA_TLS": "false", "FOODPIPE_KAFKA_CA_FILE": "/ca.pem"},
			wantErr: []string{"invalid kafka-tls false", "contradicts"}},
		{name: "key without cert", file: "kafka-key-file: k.pem\n", wantErr: []string{"needs kafka-cert-file"}},
		{name: "bad acks", file: "acks: 2\n", wantErr: []string{`invalid acks "2"`}},
		{name: "bad log level", file: "log-level: loud\n", wantErr: []string{`invalid log-level "loud"`}},
		{name: "zero throughput", file: "throughput: 0\n", wantErr: []string{"invalid throughput 0"}},
		{name: "empty env var is not blamed", env: map[string]string{"FOODPIPE_RATE": ""}, file: "rate: fast\n", wantErr: []string{`invalid rate "fast" (from `, `foodpipe.yaml)`}},
		{name: "secret value never echoed", env: map[string]string{"FOODPIPE_KAFKA_PASSWORD": ""}, file: "kafka-password: [s3cret]\n", wantErr: []string{"invalid kafka-password", redacted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			opts := Options{}
			if tt.file != "" {
				opts.File = writeFile(t, tt.file)
			}
			fs := flagSet(t, tt.args, "rate", "partitions")
			_, err := Load(fs, opts)
			if err == nil {
				t.Fatalf("Load succeeded, want an error containing %q", tt.wantErr)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			if strings.Contains(msg, "s3cret") {
				t.Errorf("error shows the secret: %q", msg)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
		})
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

var update = flag.Bool("update", false, "rewrite config.example.yaml from the Config struct")

// TestExampleMatchesConfig keeps config.example.yaml and the Config struct in
// step: the file is exactly what Example renders (go test -update rewrites
// it), every key is documented by a comment, and loading it yields exactly
// the defaults.
func TestExampleMatchesConfig(t *testing.T) {
	const example = "../../config.example.yaml"
	rendered, err := Example()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(example, rendered, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(rendered) {
		t.Errorf("config.example.yaml is not what Example renders; run go test ./pkg/config -run TestExampleMatchesConfig -update")
	}

	// Independently of Example: key lines in Config order, each with a
	// comment above it.
	var keys []string
	prevComment := false
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
			prevComment = true
			continue
		case strings.TrimSpace(line) == "":
		default:
			key, _, ok := strings.Cut(line, ":")
			if !ok {
				t.Fatalf("example line %q is not key: value", line)
			}
			if !prevComment {
				t.Errorf("example key %q has no comment above it", key)
			}
			keys = append(keys, key)
		}
		prevComment = false
	}
	var want []string
	for _, k := range Keys() {
		want = append(want, k.Name)
	}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("example keys\n%q\nwant (Config struct order)\n%q", keys, want)
	}

	cfg, err := Load(nil, Options{File: example})
	if err != nil {
		t.Fatal(err)
	}
	cfg.File, cfg.set = "", nil // where values came from is not a value
	if def := Default(); !reflect.DeepEqual(*cfg, def) {
		t.Errorf("example values differ from the defaults:\n got %+v\nwant %+v", *cfg, def)
	}
}

func TestRedaction(t *testing.T) {
	tests := []struct {
		in      string
		secrets []string // no part of any may be shown
		keep    string   // what must survive
	}{
		{"postgres://app:hunter2@db:5432/orders?sslmode=disable", []string{"hunter2"}, "@db:5432/orders?sslmode=disable"},
		{"postgresql://app:hunter2@db/orders", []string{"hunter2"}, "postgresql://app:"},
		{"postgres://db/orders?password=hunter2&sslmode=require", []string{"hunter2"}, "sslmode=require"},
		{"postgres://app@db/orders?sslpassword=keypass", []string{"keypass"}, "app@db"},
		{"host=db user=app password=hunter2 dbname=orders", []string{"hunter2"}, "dbname=orders"},
		{"host=db password='hunter 2' dbname=orders", []string{"hunter", " 2'"}, "dbname=orders"},
		{`host=db password=First\ SecondHalfSecret dbname=orders`, []string{"First", "SecondHalfSecret"}, "dbname=orders"},
		{`host=db password = 'it\'s a secret' dbname=orders`, []string{"it", "s a secret"}, "dbname=orders"},
		{`password=a\\b\ c host=db`, []string{`a\`, `b\ c`, "b c"}, "host=db"},
		{"host=db sslpassword=keypass", []string{"keypass"}, "host=db"},
		{"host=db password='unterminated secret", []string{"unterminated", "secret"}, ""},
		{"postgres://app:%zz@db/orders", []string{"%zz"}, ""},
		// URLs of other drivers, refused later, but shown by config show
		// and in the refusal.
		{"jdbc:postgresql://db:5432/orders?user=app&password=hunter2", []string{"hunter2"}, "db:5432/orders"},
		{"postgresql+psycopg2://app:hunter2@db:5432/orders", []string{"hunter2"}, "@db:5432/orders"},
		{"mysql://app:hunter2@db/orders", []string{"hunter2"}, "@db/orders"},
	}
	for _, tt := range tests {
		got := RedactDSN(tt.in)
		for _, secret := range tt.secrets {
			if strings.Contains(got, secret) {
				t.Errorf("RedactDSN(%q) = %q: shows %q", tt.in, got, secret)
			}
		}
		if !strings.Contains(got, redacted) || !strings.Contains(got, tt.keep) {
			t.Errorf("RedactDSN(%q) = %q: want the password replaced by %s and %q kept", tt.in, got, redacted, tt.keep)
		}
	}
	secrets := DSNSecrets(`host=db password=First\ SecondHalfSecret sslpassword='k p'`)
	if strings.Join(secrets, "|") != "First SecondHalfSecret|k p" {
		t.Errorf("DSNSecrets = %q", secrets)
	}
	if got := RedactDSN("postgres://app@db/orders"); got != "postgres://app@db/orders" {
		t.Errorf("a URL without password changed: %q", got)
	}

	cfg := Default()
	cfg.Kafka.SASLMechanism, cfg.Kafka.Username, cfg.Kafka.Password = "PLAIN", "app", "kafka-secret"
	cfg.Postgres.DatabaseURL = "postgres://app:pg-secret@db/orders"
	y, err := cfg.MarshalYAML()
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{string(y), string(j)} {
		if strings.Contains(out, "kafka-secret") || strings.Contains(out, "pg-secret") {
			t.Errorf("secret printed:\n%s", out)
		}
	}
	if cfg.Kafka.Password != "kafka-secret" {
		t.Error("Redacted modified the original config")
	}

	// The YAML printed by config show is itself a valid config file.
	var m map[string]any
	if err := yaml.Unmarshal(y, &m); err != nil {
		t.Fatal(err)
	}
	if m["linger"] != "10ms" || m["rate"] != 10 {
		t.Errorf("yaml values: linger=%v rate=%v", m["linger"], m["rate"])
	}
	reloaded, err := Load(nil, Options{File: writeFile(t, string(y))})
	if err != nil {
		t.Fatalf("config show output does not load back: %v", err)
	}
	if reloaded.KafkaProducer.Linger != 10*time.Millisecond {
		t.Errorf("reloaded linger = %v", reloaded.KafkaProducer.Linger)
	}

	// The dead-letter topic derived from the topic is shown by its
	// effective name but stays derived in the file: another topic used
	// with that file gets its own dead-letter topic, not this one's.
	if !strings.Contains(string(y), "food-orders.dlq") || !strings.Contains(string(j), `"dlq-topic":"food-orders.dlq"`) {
		t.Errorf("effective dead-letter topic not shown:\n%s\n%s", y, j)
	}
	t.Setenv("FOODPIPE_TOPIC", "other")
	if reloaded, err = Load(nil, Options{File: writeFile(t, string(y))}); err != nil || reloaded.Kafka.DLQ() != "other.dlq" {
		t.Errorf("config show output with topic other: dead-letter topic %q (err %v), want other.dlq", reloaded.Kafka.DLQ(), err)
	}
	cfg.Kafka.DLQTopic = "mine.dlq"
	if y, err = cfg.MarshalYAML(); err != nil || !strings.Contains(string(y), "dlq-topic: mine.dlq\n") {
		t.Errorf("a dead-letter topic set is not kept (err %v):\n%s", err, y)
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

// TestSecretsInAReadableFile: a config file that holds a password (the
// Kafka one, or one inside database-url) and that other users may read is
// flagged, as libpq flags a loose ~/.pgpass; a private one, or one without
// a password, is not.
func TestSecretsInAReadableFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes do not say who may read a file on Windows")
	}
	const sasl = "kafka-sasl-mechanism: PLAIN\nkafka-username: app\n"
	tests := []struct {
		content string
		mode    os.FileMode
		want    bool
	}{
		{sasl + "kafka-password: s3cret\n", 0o644, true},
		{sasl + "kafka-password: s3cret\n", 0o640, true},
		{sasl + "kafka-password: s3cret\n", 0o600, false},
		{sasl + "kafka-password: 123456\n", 0o644, true},
		{"database-url: postgres://app:s3cret@db/orders\n", 0o604, true},
		{"database-url: host=db user=app password=s3cret\n", 0o644, true},
		{"database-url: postgres://app@db/orders\n", 0o644, false},
		{"rate: 5\n", 0o644, false},
	}
	for _, tt := range tests {
		path := writeFile(t, tt.content)
		if err := os.Chmod(path, tt.mode); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(nil, Options{File: path})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.SecretsReadable != tt.want {
			t.Errorf("%q at %v: SecretsReadable = %v, want %v", tt.content, tt.mode, cfg.SecretsReadable, tt.want)
		}
	}
}

// TestWithoutPasswords: the passwords go, keyword and all, whatever their
// quoting; everything else stays as written.
func TestWithoutPasswords(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://app:hunter2@db:5432/orders?sslmode=disable", "postgres://app@db:5432/orders?sslmode=disable"},
		{"postgres://db/orders?password=hunter2", "postgres://db/orders"},
		{"postgres://app@db/orders", "postgres://app@db/orders"},
		{"host=db password=hunter2 dbname=orders", "host=db dbname=orders"},
		{"host=db password = 'hunter 2' application_name='a  b'", "host=db application_name='a  b'"},
		{`password=First\ Second host=db sslpassword=k`, "host=db"},
		{"host=db password='unterminated secret", redacted},
	}
	for _, tt := range tests {
		if got := WithoutPasswords(tt.in); got != tt.want {
			t.Errorf("WithoutPasswords(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestCustomersLimitIsTheGenerators: config refuses what the generator
// would refuse at run time, no more and no less.
func TestCustomersLimitIsTheGenerators(t *testing.T) {
	if maxCustomers != order.MaxCustomers {
		t.Errorf("config allows %d customers, the generator %d", maxCustomers, order.MaxCustomers)
	}
}
