package config

// Load's refusals: every bad file, variable or flag value is one line that
// names the key, the value (never a secret's) and where it came from.

import (
	"strings"
	"testing"
)

// loadErrorCase is one refusal: a config file, variables and flags, and
// what the error says.
type loadErrorCase struct {
	name    string
	file    string
	env     map[string]string
	args    []string
	wantErr []string // substrings of the one-line error
}

// loadErrorCases are TestLoadErrors' table.
func loadErrorCases() []loadErrorCase {
	return []loadErrorCase{
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
}

func TestLoadErrors(t *testing.T) {
	for _, tt := range loadErrorCases() {
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
