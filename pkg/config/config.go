// Package config is foodpipe's one view of its settings. It is the only
// package that touches viper: it merges flags, FOODPIPE_* environment
// variables, a YAML file and defaults (in that order of precedence) into one
// typed Config, validates it, and hands typed sections to the rest of the
// program.
//
// Every setting has one name, used three ways: the flag --rate, the
// environment variable FOODPIPE_RATE and the config file key "rate". The
// struct tags below are the single source of that name, its help text and
// whether it is a secret; Default holds every default.
package config

import (
	"time"
)

// Config is the effective configuration of one foodpipe invocation.
type Config struct {
	// Output selects how results are printed on stdout.
	Output        string        `key:"output" usage:"result format on stdout: text or json"`
	Log           Log           `section:"logging and metrics"`
	Kafka         Kafka         `section:"Kafka connection"`
	Postgres      Postgres      `section:"PostgreSQL connection"`
	KafkaProducer KafkaProducer `section:"Kafka producer tuning (produce and bench produce)"`
	Generator     Generator     `section:"produce: the order generator and its pace"`
	Consume       Consume       `section:"consume: the sink into PostgreSQL"`
	Topics        Topics        `section:"topics init"`
	Bench         Bench         `section:"bench"`
	Lag           Lag           `section:"lag"`
	DLQ           DLQ           `section:"dlq inspect and dlq replay"`
	Demo          Demo          `section:"demo"`
	// File is the config file that was read, empty when none was.
	File string `key:"-"`
	// SecretsReadable is set when File holds a password and users other
	// than its owner may read it (never on Windows, whose file modes do
	// not say).
	SecretsReadable bool `key:"-"`
	// set holds the keys given by a flag, the environment or the config
	// file, as opposed to left at their defaults (see IsSet).
	set map[string]bool
}

// Log configures the structured logs written to stderr.
type Log struct {
	Level            string        `key:"log-level" usage:"log level: debug, info, warn or error"`
	Format           string        `key:"log-format" usage:"log format: auto (text on a terminal, json otherwise), text or json"`
	ProgressInterval time.Duration `key:"progress-interval" usage:"how often a progress line is logged (0: never)"`
	MetricsAddr      string        `key:"metrics-addr" usage:"serve Prometheus /metrics, /healthz and /readyz on this host:port, e.g. 127.0.0.1:9464 (empty: off)"`
}

// Kafka holds what every Kafka client of foodpipe needs to connect.
type Kafka struct {
	Brokers        []string      `key:"brokers" usage:"Kafka bootstrap brokers, host:port[,host:port…]"`
	Topic          string        `key:"topic" usage:"the orders topic"`
	DLQTopic       string        `key:"dlq-topic" usage:"the dead-letter topic (empty: <topic>.dlq)"`
	ConnectTimeout time.Duration `key:"kafka-timeout" usage:"how long to wait for Kafka to answer at start before giving up"`
	TLS            bool          `key:"kafka-tls" usage:"connect to Kafka with TLS"`
	CAFile         string        `key:"kafka-ca-file" usage:"PEM file of CA certificates that sign the brokers' certificates (implies --kafka-tls)"`
	CertFile       string        `key:"kafka-cert-file" usage:"PEM client certificate for mutual TLS (implies --kafka-tls)"`
	KeyFile        string        `key:"kafka-key-file" usage:"PEM private key of --kafka-cert-file"`
	SASLMechanism  string        `key:"kafka-sasl-mechanism" usage:"SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL)"`
	Username       string        `key:"kafka-username" usage:"SASL user name"`
	Password       string        `key:"kafka-password" usage:"SASL password" secret:"true"`
}

// Postgres holds what the PostgreSQL side needs to connect.
type Postgres struct {
	DatabaseURL    string        `key:"database-url" usage:"PostgreSQL URL or key=value DSN; the standard PG* variables also apply" secret:"dsn"`
	ConnectTimeout time.Duration `key:"db-timeout" usage:"how long to wait for PostgreSQL to answer at start before giving up"`
}

// KafkaProducer tunes the Kafka producer shared by produce and bench
// produce. The consumer's dead-letter producer has settings of its own.
type KafkaProducer struct {
	Acks               string        `key:"acks" usage:"acknowledgements: all, leader or none (idempotence needs all)"`
	Compression        string        `key:"compression" usage:"batch compression: snappy, lz4, zstd, gzip or none"`
	Linger             time.Duration `key:"linger" usage:"how long a partition batch may wait to fill before it is sent"`
	BatchMaxBytes      int           `key:"producer-batch-bytes" usage:"largest record batch the producer sends to one partition, in bytes"`
	MaxBufferedRecords int           `key:"max-buffered-records" usage:"records held unacknowledged in memory before produce waits"`
	DeliveryTimeout    time.Duration `key:"delivery-timeout" usage:"how long a record may keep being retried before it counts as failed"`
	FlushTimeout       time.Duration `key:"flush-timeout" usage:"on shutdown, how long to wait for outstanding records to be acknowledged"`
}

// Generator configures the mock orders foodpipe produce makes, and how fast
// and how many.
type Generator struct {
	Rate      float64       `key:"rate" usage:"orders per second (0: as fast as the broker accepts)"`
	Count     int64         `key:"count" usage:"stop after this many orders (0: no limit)"`
	Duration  time.Duration `key:"duration" usage:"stop after this long (0: no limit)"`
	Seed      int64         `key:"seed" usage:"seed of the mock data: the same seed gives the same customers and picks"`
	Customers int           `key:"customers" usage:"number of mock customers"`
}

// Consume configures the Kafka → PostgreSQL sink.
type Consume struct {
	Group         string `key:"group" usage:"consumer group"`
	InstanceID    string `key:"instance-id" usage:"static group membership id (empty: dynamic membership)"`
	BatchMaxRows  int    `key:"batch-rows" usage:"largest batch written to PostgreSQL in one transaction, in rows"`
	BatchMaxBytes int    `key:"batch-bytes" usage:"largest batch written to PostgreSQL in one transaction, in record bytes (passed by at most the record that reaches it)"`
	FetchMaxBytes int    `key:"fetch-max-bytes" usage:"most record bytes buffered from Kafka at once (bounds memory)"`
	// The group's timing: how fast a dead member is replaced.
	SessionTimeout    time.Duration `key:"session-timeout" usage:"a member that sends no heartbeat for this long is dead and its partitions move (failover time)"`
	HeartbeatInterval time.Duration `key:"heartbeat-interval" usage:"how often a member tells the group it is alive (well under session-timeout)"`
	RebalanceTimeout  time.Duration `key:"rebalance-timeout" usage:"how long members have to rejoin during a rebalance"`
	LockTimeout       time.Duration `key:"lock-timeout" usage:"longest wait for another transaction's lock on a stored offset (a stalled consumer) before the partition is set aside and retried"`
	OutOfRange        string        `key:"offset-out-of-range" usage:"a stored offset outside its partition (records deleted by retention, topic recreated): fail, earliest or latest"`
	// Batch jobs: drain what is there and exit, or start before the topics.
	StopAtEnd    bool `key:"stop-at-end" usage:"exit 0 with the summary once the group has stored everything up to the end offsets seen at start"`
	WaitForTopic bool `key:"wait-for-topic" usage:"wait for the orders and dead-letter topics to exist instead of exiting 1"`
}

// Topics configures topics init.
type Topics struct {
	Partitions        int           `key:"partitions" usage:"partitions of the orders and dead-letter topics"`
	ReplicationFactor int           `key:"replication-factor" usage:"replication factor of both topics"`
	Retention         time.Duration `key:"retention" usage:"retention of the orders topic"`
	DLQRetention      time.Duration `key:"dlq-retention" usage:"retention of the dead-letter topic"`
	AddPartitions     bool          `key:"add-partitions" usage:"grow an existing topic that has fewer partitions than --partitions"`
}

// Bench configures the bench commands.
type Bench struct {
	Records       int64   `key:"records" usage:"records to produce"`
	Throughput    float64 `key:"throughput" usage:"records per second (-1: unlimited)"`
	WarmupRecords int64   `key:"warmup-records" usage:"records sent first and left out of the results"`
	RecordSize    int     `key:"record-size" usage:"payload of random bytes of this size instead of generated orders (0: orders)"`
	Keep          bool    `key:"keep" usage:"bench: keep its topic and schema afterwards; demo: hold its services open after the run until Ctrl-C (and keep its topic and schema on real services)"`
}

// Demo configures foodpipe demo.
type Demo struct {
	PGBin string `key:"pg-bin" usage:"run the embedded PostgreSQL from these installed binaries (the directory holding pg_ctl) instead of downloading them once"`
}

// Lag configures the lag command.
type Lag struct {
	MaxLag int64 `key:"max-lag" usage:"exit 1 when any partition lags more than this many records or is blocked (-1: never)"`
}

// DLQ configures dlq inspect and dlq replay.
type DLQ struct {
	Class       string `key:"class" usage:"only dead letters of these classes: decode, validate, store, comma separated (empty: every class)"`
	Since       string `key:"since" usage:"dlq inspect: only dead letters that failed since then, a duration ago (1h) or an RFC 3339 time (empty: all)"`
	DryRun      bool   `key:"dry-run" usage:"dlq replay: count what would be replayed; replay and record nothing"`
	ReplayGroup string `key:"replay-group" usage:"dlq replay records how far it got as the offsets of the Kafka groups <replay-group>.<class>"`
}

// Default returns the configuration used when nothing else is set.
func Default() Config {
	return Config{
		Output: "text",
		Log:    Log{Level: "info", Format: "auto", ProgressInterval: 5 * time.Second},
		Kafka: Kafka{
			Brokers:        []string{"127.0.0.1:9092"},
			Topic:          "food-orders",
			ConnectTimeout: 10 * time.Second,
		},
		Postgres: Postgres{ConnectTimeout: 10 * time.Second},
		KafkaProducer: KafkaProducer{
			Acks:               "all",
			Compression:        "snappy",
			Linger:             10 * time.Millisecond,
			BatchMaxBytes:      1 << 20,
			MaxBufferedRecords: 10000,
			DeliveryTimeout:    2 * time.Minute,
			FlushTimeout:       10 * time.Second,
		},
		Generator: Generator{Rate: 10, Seed: 42, Customers: 100},
		Consume: Consume{
			Group:         "orders",
			BatchMaxRows:  5000,
			BatchMaxBytes: 4 << 20,
			FetchMaxBytes: 2 << 20,
			// Failover in about 10 s instead of Kafka's 45 s default: the
			// brokers' minimum session is 6 s, and 10 s leaves room for a
			// busy machine's pauses. A heartbeat every second tells the
			// survivors of a rebalance within a second.
			SessionTimeout:    10 * time.Second,
			HeartbeatInterval: time.Second,
			RebalanceTimeout:  30 * time.Second,
			LockTimeout:       5 * time.Second,
			OutOfRange:        "fail",
		},
		Topics: Topics{
			Partitions:        3,
			ReplicationFactor: 1,
			Retention:         168 * time.Hour,
			DLQRetention:      720 * time.Hour,
		},
		Bench: Bench{Records: 1_000_000, Throughput: -1, RecordSize: 0},
		Lag:   Lag{MaxLag: -1},
		DLQ:   DLQ{ReplayGroup: "foodpipe-dlq-replay"},
	}
}

// IsSet reports whether key was given by a flag, the environment or the
// config file rather than left at its default: a command with defaults of
// its own (the demo's rate and duration) uses them only for keys not set.
func (c *Config) IsSet(key string) bool { return c.set[key] }

// DLQ returns the dead-letter topic: dlq-topic, or <topic>.dlq when unset.
func (k Kafka) DLQ() string {
	if k.DLQTopic != "" {
		return k.DLQTopic
	}
	return k.Topic + ".dlq"
}
