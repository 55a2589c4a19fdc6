package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

func TestDBMigrate(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.Schema(t)
	url := "--database-url=" + dsn
	for i := range 2 {
		r := run(t, nil, "db", "migrate", url)
		if r.code != 0 {
			t.Fatalf("migrate run %d:\n%s", i+1, r)
		}
	}
	r := run(t, nil, "db", "status", url, "--output", "json")
	if r.code != 0 {
		t.Fatal(r)
	}
	var status []struct {
		File    string `json:"file"`
		Applied bool   `json:"applied"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &status); err != nil {
		t.Fatalf("%v\n%s", err, r)
	}
	files, _ := filepath.Glob("../sql/*.sql")
	if len(status) != len(files) {
		t.Fatalf("status lists %d migrations, sql/ has %d", len(status), len(files))
	}
	for i, s := range status {
		if !s.Applied || s.File != filepath.Base(files[i]) {
			t.Errorf("status[%d] = %+v, want %s applied", i, s, filepath.Base(files[i]))
		}
	}
}

// TestDBMigrateConcurrentProcesses starts three db migrate processes at the
// same moment on an empty schema: all exit 0, and the schema is applied once
// (a second application would fail on CREATE TABLE).
func TestDBMigrateConcurrentProcesses(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.Schema(t)
	cmds := make([]*exec.Cmd, 3)
	outs := make([]bytes.Buffer, 3)
	for i := range cmds {
		cmds[i] = command(t, t.Context(), nil, "db", "migrate", "--database-url="+dsn, "--output", "json")
		cmds[i].Stdout, cmds[i].Stderr = &outs[i], &outs[i]
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, c := range cmds {
		wg.Go(func() { errs[i] = c.Run() })
	}
	wg.Wait()
	ranNow := 0
	for i, err := range errs {
		if err != nil {
			t.Errorf("process %d: %v\n%s", i, err, outs[i].String())
			continue
		}
		ranNow += strings.Count(outs[i].String(), `"ran": true`)
	}
	files, _ := filepath.Glob("../sql/*.sql")
	if ranNow != len(files) {
		t.Errorf("the three processes applied %d migrations in total, want each of %d exactly once", ranNow, len(files))
	}
}

// TestDBNewerThanBinary: a newer foodpipe migrated the database, an older
// one still runs against it (a rolling upgrade, or a binary left behind).
// Additive migrations keep it working, so it is not refused, but every
// command that reads the schema's version says so at warn level instead of
// reporting "all applied" as if the schema were the one it knows.
func TestDBNewerThanBinary(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	p.produce(100)
	files, _ := filepath.Glob("../sql/*.sql")
	conn := p.db()
	if _, err := conn.Exec(t.Context(), "INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)", len(files)+1); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`level=WARN msg="the database has migrations newer than this foodpipe knows: a newer foodpipe migrated it; upgrade this one" database_migration=%d known_migration=%d`,
		len(files)+1, len(files))
	for _, args := range [][]string{
		{"db", "status", "--database-url", p.dsn},
		{"db", "migrate", "--database-url", p.dsn},
		{"consume", p.brokersFlag(), "--topic", p.topic, "--group", p.group, "--database-url", p.dsn, "--stop-at-end"},
	} {
		r := run(t, nil, args...)
		if r.code != 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("%s: want exit 0 and a warning %q\n%s", strings.Join(args[:2], " "), want, r)
		}
	}
	p.checkOrders(conn, 100)
}

// TestDBMigrateAfterTheTableWasDropped: a table or column of foodpipe's
// dropped by hand after its migration ran. goose still records the
// migration as applied, so db migrate creates nothing; it must say what is
// missing (exit 1) instead of reporting a schema that is not there.
func TestDBMigrateAfterTheTableWasDropped(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ drop, want string }{
		{"DROP TABLE orders", "table orders does not exist"},
		{"DROP TABLE consumer_offsets", "table consumer_offsets does not exist"},
		{"ALTER TABLE consumer_offsets DROP COLUMN topic_id", "column topic_id of consumer_offsets is missing"},
	} {
		t.Run(strings.ReplaceAll(tt.drop, " ", "_"), func(t *testing.T) {
			t.Parallel()
			dsn, _ := testenv.Schema(t)
			if r := run(t, nil, "db", "migrate", "--database-url", dsn); r.code != 0 {
				t.Fatal(r)
			}
			mustExec(t, dsn, tt.drop)
			for _, cmd := range []string{"migrate", "status"} {
				r := run(t, nil, "db", cmd, "--database-url", dsn)
				if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, tt.want) ||
					!strings.Contains(line, "recorded as applied") {
					t.Errorf("db %s: want exit 1 saying %q though migrated:\n%s", cmd, tt.want, r)
				}
			}
		})
	}
}

// TestDBLeavesAForeignSchemaAlone: pointed at a schema another application
// owns (its own orders table, no migration history), db migrate refuses in
// one line before it creates anything, and db status reports every
// migration pending without creating goose's version table either.
func TestDBLeavesAForeignSchemaAlone(t *testing.T) {
	t.Parallel()
	dsn, schema := testenv.Schema(t)
	mustExec(t, dsn, "CREATE TABLE orders (id serial PRIMARY KEY, customer text, amount numeric)")
	r := run(t, nil, "db", "migrate", "--database-url", dsn)
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "orders") || !strings.Contains(line, "not created by foodpipe") {
		t.Errorf("db migrate over a foreign orders table: want exit 1 saying so\n%s", r)
	}
	r = run(t, nil, "db", "status", "--database-url", dsn, "--output", "json")
	var status []struct {
		Applied bool `json:"applied"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &status); err != nil || r.code != 0 || len(status) == 0 || status[0].Applied {
		t.Errorf("db status of a foreign schema: want exit 0, every migration pending: %v\n%s", err, r)
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var tables []string
	rows, _ := conn.Query(t.Context(), "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1", schema)
	if tables, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tables, []string{"orders"}) {
		t.Errorf("tables in the foreign schema afterwards: %v, want only its own orders", tables)
	}
}
