package store

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/config"
)

// migrations are the real files of sql/, read from disk: the binary embeds
// the same directory.
var migrations = os.DirFS("../../sql")

// openTest opens a pool on a fresh schema of the test database.
func openTest(t *testing.T) *DB {
	t.Helper()
	dsn, _ := testenv.Schema(t)
	db, err := Open(t.Context(), config.Postgres{DatabaseURL: dsn, ConnectTimeout: 20 * time.Second}, Options{}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	ctx := t.Context()

	first, err := db.Migrate(ctx, migrations)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := fsGlob(t)
	if len(first) != len(files) || len(first) == 0 {
		t.Fatalf("Migrate reported %d migrations, sql/ holds %d", len(first), len(files))
	}
	for _, m := range first {
		if !m.Applied || !m.Ran || m.AppliedAt == nil {
			t.Errorf("first run: %+v, want applied now", m)
		}
	}

	second, err := db.Migrate(ctx, migrations)
	if err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	for _, m := range second {
		if !m.Applied || m.Ran {
			t.Errorf("second run: %+v, want applied before, not now", m)
		}
	}

	status, err := db.MigrationStatus(ctx, migrations)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range status {
		if !m.Applied || m.File != files[i] {
			t.Errorf("status[%d] = %+v, want %s applied", i, m, files[i])
		}
	}
}

func fsGlob(t *testing.T) ([]string, error) {
	t.Helper()
	entries, err := os.ReadDir("../../sql")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			files = append(files, e.Name())
		}
	}
	return files, nil
}

// TestSchemaMatchesSpec reads the catalog back: the tables, columns, types,
// check constraint and indexes must be those of SPEC.md.
func TestSchemaMatchesSpec(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	ctx := t.Context()
	if _, err := db.Migrate(ctx, migrations); err != nil {
		t.Fatal(err)
	}

	type column struct{ table, name, typ, nullable, def string }
	rows, err := db.pool.Query(ctx, `
		SELECT table_name, column_name,
		       CASE WHEN data_type = 'character varying' THEN 'varchar(' || character_maximum_length || ')'
		            WHEN data_type = 'numeric' THEN 'numeric(' || numeric_precision || ',' || numeric_scale || ')'
		            ELSE data_type END,
		       is_nullable, coalesce(column_default, '')
		FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name IN ('orders', 'consumer_offsets')
		ORDER BY table_name, ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	var got []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.table, &c.name, &c.typ, &c.nullable, &c.def); err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []column{
		{"consumer_offsets", "consumer_group", "text", "NO", ""},
		{"consumer_offsets", "topic", "text", "NO", ""},
		{"consumer_offsets", "partition", "integer", "NO", ""},
		{"consumer_offsets", "next_offset", "bigint", "NO", ""},
		{"consumer_offsets", "updated_at", "timestamp with time zone", "NO", "now()"},
		{"consumer_offsets", "topic_id", "text", "YES", ""},
		{"orders", "order_id", "varchar(50)", "NO", ""},
		{"orders", "customer_id", "varchar(50)", "NO", ""},
		{"orders", "customer_name", "varchar(100)", "NO", ""},
		{"orders", "customer_email", "varchar(100)", "NO", ""},
		{"orders", "items", "jsonb", "NO", ""},
		{"orders", "total_amount", "numeric(10,2)", "NO", ""},
		{"orders", "status", "varchar(20)", "NO", ""},
		{"orders", "created_at", "timestamp with time zone", "NO", ""},
		{"orders", "processed_at", "timestamp with time zone", "NO", "now()"},
	}
	if len(got) != len(want) {
		t.Fatalf("columns:\n got %v\nwant %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("column %d: got %+v, want %+v", i, got[i], want[i])
		}
	}

}

// TestSchemaConstraintsAndIndexes: the CHECK on total_amount and exactly
// the SPEC's indexes, the GIN one usable by containment queries.
func TestSchemaConstraintsAndIndexes(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	ctx := t.Context()
	if _, err := db.Migrate(ctx, migrations); err != nil {
		t.Fatal(err)
	}
	var checkDef string
	if err := db.pool.QueryRow(ctx, `
		SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
		JOIN pg_class r ON r.oid = c.conrelid
		WHERE r.relname = 'orders' AND r.relnamespace = current_schema()::regnamespace AND c.contype = 'c'`).Scan(&checkDef); err != nil {
		t.Fatalf("check constraint on orders: %v", err)
	}
	if checkDef != "CHECK ((total_amount > (0)::numeric))" {
		t.Errorf("check constraint = %q", checkDef)
	}

	indexes := map[string]bool{}
	rows, err := db.pool.Query(ctx, `
		SELECT tablename || ' ' || regexp_replace(indexdef, '^.* USING ', 'USING ')
		FROM pg_indexes WHERE schemaname = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var def string
		if err := rows.Scan(&def); err != nil {
			t.Fatal(err)
		}
		indexes[def] = true
	}
	wantIdx := []string{
		"orders USING btree (order_id)",
		"orders USING btree (created_at)",
		"orders USING btree (customer_id, created_at)",
		"orders USING gin (items jsonb_path_ops) WITH (gin_pending_list_limit='256')",
		"consumer_offsets USING btree (consumer_group, topic, partition)",
	}
	for _, w := range wantIdx {
		if !indexes[w] {
			t.Errorf("missing index %q (have %v)", w, indexes)
		}
	}
	if indexes["orders USING btree (customer_id)"] {
		t.Error("a customer_id-only index exists; the SPEC leaves it out")
	}
	if len(indexes) != len(wantIdx)+1 { // +1: goose's own version table key
		t.Errorf("indexes = %v, want exactly %v plus goose's", indexes, wantIdx)
	}

	// The containment query the GIN index is for can use it.
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	var plan strings.Builder
	prows, err := tx.Query(ctx, `EXPLAIN SELECT order_id FROM orders WHERE items @> '[{"item_id": "ITEM-003"}]'`)
	if err != nil {
		t.Fatal(err)
	}
	for prows.Next() {
		var line string
		if err := prows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if !strings.Contains(plan.String(), "orders_items_path_idx") {
		t.Errorf("the containment query does not use the GIN index:\n%s", plan.String())
	}
}

// TestMigrateConcurrently starts three migrators at the same moment on an
// empty schema: all succeed and each migration is recorded once.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.Schema(t)
	ctx := t.Context()
	const n = 3
	dbs := make([]*DB, n)
	for i := range dbs {
		db, err := Open(ctx, config.Postgres{DatabaseURL: dsn, ConnectTimeout: 20 * time.Second}, Options{}, testenv.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		dbs[i] = db
	}
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Go(func() {
			<-start
			_, errs[i] = db.Migrate(ctx, migrations)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrator %d: %v", i, err)
		}
	}
	var versions, distinct int
	if err := dbs[0].pool.QueryRow(ctx,
		`SELECT count(*), count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0`).Scan(&versions, &distinct); err != nil {
		t.Fatal(err)
	}
	files, _ := fsGlob(t)
	if versions != len(files) || distinct != len(files) {
		t.Errorf("goose_db_version holds %d rows for %d versions, want %d each", versions, distinct, len(files))
	}
}

func TestMigrationErrorNamesFileStatementAndCause(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	bad := fstest.MapFS{
		"00001_ok.sql":  {Data: []byte("-- +goose Up\nCREATE TABLE a (id int);\n")},
		"00002_bad.sql": {Data: []byte("-- +goose Up\nCREATE TABLE b (id int REFERENCES missing_table(id));\n")},
	}
	_, err := db.Migrate(t.Context(), bad)
	if err == nil {
		t.Fatal("Migrate succeeded, want an error")
	}
	for _, want := range []string{"00002_bad.sql", "CREATE TABLE b", `relation "missing_table" does not exist`, "42P01"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	// The good migration before it stays applied; the bad one is not.
	st, err := db.MigrationStatus(context.WithoutCancel(t.Context()), bad)
	if err != nil {
		t.Fatal(err)
	}
	if !st[0].Applied || st[1].Applied {
		t.Errorf("status after failure = %+v, want first applied, second pending", st)
	}
}

// TestMigrateOverAForeignTable: the database already has an orders table
// that foodpipe did not create (the teaching project's, say). Migrate fails
// without touching it, and the line says what to do: another database or
// schema.
func TestMigrateOverAForeignTable(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	if _, err := db.pool.Exec(t.Context(), "CREATE TABLE orders (id serial PRIMARY KEY, order_id text, total numeric)"); err != nil {
		t.Fatal(err)
	}
	_, err := db.Migrate(t.Context(), migrations)
	if err == nil {
		t.Fatal("Migrate succeeded over a foreign orders table")
	}
	for _, want := range []string{"table orders already exists in schema ", "not created by foodpipe", "search_path"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	var cols int
	if err := db.pool.QueryRow(t.Context(), "SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders' AND table_schema = current_schema()").Scan(&cols); err != nil || cols != 3 {
		t.Errorf("the foreign table has %d columns (err %v), want its 3 untouched", cols, err)
	}
	if ok, err := db.hasHistory(t.Context()); err != nil || ok {
		t.Errorf("goose's version table was created in the foreign schema (err %v)", err)
	}
}

// TestCheckColumnsRefusesColumnsOfAnotherType: the rows go to PostgreSQL in
// COPY's binary format, encoded for the types of the migrations. A column
// the operator changed to another type receives bytes meant for the old
// one: items changed to text stored every order with jsonb's version byte
// in front, silently; changed to json, every order was dead-lettered.
// CheckColumns, the consumer's start-up check, refuses such a table in one line naming the
// column and both types; a compatible change (a longer varchar, text) is
// accepted.
func TestCheckColumnsRefusesColumnsOfAnotherType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		alter string
		want  []string // in the error; none: accepted
	}{
		{"ALTER COLUMN items TYPE text", []string{`column items of orders is text`, "jsonb"}},
		{"ALTER COLUMN items TYPE json", []string{`column items of orders is json`, "jsonb"}},
		{"ALTER COLUMN created_at TYPE timestamp", []string{"created_at", "timestamp without time zone", "timestamptz"}},
		{"ALTER COLUMN total_amount TYPE double precision", []string{"total_amount", "double precision", "numeric"}},
		{"DROP COLUMN status", []string{"column status", "missing"}},
		{"ALTER COLUMN customer_name TYPE varchar(200)", nil},
		{"ALTER COLUMN customer_email TYPE text", nil},
		{"ALTER COLUMN total_amount TYPE numeric(12,2)", nil},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.alter, " ", "_"), func(t *testing.T) {
			t.Parallel()
			db := openMigrated(t, Options{})
			if _, err := db.pool.Exec(t.Context(), "DROP INDEX orders_items_path_idx; ALTER TABLE orders "+tt.alter); err != nil {
				t.Fatal(err)
			}
			err := db.CheckColumns(t.Context())
			if tt.want == nil {
				if err != nil {
					t.Errorf("a compatible change refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s: accepted", tt.alter)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestNoSchemaOnTheSearchPath: a search_path naming no existing schema gives
// nowhere to migrate to or read from; the line names the search_path, and
// db status is not blamed as "migrate".
func TestNoSchemaOnTheSearchPath(t *testing.T) {
	t.Parallel()
	dsn := testenv.WithSearchPath(testenv.DatabaseURL(t), "nowhere_at_all")
	db, err := Open(t.Context(), config.Postgres{DatabaseURL: dsn, ConnectTimeout: 20 * time.Second}, Options{}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	_, statusErr := db.MigrationStatus(t.Context(), migrations)
	_, migrateErr := db.Migrate(t.Context(), migrations)
	for name, err := range map[string]error{"status": statusErr, "migrate": migrateErr} {
		if err == nil || !strings.Contains(err.Error(), `search_path "nowhere_at_all" names no existing schema`) {
			t.Errorf("%s: error %v, want one naming the search_path", name, err)
		}
	}
	if statusErr != nil && strings.HasPrefix(statusErr.Error(), "migrate") {
		t.Errorf("status error %q blames migrate", statusErr)
	}
}
