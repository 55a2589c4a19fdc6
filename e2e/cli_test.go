package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestHelpListsEveryCommand(t *testing.T) {
	t.Parallel()
	r := run(t, nil, "--help")
	if r.code != 0 {
		t.Fatal(r)
	}
	for _, c := range []string{"produce", "consume", "lag", "dlq", "topics", "db", "bench", "config", "version", "completion"} {
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

// TestConfigShowSaysWhatIsEffective: config show names the file it read
// and prints the effective dead-letter topic, not an empty default.
func TestConfigShowSaysWhatIsEffective(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "foodpipe.yaml")
	if err := os.WriteFile(file, []byte("topic: pizza\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, "config", "show", "--config", file)
	if r.code != 0 {
		t.Fatal(r)
	}
	if !strings.HasPrefix(r.stdout, "# effective configuration; config file: "+file+"\n") {
		t.Errorf("first line does not name the file:\n%s", r.stdout)
	}
	// Shown, yet still derived from the topic if the output is used as a file.
	if !strings.Contains(r.stdout, "\ndlq-topic: \"\" # effective: pizza.dlq (empty: <topic>.dlq)\n") {
		t.Errorf("dlq-topic is not the effective one:\n%s", r.stdout)
	}
}

// TestBadInputNeverHangsOrLeaks: a named pipe as the config file is refused
// at once, and a DSN whose password is escaped or quoted never shows any
// part of it, in config show or in an error line.
func TestBadInputNeverHangsOrLeaks(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"config", "show", "--config", fifo}, {"db", "status", "--config", fifo}} {
		r := run(t, nil, args...)
		if r.code != 2 || !strings.Contains(errorLine(t, r), "not a regular file (a named pipe)") {
			t.Errorf("%v: want exit 2 naming the named pipe\n%s", args, r)
		}
	}
	for _, dsn := range []string{
		`host=db password=First\ SecondHalfSecret dbname=orders`,
		`host=db password='First SecondHalfSecret' dbname=orders`,
	} {
		show := run(t, nil, "config", "show", "--database-url", dsn)
		bad := run(t, nil, "db", "status", "--database-url", dsn+" port=notaport")
		if show.code != 0 || bad.code != 2 {
			t.Errorf("config show exit %d (want 0), db status with a bad port exit %d (want 2)\n%s\n%s", show.code, bad.code, show, bad)
		}
		errorLine(t, bad)
		for _, out := range []string{show.stdout + show.stderr, bad.stdout + bad.stderr} {
			if strings.Contains(out, "First") || strings.Contains(out, "SecondHalfSecret") {
				t.Errorf("a part of the password is shown:\n%s", out)
			}
		}
	}
}
