package e2e

// How a demo on the real services ends: at Ctrl-C, at a closed stdout,
// at a second signal; and what it removes, or says it left, of the
// topics, group and schema it made.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

// TestDemoUntilCtrlC: --duration 0 runs until the first SIGINT, which stops
// producing; what was produced is still stored before the summary, exit 0.
func TestDemoUntilCtrlC(t *testing.T) {
	t.Parallel()
	dsn := testenv.DatabaseURL(t)
	c := command(t, t.Context(), nil, "demo", "--duration", "0", "--rate", "100", "--database-url", dsn, "--output", "json")
	stdout := &lineWaiter{} // read while the process may still write
	stderr := &lineWaiter{want: `msg="record dead-lettered" consumer=consumer-`}
	c.Stdout, c.Stderr = stdout, stderr
	done := startBackground(t, c)
	stderr.wait(t, time.Minute) // the poison went in, 5 s into a run without a duration
	if err := c.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after SIGINT: %v\n%s", err, stderr.String())
		}
	case <-time.After(stopDeadline):
		t.Fatalf("still running %v after SIGINT:\n%s", stopDeadline, stderr.String())
	}
	r.stdout, r.stderr = stdout.String(), stderr.String()
	noRace(t, r.stderr)
	checkDemo(t, r, "signal")
}

// demoMade finds, in a demo's log, the topic and the schema it made on the
// real services.
func demoMade(t *testing.T, stderr string) (topic, schema string) {
	t.Helper()
	mt := regexp.MustCompile(`creating the topics (foodpipe-demo-[0-9a-z-]+) and`).FindStringSubmatch(stderr)
	ms := regexp.MustCompile(`schema (foodpipe_demo_[0-9a-z_]+)`).FindStringSubmatch(stderr)
	if mt == nil || ms == nil {
		t.Fatalf("the demo's log names no topic or schema:\n%s", stderr)
	}
	return mt[1], ms[1]
}

// demoLeft reports what of the demo's topics, group and schema still exists.
func demoLeft(t *testing.T, dsn, topic, schema string) []string {
	t.Helper()
	var left []string
	td, err := testenv.Admin(t).ListTopics(context.Background(), topic, topic+".dlq")
	if err != nil {
		t.Fatal(err)
	}
	for name, d := range td {
		if d.Err == nil {
			left = append(left, "topic "+name)
		}
	}
	if groupExists(t, topic) {
		left = append(left, "group "+topic)
	}
	if schemaExists(t, dsn, schema) {
		left = append(left, "schema "+schema)
	}
	return left
}

// TestDemoClosedStdoutCleansUp: foodpipe demo | head -1 closes the demo's
// stdout early. Writing the summary then fails like any failed write (exit
// 1, one line), and the topics, group and schema the demo made on the real
// services are removed all the same; a SIGPIPE used to kill it and leave
// them there for good.
func TestDemoClosedStdoutCleansUp(t *testing.T) {
	t.Parallel()
	dsn := testenv.DatabaseURL(t)
	c := command(t, t.Context(), nil, "demo", "--duration", "3s", "--rate", "50", "--brokers", strings.Join(testenv.Brokers(t), ","),
		"--database-url", dsn)
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	out.Close()                            // nobody reads the summary
	err = waitProcess(t, c, 2*time.Minute) // a 3 s demo, its set-up and clean-up
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "broken pipe") {
		t.Errorf("exit %v, want 1 with one line naming the broken pipe\n%s", err, stderr.String())
	}
	topic, schema := demoMade(t, stderr.String())
	if left := demoLeft(t, dsn, topic, schema); len(left) > 0 {
		t.Errorf("left behind: %v\n%s", left, stderr.String())
	}
}

// TestDemoSecondSignalSaysWhatItLeft: a second Ctrl-C ends the demo at
// once, with no time to delete what it made on the real services; it says
// in its log which topics, group and schema it left, so that nothing stays
// there unknown.
func TestDemoSecondSignalSaysWhatItLeft(t *testing.T) {
	t.Parallel()
	dsn := testenv.DatabaseURL(t)
	// Held inside their first transactions, the consumers make the
	// graceful stop last until the second signal.
	c := command(t, t.Context(), []string{"FOODPIPE_TEST_PAUSE=in-transaction=1m"}, "demo", "--duration", "0", "--rate", "50",
		"--brokers", strings.Join(testenv.Brokers(t), ","), "--database-url", dsn, "--log-level", "debug")
	stderr := &lineWaiter{want: `point=in-transaction`}
	c.Stdout, c.Stderr = io.Discard, stderr
	done := startBackground(t, c)
	stderr.wait(t, time.Minute)
	topic, schema := demoMade(t, stderr.String())
	t.Cleanup(func() {
		_, _ = testenv.Admin(t).DeleteTopics(context.Background(), topic, topic+".dlq")
		_, _ = testenv.Admin(t).DeleteGroup(context.Background(), topic)
		testenv.Exec(t, dsn, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})
	if err := c.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); !strings.Contains(stderr.String(), `msg="stopping: `); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the first SIGINT was not taken:\n%s", stderr.String())
		}
	}
	if err := c.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(stopDeadline):
		t.Fatalf("still running %v after two SIGINTs:\n%s", stopDeadline, stderr.String())
	}
	var ee *exec.ExitError
	if ws, ok := exitStatus(err); !errors.As(err, &ee) || !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("exit %v, want the process ended by the second SIGINT", err)
	}
	for _, want := range []string{"left its topics " + topic + " and " + topic + ".dlq and group " + topic, "left its schema " + schema} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the log does not say %q\n%s", want, stderr.String())
		}
	}
}

// exitStatus is the wait status of a process that ended with err.
func exitStatus(err error) (syscall.WaitStatus, bool) {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return 0, false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ws, ok
}
