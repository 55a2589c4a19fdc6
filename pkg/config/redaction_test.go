package config

// Secrets: redacted wherever a DSN or the config is shown, removed from a
// DSN handed to another client, and flagged when the file holding them is
// readable by others.

import (
	"encoding/json"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

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
	checkConfigShowRedacts(t)
}

// checkConfigShowRedacts: config show's YAML and JSON hide the secrets
// without changing the config, and the YAML loads back as a config file
// that keeps the dead-letter topic derived unless it was set.
func checkConfigShowRedacts(t *testing.T) {
	t.Helper()
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
