package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

// The test bed itself (scripts/testbed.sh) and how CI (.ci/run) treats it,
// on test beds of the tests' own so the shared one is never touched.

// testbed is a private test bed run dir.
type testbed struct {
	t   *testing.T
	dir string
}

// newTestbed returns a run dir for a private test bed, taken down when the
// test ends. Not under t.TempDir(): its 0700 parent keeps the postgres user out.
func newTestbed(t *testing.T) *testbed {
	t.Helper()
	// A private test bed takes a minute to build: only where the shared
	// one runs, which says the tools it needs are here.
	testenv.RequireTestbed(t)
	parent, err := os.MkdirTemp("", "foodpipe-testbed-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &testbed{t: t, dir: filepath.Join(parent, "run")}
	t.Cleanup(func() {
		if _, _, err := b.run(nil, "down"); err != nil {
			t.Errorf("testbed.sh down: %v", err)
		}
		os.RemoveAll(parent)
	})
	return b
}

// run runs scripts/testbed.sh on the private run dir with env added.
func (b *testbed) run(env []string, args ...string) (stdout, stderr string, err error) {
	return b.exec(env, append([]string{"../scripts/testbed.sh"}, args...)...)
}

// must is run that fails the test on an error.
func (b *testbed) must(env []string, args ...string) string {
	b.t.Helper()
	out, stderr, err := b.run(env, args...)
	if err != nil {
		b.t.Fatalf("testbed.sh %v: %v\n%s", args, err, stderr)
	}
	return out
}

// ci calls one function of .ci/run, sourced, on the private run dir.
func (b *testbed) ci(fn string, args ...string) string {
	b.t.Helper()
	out, stderr, err := b.exec(nil, append([]string{"bash", "-c", `source ../.ci/run && "$@"`, "ci", fn}, args...)...)
	if err != nil {
		b.t.Fatalf(".ci/run %s: %v\n%s", fn, err, stderr)
	}
	return out
}

func (b *testbed) exec(env []string, args ...string) (stdout, stderr string, err error) {
	c := exec.Command(args[0], args[1:]...)
	// Last wins: the shared test bed's FOODPIPE_TESTBED_DIR may be exported.
	c.Env = append(append(os.Environ(), env...), "FOODPIPE_TESTBED_DIR="+b.dir)
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	err = c.Run()
	return o.String(), e.String(), err
}

// env returns line 1 of `testbed.sh env`: the brokers and database URL.
func (b *testbed) env() map[string]string {
	b.t.Helper()
	env := map[string]string{}
	for _, f := range strings.Fields(strings.SplitN(b.must(nil, "env"), "\n", 2)[0]) {
		if k, v, ok := strings.Cut(f, "="); ok {
			env[k] = v
		}
	}
	return env
}

var runningRE = regexp.MustCompile(`(?m)^(kafka|postgres): +running`)

// running returns which services `testbed.sh status` reports running.
func (b *testbed) running() string {
	b.t.Helper()
	out, _, _ := b.run(nil, "status")
	var names []string
	for _, m := range runningRE.FindAllStringSubmatch(out, -1) {
		names = append(names, m[1])
	}
	return strings.Join(names, " ")
}

// TestTestbedCIStopsOnlyWhatItStarted starts a private test bed with a
// cluster id that starts with '-' (what a random id does 1 time in 64, and
// kafka-storage format then failed), fills it with orders, and runs .ci/run's
// start and exit steps around it: a test bed that was up stays up with its
// data, a broker CI restarted is stopped again, and a test bed CI made is
// removed.
func TestTestbedCIStopsOnlyWhatItStarted(t *testing.T) {
	t.Parallel()
	ciRun, err := os.ReadFile("../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(ciRun, []byte("stop_what_ci_started()")) {
		t.Fatal(".ci/run has no stop_what_ci_started: it would stop a test bed the user had started")
	}
	b := newTestbed(t)

	// A CI run begins with no test bed; its tests bring one up.
	atStart := b.ci("testbed_before")
	id := dashClusterID(t)
	b.must([]string{"FOODPIPE_TESTBED_CLUSTER_ID=" + id}, "up")
	env := b.env()
	brokers := []string{env["FOODPIPE_TEST_BROKERS"]}
	meta, err := testenv.AdminAt(t, brokers).BrokerMetadata(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if meta.Cluster != id {
		t.Fatalf("cluster id %q, want %q", meta.Cluster, id)
	}
	p := &pipeline{t: t, brokers: brokers, topic: "orders", group: "orders", dsn: env["FOODPIPE_TEST_DATABASE_URL"]}
	p.init()
	const n = 200
	p.produce(n)
	c := p.startConsumer()
	p.waitCaughtUp(p.db(), 2*time.Minute, c)
	c.stop(t)
	counts := func(wantKafka bool) {
		t.Helper()
		if got := p.count(p.db()); got != n {
			t.Errorf("%d rows, want %d", got, n)
		}
		if wantKafka {
			if got := sumOffsets(testenv.EndOffsetsAt(t, brokers, p.topic)); got != n {
				t.Errorf("end offsets sum to %d, want %d", got, n)
			}
		}
	}

	// A second CI run while the test bed is up: it must leave it up.
	before := b.ci("testbed_before")
	b.must(nil, "up")
	b.ci("stop_what_ci_started", before)
	if got := b.running(); got != "kafka postgres" {
		t.Fatalf("after a CI run on a running test bed, running: %q, want both", got)
	}
	counts(true)

	// With the broker stopped, CI starts it and stops it again, and only it.
	b.must(nil, "kafka-stop")
	before = b.ci("testbed_before")
	b.must(nil, "up")
	if got := b.running(); got != "kafka postgres" {
		t.Fatalf("up did not start the broker: running %q", got)
	}
	b.ci("stop_what_ci_started", before)
	if got := b.running(); got != "postgres" {
		t.Fatalf("after a CI run that started the broker, running: %q, want postgres only", got)
	}
	counts(false)

	// The first CI run ends: it made the test bed, so it removes it.
	b.ci("stop_what_ci_started", atStart)
	if _, err := os.Stat(b.dir); !os.IsNotExist(err) {
		t.Errorf("run dir %s still there after the CI run that made it ended (stat: %v)", b.dir, err)
	}
}

// dashClusterID returns a valid Kafka cluster id (16 bytes, URL-safe base64)
// that starts with '-'.
func dashClusterID(t *testing.T) string {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		t.Fatal(err)
	}
	u[0] = 0xf8 | u[0]&0x03 // top six bits 62: '-' in the URL-safe alphabet
	return base64.RawURLEncoding.EncodeToString(u[:])
}

// TestTestbedPrivateParent: as root, PostgreSQL runs as the postgres user,
// which cannot enter a run dir under a 0700 directory. up says so in one
// line, naming the directory and what to do, before anything is started.
func TestTestbedPrivateParent(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only as root does PostgreSQL run as another user")
	}
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	b := &testbed{t: t, dir: filepath.Join(private, "run")}
	t.Cleanup(func() { _, _, _ = b.run(nil, "down") })
	_, stderr, err := b.run(nil, "up")
	if err == nil {
		t.Fatalf("up succeeded under a 0700 directory:\n%s", stderr)
	}
	var errs []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "testbed: error:") {
			errs = append(errs, l)
		}
	}
	if len(errs) != 1 {
		t.Fatalf("want one error line, got %d:\n%s", len(errs), stderr)
	}
	for _, want := range []string{"cannot enter", filepath.Dir(private), "FOODPIPE_TESTBED_DIR", "chmod o+x"} {
		if !strings.Contains(errs[0], want) {
			t.Errorf("error line %q does not say %q", errs[0], want)
		}
	}
	if strings.Contains(stderr, "Permission denied") {
		t.Errorf("the bare initdb error still shows:\n%s", stderr)
	}
	// Nothing started, no cluster made.
	if got := b.running(); got != "" {
		t.Errorf("running after the failed up: %q", got)
	}
	if _, err := os.Stat(filepath.Join(b.dir, "pg", "data", "PG_VERSION")); !os.IsNotExist(err) {
		t.Errorf("a PostgreSQL cluster was initialized (stat: %v)", err)
	}
}
