package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Migration is the state of one embedded migration.
type Migration struct {
	Version   int64      `json:"version"`
	File      string     `json:"file"`
	Applied   bool       `json:"applied"`
	AppliedAt *time.Time `json:"applied_at,omitempty"`
	// Ran is set by Migrate for the migrations this call applied.
	Ran bool `json:"ran"`
}

// provider builds a goose provider over this pool. goose brings versioning,
// per-migration transactions and a session advisory lock, so concurrent
// migrators apply each migration once.
func (db *DB) provider(ctx context.Context, migrations fs.FS, rec *statementRecorder) (*goose.Provider, func(), error) {
	var schema, searchPath string
	if err := db.pool.QueryRow(ctx, "SELECT coalesce(current_schema(), ''), current_setting('search_path')").Scan(&schema, &searchPath); err != nil {
		return nil, nil, fmt.Errorf("migrations: %w", describe(err))
	}
	if schema == "" {
		return nil, nil, fmt.Errorf("the search_path %q names no existing schema: create it, or name an existing schema in the database URL", searchPath)
	}
	locker, err := lock.NewPostgresSessionLocker(
		// One lock per schema: migrators of different schemas (parallel
		// tests, bench runs) need not wait for each other.
		lock.WithLockID(lockID(schema)),
		// Poll every second for up to 5 minutes: a waiting migrator notices
		// the winner's release quickly.
		lock.WithLockTimeout(1, 300),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("migrations: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations,
		goose.WithSessionLocker(locker),
		// The binary carries its migrations; ignore anything registered globally.
		goose.WithDisableGlobalRegistry(true),
		// goose names the statement it runs only in its verbose log; record
		// it, so a failing migration can be reported with its statement.
		goose.WithVerbose(true),
		goose.WithSlog(slog.New(rec)),
	)
	if err != nil {
		sqlDB.Close()
		return nil, nil, fmt.Errorf("migrations: %w", err)
	}
	return p, func() { _ = p.Close() }, nil
}

func lockID(schema string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("foodpipe migrate " + schema))
	return int64(h.Sum64() >> 1)
}

// versionTable is goose's record of the migrations applied, in the schema
// migrated (the first of the search_path).
const versionTable = "goose_db_version"

// hasHistorySQL: does the schema migrated hold goose's version table?
const hasHistorySQL = `SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relname = $1)`

// foreignTablesSQL lists the tables of the schema migrated that foodpipe's
// migrations create.
const foreignTablesSQL = `SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relname IN ('orders', 'consumer_offsets') ORDER BY 1`

// hasHistory reports whether the schema migrated holds goose's version
// table. goose creates it in any schema it reads the status of, so the
// commands that only read ask first.
func (db *DB) hasHistory(ctx context.Context) (bool, error) {
	var ok bool
	if err := db.pool.QueryRow(ctx, hasHistorySQL, versionTable).Scan(&ok); err != nil {
		return false, fmt.Errorf("migration status: %w", describe(err))
	}
	return ok, nil
}

// checkNotForeign refuses to migrate a schema with no migration history
// that already holds a table foodpipe's migrations create: another
// application's. Nothing is created, goose's version table included.
func (db *DB) checkNotForeign(ctx context.Context) error {
	if ok, err := db.hasHistory(ctx); err != nil || ok {
		return err
	}
	rows, _ := db.pool.Query(ctx, foreignTablesSQL)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("migrate: %w", describe(err))
	}
	if len(tables) > 0 {
		return fmt.Errorf("migrate: table %s already exists in schema %s of %s and was not created by foodpipe (there is no "+
			"migration history): migrate another database, or a schema of its own (options=-csearch_path%%3Dfoodpipe in database-url, after "+
			"CREATE SCHEMA foodpipe)", strings.Join(tables, " and "), db.currentSchema(ctx), db.addr)
	}
	return nil
}

// currentSchema is the schema migrated, for messages.
func (db *DB) currentSchema(ctx context.Context) string {
	var s string
	if err := db.pool.QueryRow(ctx, "SELECT coalesce(current_schema(), '')").Scan(&s); err != nil {
		return "?"
	}
	return s
}

// Migrate applies every pending migration, each in its own transaction
// unless it says +goose NO TRANSACTION, under an advisory lock, and
// returns the state of all of them afterwards.
func (db *DB) Migrate(ctx context.Context, migrations fs.FS) ([]Migration, error) {
	if err := db.checkNotForeign(ctx); err != nil {
		return nil, err
	}
	rec := newStatementRecorder(db.log.Handler())
	p, closeP, err := db.provider(ctx, migrations, rec)
	if err != nil {
		return nil, err
	}
	defer closeP()
	results, err := p.Up(ctx)
	if err != nil {
		return nil, migrationError(err, *rec.last)
	}
	ran := map[int64]bool{}
	for _, r := range results {
		ran[r.Source.Version] = true
		db.log.Info("migration applied", "file", r.Source.Path, "duration", r.Duration.Round(time.Microsecond).String())
	}
	status, err := db.status(ctx, p)
	for i := range status {
		status[i].Ran = ran[status[i].Version]
	}
	return status, err
}

// MigrationStatus lists every embedded migration and whether it is applied.
func (db *DB) MigrationStatus(ctx context.Context, migrations fs.FS) ([]Migration, error) {
	p, closeP, err := db.provider(ctx, migrations, newStatementRecorder(db.log.Handler()))
	if err != nil {
		return nil, err
	}
	defer closeP()
	if ok, err := db.hasHistory(ctx); err != nil || !ok {
		return pending(p), err
	}
	return db.status(ctx, p)
}

// pending lists every migration of p as not applied: the state of a schema
// with no migration history, read without creating one.
func pending(p *goose.Provider) []Migration {
	src := p.ListSources()
	out := make([]Migration, len(src))
	for i, s := range src {
		out[i] = Migration{Version: s.Version, File: s.Path}
	}
	return out
}

// CheckMigrated refuses a schema with pending migrations: writing to a
// table that is missing or old would only fail later, or worse, succeed
// wrongly.
func (db *DB) CheckMigrated(ctx context.Context, migrations fs.FS) error {
	status, err := db.MigrationStatus(ctx, migrations)
	if err != nil {
		return err
	}
	for _, m := range status {
		if !m.Applied {
			return fmt.Errorf("database at %s is not migrated (%s pending): run foodpipe db migrate", db.addr, m.File)
		}
	}
	return nil
}

// status lists the embedded migrations. Versions the database has beyond
// them were applied by a newer foodpipe: this one is not refused (foodpipe's
// migrations are additive, so a rolling upgrade migrates first and replaces
// the binaries after), but it says so rather than report a schema it knows.
func (db *DB) status(ctx context.Context, p *goose.Provider) ([]Migration, error) {
	st, err := p.Status(ctx)
	if err == nil {
		var current, known int64
		if current, known, err = p.GetVersions(ctx); err == nil && current > known {
			db.log.Warn("the database has migrations newer than this foodpipe knows: a newer foodpipe migrated it; upgrade this one",
				"database_migration", current, "known_migration", known)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", describe(err))
	}
	out := make([]Migration, len(st))
	for i, s := range st {
		out[i] = Migration{Version: s.Source.Version, File: s.Source.Path, Applied: s.State == goose.StateApplied}
		if out[i].Applied {
			at := s.AppliedAt
			out[i].AppliedAt = &at
		}
	}
	return out, nil
}

// migrationError names the failing file, the statement and the Postgres
// error, which is what a person needs to fix a migration.
func migrationError(err error, statement string) error {
	var pe *goose.PartialError
	if errors.As(err, &pe) && pe.Failed != nil && pe.Failed.Source != nil {
		hint := ""
		var pgErr *pgconn.PgError
		if errors.As(pe.Err, &pgErr) && pgErr.Code == "42P07" { // duplicate table
			// Only a table foodpipe's own history does not know can be in
			// the way: goose has no record of creating it.
			hint = "; it was not created by foodpipe: migrate another database, or a schema of its own " +
				"(options=-csearch_path%3Dfoodpipe in database-url, after CREATE SCHEMA foodpipe)"
		}
		return fmt.Errorf("migrate: %s: statement %q: %w%s", pe.Failed.Source.Path, shorten(statement), describe(pe.Err), hint)
	}
	return fmt.Errorf("migrate: %w", describe(err))
}

// shorten makes a statement fit an error line: whitespace collapsed, at
// most 120 characters.
func shorten(stmt string) string {
	stmt = strings.Join(strings.Fields(stmt), " ")
	if len(stmt) > 120 {
		stmt = stmt[:117] + "..."
	}
	return stmt
}

// statementRecorder is the slog handler given to goose: it remembers the
// last statement goose started and passes goose's messages on at debug level.
type statementRecorder struct {
	next slog.Handler
	last *string
}

func newStatementRecorder(next slog.Handler) *statementRecorder {
	return &statementRecorder{next: next, last: new(string)}
}

func (r *statementRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *statementRecorder) Handle(ctx context.Context, rec slog.Record) error {
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "statement" {
			*r.last = a.Value.String()
			return false
		}
		return true
	})
	if !r.next.Enabled(ctx, slog.LevelDebug) {
		return nil
	}
	rec.Level = slog.LevelDebug
	return r.next.Handle(ctx, rec)
}

func (r *statementRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &statementRecorder{next: r.next.WithAttrs(as), last: r.last}
}

func (r *statementRecorder) WithGroup(name string) slog.Handler {
	return &statementRecorder{next: r.next.WithGroup(name), last: r.last}
}
