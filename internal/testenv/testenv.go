// Package testenv gives integration tests real services: a Kafka broker and
// a PostgreSQL database, each test with its own topics, group and schema so
// tests run in parallel and see only their own data.
//
// Services come from, in order:
//  1. FOODPIPE_TEST_BROKERS and FOODPIPE_TEST_DATABASE_URL, as printed by
//     `scripts/testbed.sh env` (real Kafka and PostgreSQL, no Docker);
//  2. testcontainers-go, when a Docker daemon answers;
//  3. otherwise the test is skipped with a line saying how to get services,
//     or fails when FOODPIPE_REQUIRE_SERVICES=1 (CI sets it: a CI run that
//     skipped its integration tests would prove nothing).
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/testcontainers/testcontainers-go"
	tckafka "github.com/testcontainers/testcontainers-go/modules/kafka"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

const howTo = "start services with: scripts/testbed.sh up && eval \"$(scripts/testbed.sh env)\" (or run Docker for testcontainers)"

// Images used when testcontainers provides the services.
const (
	kafkaImage    = "confluentinc/confluent-local:7.5.0"
	postgresImage = "postgres:15-alpine"
)

// docker holds the containers started once per test binary; testcontainers'
// reaper removes them when the process ends.
var docker struct {
	once    sync.Once
	brokers []string
	dsn     string
	err     error
}

func unavailable(t testing.TB, what string, err error) {
	t.Helper()
	msg := fmt.Sprintf("no %s for integration tests: %v; %s", what, err, howTo)
	if os.Getenv("FOODPIPE_REQUIRE_SERVICES") == "1" {
		t.Fatal(msg + " (FOODPIPE_REQUIRE_SERVICES=1 makes this a failure)")
	}
	t.Skip(msg)
}

// RequireTestbed skips t at once (fails it under
// FOODPIPE_REQUIRE_SERVICES=1) unless the test bed's services are
// configured. Tests that build services of their own from the test bed's
// tools (a private test bed) call it first, so that a run without services
// skips them instead of spending a minute building them.
//
// Call it, and every lookup of this package, from the test's own goroutine:
// a skip from any other goroutine ends only that goroutine, and a test
// waiting for it hangs.
func RequireTestbed(t testing.TB) {
	t.Helper()
	if os.Getenv("FOODPIPE_TEST_BROKERS") == "" || os.Getenv("FOODPIPE_TEST_DATABASE_URL") == "" {
		unavailable(t, "test bed", fmt.Errorf("FOODPIPE_TEST_BROKERS and FOODPIPE_TEST_DATABASE_URL not set"))
	}
}

// Brokers returns the bootstrap brokers of a real Kafka cluster.
func Brokers(t testing.TB) []string {
	t.Helper()
	if env := os.Getenv("FOODPIPE_TEST_BROKERS"); env != "" {
		return strings.Split(env, ",")
	}
	if err := startDocker(); err != nil {
		unavailable(t, "Kafka", err)
	}
	return docker.brokers
}

// DatabaseURL returns the URL of the test PostgreSQL server (no schema).
func DatabaseURL(t testing.TB) string {
	t.Helper()
	if env := os.Getenv("FOODPIPE_TEST_DATABASE_URL"); env != "" {
		return env
	}
	if err := startDocker(); err != nil {
		unavailable(t, "PostgreSQL", err)
	}
	return docker.dsn
}

// Schema creates a fresh, uniquely named, empty schema for t and returns a
// database URL whose connections use it as search_path. The schema is
// dropped when the test ends, unless FOODPIPE_TEST_KEEP=1.
func Schema(t testing.TB) (dsn, schema string) {
	t.Helper()
	base := DatabaseURL(t)
	schema = strings.ToLower(strings.ReplaceAll(Name(t, "t"), "-", "_"))
	if err := execSQL(base, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		unavailable(t, "PostgreSQL", err)
	}
	t.Cleanup(func() {
		if os.Getenv("FOODPIPE_TEST_KEEP") == "1" {
			return
		}
		if err := execSQL(base, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	return WithSearchPath(base, schema), schema
}

// Database creates a database of the test's own on the test bed's server,
// for tests that change a database's settings, and returns its URL and
// name. It is dropped when the test ends (connections and all).
func Database(t testing.TB) (dsn, name string) {
	t.Helper()
	base := DatabaseURL(t)
	name = strings.ToLower(strings.ReplaceAll(Name(t, "db"), "-", "_"))
	if err := execSQL(base, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		unavailable(t, "PostgreSQL", err)
	}
	t.Cleanup(func() {
		if err := execSQL(base, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("test bed database URL: %v", err)
	}
	u.Path = "/" + name
	return u.String(), name
}

// Exec runs sql on a connection of its own to dsn, failing the test on an
// error.
func Exec(t testing.TB, dsn, sql string) {
	t.Helper()
	if err := execSQL(dsn, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// execSQL runs one statement on its own connection. testenv talks to
// PostgreSQL with pgx directly, not through pkg/store, so that store's own
// tests can use it without an import cycle.
func execSQL(dsn, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// WithSearchPath adds search_path=schema to a PostgreSQL URL or DSN.
func WithSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// Name returns a name unique to this test and run, safe as a Kafka topic,
// group or PostgreSQL identifier: prefix, a short form of the test name and
// random hex.
func Name(t testing.TB, prefix string) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	short := strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(short) > 30 {
		short = short[len(short)-30:]
	}
	return fmt.Sprintf("%s-%s-%s", prefix, strings.Trim(short, "-"), hex.EncodeToString(b[:]))
}

func startDocker() error {
	docker.once.Do(func() {
		docker.err = dockerHealthy()
		if docker.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		kc, err := tckafka.Run(ctx, kafkaImage, tckafka.WithClusterID("foodpipe-test"))
		if err != nil {
			docker.err = fmt.Errorf("start Kafka container: %w", err)
			return
		}
		if docker.brokers, err = kc.Brokers(ctx); err != nil {
			docker.err = fmt.Errorf("brokers of the Kafka container: %w", err)
			return
		}
		pc, err := tcpostgres.Run(ctx, postgresImage,
			tcpostgres.WithDatabase("foodpipe"),
			tcpostgres.WithUsername("postgres"),
			tcpostgres.WithPassword("postgres"),
			tcpostgres.BasicWaitStrategies(),
		)
		if err != nil {
			docker.err = fmt.Errorf("start PostgreSQL container: %w", err)
			return
		}
		docker.dsn, docker.err = pc.ConnectionString(ctx, "sslmode=disable")
	})
	return docker.err
}

// dockerHealthy reports whether a Docker daemon answers. testcontainers
// panics in some set-ups without Docker, hence the recover.
func dockerHealthy() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("docker unavailable: %v", r)
		}
	}()
	p, err := testcontainers.ProviderDocker.GetProvider()
	if err != nil {
		return fmt.Errorf("docker unavailable: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Health(ctx); err != nil {
		return fmt.Errorf("docker unavailable: %w", err)
	}
	return nil
}
