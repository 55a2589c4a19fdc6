package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// Postgres is a private PostgreSQL cluster that one test may stop and start
// (an outage) without disturbing the shared test bed the other tests use.
type Postgres struct {
	t    testing.TB
	bin  string
	data string
	log  string
	port int
	// asOwner runs a command as the cluster owner: initdb and postgres
	// refuse to run as root.
	asOwner func(args ...string) *exec.Cmd
	URL     string // postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
}

// PrivatePostgres initialises and starts a throwaway cluster from the
// installed PostgreSQL binaries (FOODPIPE_TESTBED_PG_BIN, as exported by
// scripts/testbed.sh env); it is stopped and removed when the test ends.
func PrivatePostgres(t testing.TB) *Postgres {
	t.Helper()
	bin := os.Getenv("FOODPIPE_TESTBED_PG_BIN")
	if bin == "" {
		bin = "/usr/lib/postgresql/15/bin"
	}
	if _, err := os.Stat(filepath.Join(bin, "initdb")); err != nil {
		unavailable(t, "PostgreSQL binaries", err)
	}
	dir, err := os.MkdirTemp("", "foodpipe-pg-")
	if err != nil {
		t.Fatal(err)
	}
	pg := &Postgres{t: t, bin: bin, data: filepath.Join(dir, "data"), log: filepath.Join(dir, "postgres.log")}
	pg.asOwner = func(args ...string) *exec.Cmd { return exec.Command(args[0], args[1:]...) }
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			unavailable(t, "PostgreSQL (no postgres user to run it as)", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		pg.asOwner = func(args ...string) *exec.Cmd {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
		}
	}
	t.Cleanup(func() {
		_ = pg.asOwner(filepath.Join(bin, "pg_ctl"), "-D", pg.data, "-m", "immediate", "-w", "stop").Run()
		os.RemoveAll(dir)
	})
	pg.run("initdb", "-D", pg.data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-locale")
	pg.port = freePort(t)
	conf := fmt.Sprintf("listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nmax_connections = 50\n", pg.port, dir)
	f, err := os.OpenFile(filepath.Join(pg.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(conf); err != nil {
		t.Fatal(err)
	}
	f.Close()
	pg.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
	pg.Start()
	return pg
}

// Start starts the cluster (again) on its port and waits until it accepts
// connections.
func (pg *Postgres) Start() {
	pg.t.Helper()
	pg.run("pg_ctl", "-D", pg.data, "-l", pg.log, "-w", "-t", "60", "start")
}

// Stop shuts the cluster down, disconnecting every client (an outage).
func (pg *Postgres) Stop() {
	pg.t.Helper()
	pg.run("pg_ctl", "-D", pg.data, "-m", "fast", "-w", "-t", "60", "stop")
}

func (pg *Postgres) run(tool string, args ...string) {
	pg.t.Helper()
	out, err := pg.asOwner(append([]string{filepath.Join(pg.bin, tool)}, args...)...).CombinedOutput()
	if err != nil {
		pg.t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
