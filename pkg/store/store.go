// Package store is foodpipe's one door to PostgreSQL and the only package
// that imports pgx: the connection pool, the embedded migrations, the batch
// writes of orders and the offsets stored with them.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/foodpipe/foodpipe/internal/reach"
	"github.com/foodpipe/foodpipe/pkg/config"
)

// ErrBadURL marks a --database-url that cannot be parsed: a usage error.
var ErrBadURL = errors.New("invalid database-url")

// ErrUnreachable marks a database that did not answer in time.
var ErrUnreachable = reach.ErrUnreachable

// ErrCommitUnknown marks a commit whose answer never came: the connection
// was lost after COMMIT was sent, so the transaction may have committed or
// not. WriteBatch returns it (retryable) with the batch's result as it
// would have been; the stored offsets tell whether it landed.
var ErrCommitUnknown = errors.New("the commit's outcome is unknown")

// DB is a pool of connections to one database, optionally pinned to a
// schema through search_path (tests and bench each get their own).
type DB struct {
	pool   *pgxpool.Pool
	log    *slog.Logger
	schema string
	addr   string
}

// Options tune Open beyond the typed configuration.
type Options struct {
	// Schema, when set, becomes the search_path of every connection, so all
	// tables foodpipe creates and uses live there.
	Schema string
	// MaxConns caps the pool (0: pgx's default).
	MaxConns int32
	// AppName is reported as application_name in pg_stat_activity.
	AppName string
	// LockTimeout bounds how long any statement waits for a lock (0: no
	// bound). The consumer sets it so that a writer stalled in the middle
	// of a transaction cannot stall the others.
	LockTimeout time.Duration
}

// ParseConfig turns the configured URL or DSN (plus PG* variables) into a
// pool configuration.
func ParseConfig(cfg config.Postgres, opts Options) (*pgxpool.Config, error) {
	if reason := urlMistake(cfg.DatabaseURL); reason != "" {
		return nil, badURL(cfg.DatabaseURL, errors.New(reason))
	}
	pc, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, badURL(cfg.DatabaseURL, err)
	}
	if opts.MaxConns > 0 {
		pc.MaxConns = opts.MaxConns
	}
	if opts.Schema != "" {
		pc.ConnConfig.RuntimeParams["search_path"] = opts.Schema
	}
	if opts.AppName != "" {
		pc.ConnConfig.RuntimeParams["application_name"] = opts.AppName
	}
	if opts.LockTimeout > 0 {
		pc.ConnConfig.RuntimeParams["lock_timeout"] = strconv.FormatInt(max(opts.LockTimeout.Milliseconds(), 1), 10)
	}
	// Bound each dial too, so a black-holed address fails within the
	// start-up timeout instead of the OS's minutes-long TCP timeout.
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	return pc, nil
}

// wantURL says what a database-url looks like.
const wantURL = "want postgres://user:password@host:port/dbname or key=value pairs (host=… port=… dbname=…)"

// urlMistake tells why dsn cannot be used as written — a URL for another
// driver, no URL at all, an unescaped @ in the user info — or returns "".
// pgx would take a foreign string for key=value pairs: it fails to parse
// with a puzzling reason, or (a JDBC URL) parses into nothing and connects
// to the local socket.
func urlMistake(dsn string) string {
	dsn = strings.TrimSpace(dsn)
	if dsn == "" {
		return ""
	}
	if strings.HasPrefix(strings.ToLower(dsn), "jdbc:") {
		return "a JDBC URL: drop jdbc: and put user and password before the host; " + wantURL
	}
	scheme, rest, isURL := strings.Cut(dsn, "://")
	switch scheme = strings.ToLower(scheme); {
	case isURL && (scheme == "postgres" || scheme == "postgresql"):
		// pgx splits user info from the host at the first "@", net/url at
		// the last: an "@" of the password would become part of the host,
		// and be printed with it.
		if authority, _, _ := strings.Cut(rest, "/"); strings.Count(strings.SplitN(authority, "?", 2)[0], "@") > 1 {
			return "the user name or password holds an @: write it as %40; " + wantURL
		}
		return ""
	case isURL && (strings.HasPrefix(scheme, "postgresql+") || strings.HasPrefix(scheme, "postgres+")):
		return fmt.Sprintf("a SQLAlchemy URL (%s://): drop the +driver; %s", scheme, wantURL)
	case isURL:
		return fmt.Sprintf("scheme %q is not PostgreSQL's; %s", scheme, wantURL)
	case strings.Contains(dsn, "="):
		return "" // key=value pairs: pgx says what is wrong with them
	case strings.Contains(dsn, ":"):
		return "host:port is not a URL; " + wantURL
	}
	return "not a URL nor key=value pairs; " + wantURL
}

// badURL reports a database-url that does not parse, in one line that
// shows the URL with its password redacted by config.RedactDSN (pgconn's own
// redaction misses escaped and some quoted passwords) and scrubs whatever
// part of a password the parser's message might still echo.
func badURL(dsn string, err error) error {
	reason := err.Error()
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		// The reason alone, without pgconn's rendering of the string.
		bare := *pe
		bare.ConnString = ""
		reason = strings.TrimPrefix(bare.Error(), "cannot parse ``: ")
	}
	msg := fmt.Sprintf("%q: %s", config.RedactDSN(dsn), reason)
	for _, secret := range config.DSNSecrets(dsn) {
		msg = strings.ReplaceAll(msg, secret, "[redacted]")
		// An escaped password may be echoed in pieces.
		for _, part := range strings.Fields(secret) {
			if len(part) >= 3 {
				msg = strings.ReplaceAll(msg, part, "[redacted]")
			}
		}
	}
	return fmt.Errorf("%w %s", ErrBadURL, strings.Join(strings.Fields(msg), " "))
}

// Open connects a pool and checks that the database answers within the
// configured timeout.
func Open(ctx context.Context, cfg config.Postgres, opts Options, log *slog.Logger) (*DB, error) {
	pc, err := ParseConfig(cfg, opts)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres pool: %w", err)
	}
	db := &DB{pool: pool, log: log, schema: opts.Schema, addr: address(pc.ConnConfig)}
	if err := db.waitReady(ctx, cfg.ConnectTimeout); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// waitReady pings until the database answers, at most timeout: a server
// that is still starting, full, or closed to connections for maintenance
// is waited for; one that refuses the login, or whose certificate cannot
// be verified, is not.
func (db *DB) waitReady(ctx context.Context, timeout time.Duration) error {
	refused := func(err error) bool {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			// What a running consumer would retry — starting up (57P03),
			// full (53300), closed to connections for now (FATAL 55000) —
			// is waited for; a wrong password or database is not.
			return !IsRetryable(pgErr)
		}
		_, bad := reach.Certificate(err, "")
		return bad
	}
	err, refusal := reach.Wait(ctx, timeout, db.pool.Ping, refused,
		func(err error) { db.log.Debug("postgres not answering yet", "addr", db.addr, "err", err) })
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case refusal:
		return fmt.Errorf("cannot connect to PostgreSQL at %s: %w", db.addr, describe(err))
	}
	return fmt.Errorf("%w PostgreSQL at %s: %s", ErrUnreachable, db.addr, describeNet(err, timeout))
}

// ErrReadOnly marks a database that accepts no writes.
var ErrReadOnly = errors.New("read-only")

// CheckWritable waits up to timeout for the database to accept writes. A
// standby being promoted in a failover is waited for; one that stays
// read-only (a replica, a read-only endpoint, default_transaction_read_only
// on) is reported in one line: every batch written to it would fail.
func (db *DB) CheckWritable(ctx context.Context, timeout time.Duration) error {
	writable := func(ctx context.Context) error {
		var ro string
		if err := db.pool.QueryRow(ctx, "SHOW transaction_read_only").Scan(&ro); err != nil {
			return err
		}
		if ro == "on" {
			return ErrReadOnly
		}
		return nil
	}
	err, _ := reach.Wait(ctx, timeout, writable, func(err error) bool { return !errors.Is(err, ErrReadOnly) && !IsRetryable(err) },
		func(err error) { db.log.Debug("postgres not writable yet", "addr", db.addr, "err", err) })
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, ErrReadOnly):
		return fmt.Errorf("database at %s is %w after %s (a standby or replica, or default_transaction_read_only is on): "+
			"point --database-url at the primary", db.addr, ErrReadOnly, timeout)
	}
	return fmt.Errorf("check that PostgreSQL at %s accepts writes: %w", db.addr, describe(err))
}

// closeWait bounds Close: pgx's goodbye to a server that does not answer
// (a network partition: no reset, no reply) waits 15 s a connection, and a
// stopping consumer must be gone within 10.
const closeWait = 2 * time.Second

// Close closes every connection of the pool, waiting at most closeWait;
// connections still closing then are left to finish in the background
// (the process is usually about to exit).
func (db *DB) Close() {
	done := make(chan struct{})
	go func() {
		db.pool.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeWait):
		db.log.Warn("the database did not answer the goodbye of its connections in time; leaving them", "addr", db.addr,
			"timeout", closeWait.String())
	}
}

// Addr is the host:port (or socket directory) the pool connects to.
func (db *DB) Addr() string { return db.addr }

// ServerVersion returns the server's version string, e.g. "15.18".
func (db *DB) ServerVersion(ctx context.Context) (string, error) {
	var v string
	err := db.pool.QueryRow(ctx, "SHOW server_version").Scan(&v)
	if err != nil {
		return "", fmt.Errorf("server version: %w", err)
	}
	return strings.Fields(v)[0], nil
}

// CreateSchema creates a schema (if missing) for a test or a bench run.
func (db *DB) CreateSchema(ctx context.Context, name string) error {
	if _, err := db.pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create schema %s: %w", name, describe(err))
	}
	return nil
}

// DropSchema removes a schema and everything in it.
func (db *DB) DropSchema(ctx context.Context, name string) error {
	if _, err := db.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("drop schema %s: %w", name, describe(err))
	}
	return nil
}

func address(c *pgx.ConnConfig) string {
	if strings.HasPrefix(c.Host, "/") {
		return c.Host
	}
	return net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port)))
}

// PoolStats are the connection pool's figures, for metrics.
type PoolStats struct {
	Acquired, Idle, Max     int32
	Acquires, EmptyAcquires int64
	CanceledAcquires        int64
	AcquireWait             time.Duration // in all, since the pool opened
}

// PoolStats reads the pool's figures now.
func (db *DB) PoolStats() PoolStats {
	s := db.pool.Stat()
	return PoolStats{
		Acquired: s.AcquiredConns(), Idle: s.IdleConns(), Max: s.MaxConns(),
		Acquires: s.AcquireCount(), EmptyAcquires: s.EmptyAcquireCount(), CanceledAcquires: s.CanceledAcquireCount(),
		AcquireWait: s.AcquireDuration(),
	}
}

// Ping checks that the database answers, on a connection of the pool.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("PostgreSQL at %s: %w", db.addr, describe(err))
	}
	return nil
}
