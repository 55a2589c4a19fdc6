package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3"
)

// wantPgError checks that err reads with the words of want and still holds
// a *pgconn.PgError of code in its chain, for errors.As and IsRetryable.
func wantPgError(t *testing.T, err error, code string, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != code {
		t.Errorf("errors.As(%q) found %v, want the *pgconn.PgError of SQLSTATE %s", err, pgErr, code)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

// TestMigrateErrorKeepsPgError: a migration's error names the file, the
// statement, the SQLSTATE and the detail, and keeps the server's error in
// its chain, with or without goose's account of the failed file.
func TestMigrateErrorKeepsPgError(t *testing.T) {
	pgErr := &pgconn.PgError{Severity: "ERROR", Code: "42P07", Message: `relation "orders" already exists`,
		Detail: "made by another application"}
	partial := &goose.PartialError{Failed: &goose.MigrationResult{Source: &goose.Source{Path: "00001_orders.sql"}},
		Err: fmt.Errorf("exec: %w", pgErr)}
	wantPgError(t, migrationError(partial, "CREATE TABLE orders (id int)"), "42P07",
		"migrate: 00001_orders.sql: statement \"CREATE TABLE orders", "ERROR: relation \"orders\" already exists (SQLSTATE 42P07)",
		"; detail: made by another application; it was not created by foodpipe")
	wantPgError(t, migrationError(fmt.Errorf("goose: %w", pgErr), ""), "42P07",
		"migrate: ERROR: relation \"orders\" already exists (SQLSTATE 42P07); detail: made by another application")
}

// TestMigrateFailureKeepsPgError runs a migration PostgreSQL refuses: the
// error the caller gets still holds the server's.
func TestMigrateFailureKeepsPgError(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	bad := fstest.MapFS{"00001_bad.sql": {Data: []byte("-- +goose Up\nCREATE TABLE b (id int REFERENCES missing_table(id));\n")}}
	_, err := db.Migrate(t.Context(), bad)
	wantPgError(t, err, "42P01", "00001_bad.sql", `relation "missing_table" does not exist (SQLSTATE 42P01)`)
	if IsRetryable(err) {
		t.Error("a bad migration is retryable")
	}
}

// TestSchemaCreateFailureKeepsPgError: PostgreSQL reserves the pg_ prefix;
// the refusal keeps its SQLSTATE and detail in the text and the chain.
func TestSchemaCreateFailureKeepsPgError(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	err := db.CreateSchema(t.Context(), "pg_foodpipe_test")
	wantPgError(t, err, "42939", `create schema pg_foodpipe_test: ERROR: unacceptable schema name "pg_foodpipe_test" (SQLSTATE 42939)`,
		`detail: The prefix "pg_" is reserved for system schemas.`)
}
