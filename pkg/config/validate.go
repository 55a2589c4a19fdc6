package config

import (
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/foodpipe/foodpipe/pkg/order"
)

// Validate checks every setting and normalises the spellings it accepts in
// several forms (acks "-1", SASL mechanism case). It returns the first
// problem as one line naming the key and the value.
func (c *Config) Validate() error {
	c.Kafka.SASLMechanism = strings.ToUpper(c.Kafka.SASLMechanism)
	c.KafkaProducer.Acks = normaliseAcks(c.KafkaProducer.Acks)
	c.KafkaProducer.Compression = strings.ToLower(c.KafkaProducer.Compression)
	c.Output = strings.ToLower(c.Output)
	c.Log.Format = strings.ToLower(c.Log.Format)

	if c.Kafka.CAFile != "" || c.Kafka.CertFile != "" {
		defer func() { c.Kafka.TLS = c.Kafka.TLS || !c.IsSet("kafka-tls") }() // implied: config show says so
	}
	checks := []error{
		oneOf("output", c.Output, Choices["output"]...),
		oneOf("log-level", strings.ToLower(c.Log.Level), Choices["log-level"]...),
		oneOf("log-format", c.Log.Format, Choices["log-format"]...),
		check(c.Log.ProgressInterval == 0 || c.Log.ProgressInterval >= minInterval, "progress-interval", c.Log.ProgressInterval,
			"must be 0 (never) or at least "+minInterval.String()),
		optional(c.Log.MetricsAddr, func() error { return listenAddr("metrics-addr", c.Log.MetricsAddr) }),

		brokers(c.Kafka.Brokers),
		topicName("topic", c.Kafka.Topic),
		optional(c.Kafka.DLQTopic, func() error { return topicName("dlq-topic", c.Kafka.DLQTopic) }),
		check(c.Kafka.DLQTopic != "" || len(c.Kafka.DLQ()) <= maxTopicName, "topic", c.Kafka.Topic,
			fmt.Sprintf("its dead-letter topic %s would be longer than Kafka's %d characters: shorten it, or name one with dlq-topic (--dlq-topic, FOODPIPE_DLQ_TOPIC)",
				c.Kafka.DLQ(), maxTopicName)),
		check(c.Kafka.DLQ() != c.Kafka.Topic, "dlq-topic", c.Kafka.DLQ(), "must differ from topic"),
		// Kafka takes '.' and '_' as one character when it compares topic
		// names; it would refuse the second topic at topics init.
		check(c.Kafka.DLQ() == c.Kafka.Topic || collisionName(c.Kafka.DLQ()) != collisionName(c.Kafka.Topic),
			"dlq-topic", c.Kafka.DLQ(), fmt.Sprintf("collides with topic %q: Kafka takes '.' and '_' in topic names as the same character", c.Kafka.Topic)),
		positive("kafka-timeout", c.Kafka.ConnectTimeout),
		check(c.Kafka.KeyFile == "" || c.Kafka.CertFile != "", "kafka-key-file", c.Kafka.KeyFile, "needs kafka-cert-file too"),
		check(c.Kafka.CertFile == "" || c.Kafka.KeyFile != "", "kafka-cert-file", c.Kafka.CertFile, "needs kafka-key-file too"),
		optional(c.Kafka.SASLMechanism, func() error {
			return oneOf("kafka-sasl-mechanism", c.Kafka.SASLMechanism, Choices["kafka-sasl-mechanism"]...)
		}),
		check(c.Kafka.SASLMechanism == "" || c.Kafka.Username != "", "kafka-username", "", "is required with kafka-sasl-mechanism"),
		check(c.Kafka.SASLMechanism != "" || c.Kafka.Username == "", "kafka-sasl-mechanism", "", "is required with kafka-username"),
		// A SASL login with no password never succeeds; a password with no
		// mechanism is never sent. The value is never shown: it is empty.
		check(c.Kafka.SASLMechanism == "" || c.Kafka.Password != "", "kafka-password", "", "is required with kafka-sasl-mechanism"),
		check(c.Kafka.SASLMechanism != "" || c.Kafka.Password == "", "kafka-sasl-mechanism", "", "is required with kafka-password"),
		// kafka-ca-file and kafka-cert-file imply TLS; an explicit
		// kafka-tls: false beside them contradicts them.
		check(!c.IsSet("kafka-tls") || c.Kafka.TLS || (c.Kafka.CAFile == "" && c.Kafka.CertFile == ""), "kafka-tls", false,
			"contradicts kafka-ca-file/kafka-cert-file, which imply TLS: drop one of them"),

		positive("db-timeout", c.Postgres.ConnectTimeout),
	}
	checks = append(checks, c.producerChecks()...)
	checks = append(checks, c.consumeChecks()...)
	return firstNonNil(append(checks, c.commandChecks()...))
}

// producerChecks check what produce and the generator use.
func (c *Config) producerChecks() []error {
	return []error{
		oneOf("acks", c.KafkaProducer.Acks, Choices["acks"]...),
		oneOf("compression", c.KafkaProducer.Compression, Choices["compression"]...),
		between("linger", c.KafkaProducer.Linger, 0, time.Minute), // franz-go's limit
		between("producer-batch-bytes", c.KafkaProducer.BatchMaxBytes, 1024, 64<<20),
		atLeast("max-buffered-records", c.KafkaProducer.MaxBufferedRecords, 1),
		between("delivery-timeout", c.KafkaProducer.DeliveryTimeout, time.Second, longestTimeout), // franz-go's floor
		positive("flush-timeout", c.KafkaProducer.FlushTimeout),

		check(c.Generator.Rate >= 0 && !math.IsInf(c.Generator.Rate, 0) && !math.IsNaN(c.Generator.Rate),
			"rate", c.Generator.Rate, "must be 0 (as fast as possible) or a positive number of orders per second"),
		atLeast("count", c.Generator.Count, 0),
		atLeast("duration", c.Generator.Duration, 0),
		between("customers", c.Generator.Customers, 1, maxCustomers),
	}
}

// consumeChecks check what consume uses.
func (c *Config) consumeChecks() []error {
	return []error{
		check(strings.TrimSpace(c.Consume.Group) != "", "group", c.Consume.Group, "must not be empty or only spaces"),
		check(c.Consume.InstanceID == "" || strings.TrimSpace(c.Consume.InstanceID) != "", "instance-id", c.Consume.InstanceID,
			"must not be only spaces (empty: dynamic membership)"),
		between("batch-rows", c.Consume.BatchMaxRows, 1, 1_000_000),
		between("batch-bytes", c.Consume.BatchMaxBytes, 1024, 1<<30),
		// franz-go reads at most 100 MiB from a broker at once.
		between("fetch-max-bytes", c.Consume.FetchMaxBytes, 1024, 100<<20),
		// The group protocol counts in int32 milliseconds; franz-go refuses
		// less than 100ms; a shorter heartbeat only spins.
		between("session-timeout", c.Consume.SessionTimeout, minInterval, longestTimeout),
		between("heartbeat-interval", c.Consume.HeartbeatInterval, minInterval, longestTimeout),
		check(c.Consume.HeartbeatInterval < c.Consume.SessionTimeout, "heartbeat-interval", c.Consume.HeartbeatInterval,
			"must be shorter than session-timeout "+c.Consume.SessionTimeout.String()),
		between("rebalance-timeout", c.Consume.RebalanceTimeout, minInterval, longestTimeout),
		between("lock-timeout", c.Consume.LockTimeout, time.Millisecond, longestTimeout), // lock_timeout: int32 ms
		oneOf("offset-out-of-range", c.Consume.OutOfRange, Choices["offset-out-of-range"]...),
	}
}

// commandChecks check the settings of topics init, bench, lag and dlq.
func (c *Config) commandChecks() []error {
	return []error{
		between("partitions", c.Topics.Partitions, 1, 100_000),
		between("replication-factor", c.Topics.ReplicationFactor, 1, math.MaxInt16),
		// retention.ms counts whole milliseconds; less would be 0, "delete at once".
		atLeast("retention", c.Topics.Retention, time.Millisecond),
		atLeast("dlq-retention", c.Topics.DLQRetention, time.Millisecond),

		atLeast("records", c.Bench.Records, 1),
		check(c.Bench.Throughput == -1 || c.Bench.Throughput > 0 && !math.IsInf(c.Bench.Throughput, 0),
			"throughput", c.Bench.Throughput, "must be -1 (unlimited) or a positive number of records per second"),
		atLeast("warmup-records", c.Bench.WarmupRecords, 0),
		check(c.Bench.WarmupRecords < c.Bench.Records, "warmup-records", c.Bench.WarmupRecords, "must be less than records"),
		between("record-size", c.Bench.RecordSize, 0, 16<<20),

		atLeast("max-lag", c.Lag.MaxLag, -1),
		classes(c.DLQ.Class),
		optional(c.DLQ.Since, func() error { _, err := ParseSince(c.DLQ.Since); return err }),
		check(c.DLQ.ReplayGroup != "", "replay-group", c.DLQ.ReplayGroup, "must not be empty"),
	}
}

const (
	// longestTimeout is the longest duration an int32 of milliseconds holds:
	// the Kafka protocol's timeouts, PostgreSQL's lock_timeout.
	longestTimeout = time.Duration(math.MaxInt32) * time.Millisecond
	// minInterval is the shortest timeout franz-go takes, and the floor of
	// intervals that would otherwise spin (heartbeats, progress lines).
	minInterval = 100 * time.Millisecond
	// maxCustomers is order.MaxCustomers, the generator's limit (a test
	// keeps them equal; config imports nothing of foodpipe's).
	maxCustomers = 1_000_000
)

func firstNonNil(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func invalid(key string, value any, why string) error {
	return fmt.Errorf("invalid %s %s: %s", key, show(value), why)
}

func show(value any) string {
	switch v := value.(type) {
	case string:
		return strconv.Quote(v)
	case time.Duration:
		return v.String()
	}
	return fmt.Sprint(value)
}

func check(ok bool, key string, value any, why string) error {
	if ok {
		return nil
	}
	return invalid(key, value, why)
}

func optional(value string, f func() error) error {
	if value == "" {
		return nil
	}
	return f()
}

// Choices are the values of the settings that take one of a few, by key:
// what Validate accepts (after its case folding) and what shell completion
// offers.
var Choices = map[string][]string{
	"output":               {"text", "json"},
	"log-level":            {"debug", "info", "warn", "error"},
	"log-format":           {"auto", "text", "json"},
	"kafka-sasl-mechanism": {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"},
	"acks":                 {"all", "leader", "none"},
	"compression":          {"snappy", "lz4", "zstd", "gzip", "none"},
	"offset-out-of-range":  {"fail", "earliest", "latest"},
	"class":                order.Classes,
}

func oneOf(key, value string, allowed ...string) error {
	if slices.Contains(allowed, value) {
		return nil
	}
	return invalid(key, value, "must be one of "+strings.Join(allowed, ", "))
}

type number interface {
	~int | ~int64 | ~float64
}

func atLeast[T number](key string, value, lo T) error {
	return check(value >= lo, key, value, fmt.Sprintf("must be at least %v", show(lo)))
}

func positive[T number](key string, value T) error {
	return check(value > 0, key, value, "must be greater than 0")
}

func between[T number](key string, value, lo, hi T) error {
	return check(value >= lo && value <= hi, key, value, fmt.Sprintf("must be between %v and %v", lo, hi))
}

func brokers(list []string) error {
	if len(list) == 0 {
		return invalid("brokers", "", "at least one host:port is required")
	}
	for _, b := range list {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" {
			return invalid("brokers", b, "want host:port")
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return invalid("brokers", b, "port must be a number from 1 to 65535")
		}
	}
	return nil
}

// maxTopicName is the longest topic name Kafka accepts.
const maxTopicName = 249

// topicName applies Kafka's own rule for topic names.
func topicName(key, name string) error {
	if name == "" || name == "." || name == ".." {
		return invalid(key, name, "not a valid topic name")
	}
	if len(name) > maxTopicName {
		return invalid(key, name, fmt.Sprintf("longer than Kafka's %d characters", maxTopicName))
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return invalid(key, name, "may contain only letters, digits, '.', '_' and '-'")
		}
	}
	return nil
}

// collisionName is the name Kafka compares when it looks for colliding topics.
func collisionName(topic string) string { return strings.ReplaceAll(topic, ".", "_") }

func normaliseAcks(a string) string {
	switch strings.ToLower(a) {
	case "all", "-1":
		return "all"
	case "leader", "1":
		return "leader"
	case "none", "0":
		return "none"
	}
	return a
}

// listenAddr accepts host:port or :port, port 0 to 65535 (0: any free one).
func listenAddr(key, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return invalid(key, addr, "want host:port or :port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return invalid(key, addr, "port must be a number from 0 to 65535")
	}
	return nil
}
