// Package e2e runs the real foodpipe binary the way a user does: flags,
// environment, exit codes, stdout and stderr, against the real Kafka and
// PostgreSQL of the test bed. One file per command; the proof is in the
// data (rows, offsets, records, dead letters).
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/order"
)

var binary string

// plainBinary is built without the race detector, for the tests that
// measure memory (the race detector multiplies it).
var plainBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "foodpipe-plain-bin-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "foodpipe")
	build := exec.Command("go", "build", "-o", path, ".")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build foodpipe: %v\n%s", err, out)
	}
	return path, nil
})

func TestMain(m *testing.M) {
	// FOODPIPE_TEST_BINARY runs the tests against a binary built elsewhere,
	// e.g. an older commit's, to see a new test fail on the old code.
	if b := os.Getenv("FOODPIPE_TEST_BINARY"); b != "" {
		binary = b
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "foodpipe-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "foodpipe")
	// Built with the race detector: the consumer's goroutines (the reader,
	// the group callbacks, the writer) run only inside the binary, so this
	// is where a data race would show. A race makes the binary print a
	// report and exit 66, which every test that checks an exit code sees,
	// and raceReport checks for the report in every run's stderr.
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build foodpipe:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the binary did.
type result struct {
	code           int
	stdout, stderr string
}

// command prepares the binary with args in an empty working directory and
// config home, so no stray foodpipe.yaml is read, and with env added.
func command(t *testing.T, ctx context.Context, env []string, args ...string) *exec.Cmd {
	t.Helper()
	home := t.TempDir()
	c := exec.CommandContext(ctx, binary, args...)
	c.Dir = home
	c.Env = append(os.Environ(), "XDG_CONFIG_HOME="+home, "HOME="+home, "FOODPIPE_LOG_FORMAT=text")
	c.Env = append(c.Env, env...)
	return c
}

// run runs the binary to completion, at most two minutes.
func run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c := command(t, ctx, env, args...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run foodpipe %v: %v", args, err)
		}
		r.code = ee.ExitCode()
	}
	noRace(t, r.stderr)
	return r
}

// noRace fails the test when a run of the race-enabled binary reported a
// data race.
func noRace(t *testing.T, stderr string) {
	t.Helper()
	if i := strings.Index(stderr, "WARNING: DATA RACE"); i >= 0 {
		t.Errorf("the binary reported a data race:\n%s", stderr[i:])
	}
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// errorLine returns the "foodpipe: …" error line of stderr, failing the test
// unless there is exactly one.
func errorLine(t *testing.T, r result) string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.HasPrefix(l, "foodpipe: ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("want exactly one error line, got %d:\n%s", len(lines), r)
	}
	return lines[0]
}

func brokersFlag(t *testing.T) string {
	return "--brokers=" + strings.Join(testenv.Brokers(t), ",")
}

// lineWaiter is an io.Writer that collects output and signals when a line
// containing want was written.
type lineWaiter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.init()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		select {
		case <-w.seen:
		default:
			close(w.seen)
		}
	}
	return len(p), nil
}

func (w *lineWaiter) init() { w.once.Do(func() { w.seen = make(chan struct{}) }) }

func (w *lineWaiter) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	w.mu.Lock()
	w.init()
	w.mu.Unlock()
	select {
	case <-w.seen:
	case <-time.After(timeout):
		t.Fatalf("no %q within %v:\n%s", w.want, timeout, w.String())
	}
}

func (w *lineWaiter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

type produceSummary struct {
	Topic           string           `json:"topic"`
	Produced        int64            `json:"produced"`
	Failed          int64            `json:"failed"`
	DurationSeconds float64          `json:"duration_seconds"`
	RatePerSecond   float64          `json:"rate_per_second"`
	Stopped         string           `json:"stopped"`
	Partitions      map[string]int64 `json:"partitions"`
}

func parseProduce(t *testing.T, r result) produceSummary {
	t.Helper()
	var s produceSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("produce output is not JSON: %v\n%s", err, r)
	}
	return s
}

// orderIDs decodes every record of topic and returns the order ids,
// failing on an invalid record, a duplicate id or a key in two partitions.
func orderIDs(t *testing.T, topic string) (ids map[string]bool, partitions map[int32]int) {
	t.Helper()
	ids, partitions = map[string]bool{}, map[int32]int{}
	keyPart := map[string]int32{}
	var o order.Order
	for _, r := range testenv.Records(t, topic) {
		if err := order.DecodeAndValidate(r.Value, &o); err != nil {
			t.Fatalf("record %d/%d invalid: %v", r.Partition, r.Offset, err)
		}
		if ids[o.OrderID] {
			t.Fatalf("order id %s twice in %s", o.OrderID, topic)
		}
		ids[o.OrderID] = true
		if p, ok := keyPart[string(r.Key)]; ok && p != r.Partition {
			t.Errorf("key %s in partitions %d and %d", r.Key, p, r.Partition)
		}
		keyPart[string(r.Key)] = r.Partition
		partitions[r.Partition]++
	}
	return ids, partitions
}

// startBackground starts c; its Wait error comes on the channel (which
// holds one value), and the process is killed when the test ends.
func startBackground(t *testing.T, c *exec.Cmd) chan error {
	t.Helper()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	t.Cleanup(func() { _ = c.Process.Kill() })
	return done
}

// waitProcess waits for c, started, to end, at most timeout, and returns
// its Wait error; after timeout it kills c and fails the test.
func waitProcess(t *testing.T, c *exec.Cmd, timeout time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		_ = c.Process.Kill()
		<-done
		t.Fatalf("foodpipe %s still running after %v", strings.Join(c.Args[1:], " "), timeout)
		return nil
	}
}
