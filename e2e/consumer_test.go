package e2e

// A running consumer process: starting it, waiting for what it logs, and
// stopping it with the time the stop took measured, not asserted.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// consumer is one running foodpipe consume process.
type consumer struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr *lineWaiter
	done   chan error
}

func (p *pipeline) startConsumer(extra ...string) *consumer {
	p.t.Helper()
	return p.startConsumerEnv(nil, extra...)
}

// startConsumerEnv is startConsumer with env added to the process's.
func (p *pipeline) startConsumerEnv(env []string, extra ...string) *consumer {
	p.t.Helper()
	args := append([]string{"consume", p.brokersFlag(), "--topic", p.topic, "--group", p.group,
		"--database-url", p.dsn, "--output", "json", "--log-format", "json", "--log-level", "debug",
		"--progress-interval", "500ms"}, extra...)
	c := &consumer{stderr: &lineWaiter{want: `"msg":"consuming"`}, done: make(chan error, 1)}
	c.cmd = command(p.t, context.Background(), append(slices.Clip(p.env), env...), args...)
	if p.bin != "" {
		c.cmd.Path, c.cmd.Args[0] = p.bin, p.bin
	}
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, c.stderr
	if err := c.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	p.t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.done
		c.done <- nil
		noRace(p.t, c.stderr.String())
	})
	return c
}

// stopDeadline bounds every wait for a consumer to end after a stop. The
// README promises 10 s; a test waits far longer, so that a busy machine
// cannot fail it, and logs the time the stop took (docs/benchmarks.md
// reports the figures) instead of asserting it.
const stopDeadline = time.Minute

// terminate sends sig and waits for the consumer to end, at most
// stopDeadline; it returns the exit code and how long the stop took.
func (c *consumer) terminate(t *testing.T, sig syscall.Signal) (code int, took time.Duration) {
	t.Helper()
	sent := time.Now()
	c.signal(t, sig)
	code = c.waitExit(t, stopDeadline)
	return code, time.Since(sent).Round(time.Millisecond)
}

// stop sends SIGTERM and returns the summary; the consumer must exit 0.
// The time it took is logged as "stopped in".
func (c *consumer) stop(t *testing.T) consumeSummary {
	t.Helper()
	s, took := c.stopped(t)
	t.Logf("stopped in %v after SIGTERM", took)
	return s
}

// stopWhile is stop for a test of the stop in one state of the consumer:
// the time it took is logged as "stop while <state>", so that
// `go test -v ./e2e | grep 'stop while'` lists every state's figure.
func (c *consumer) stopWhile(t *testing.T, state string) consumeSummary {
	t.Helper()
	s, took := c.stopped(t)
	t.Logf("stop while %s: %v", state, took)
	return s
}

// stopped sends SIGTERM, fails unless the consumer exits 0 with its
// summary, and returns the summary and how long the stop took.
func (c *consumer) stopped(t *testing.T) (consumeSummary, time.Duration) {
	t.Helper()
	code, took := c.terminate(t, syscall.SIGTERM)
	if code != 0 {
		t.Fatalf("consumer exit %d after SIGTERM, want 0\n%s", code, ownLines(c.stderr.String()))
	}
	var s consumeSummary
	if err := json.Unmarshal(c.stdout.Bytes(), &s); err != nil {
		t.Fatalf("consume summary: %v\n%s", err, c.stdout.String())
	}
	return s, took
}

func (c *consumer) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	err := <-c.done
	c.done <- err
}

func (c *consumer) exited() bool {
	select {
	case err := <-c.done:
		c.done <- err
		return true
	default:
		return false
	}
}

type consumeSummary struct {
	Stored       int64            `json:"stored"`
	InDoubt      int64            `json:"in_doubt"`
	Duplicates   int64            `json:"duplicates"`
	Dropped      int64            `json:"dropped_by_database"`
	DeadLettered map[string]int64 `json:"dead_lettered"`
	Batches      int64            `json:"batches"`
	Offsets      map[string]int64 `json:"offsets"`
}

// waitFor waits until the consumer's stderr holds want; it fails the test
// after timeout, or as soon as the consumer exits without writing it.
func (c *consumer) waitFor(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(c.stderr.String(), want) {
		if c.exited() {
			t.Fatalf("consumer exited before logging %q:\n%s", want, c.stderr.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %v:\n%s", want, timeout, c.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitExit waits for the consumer to end, at most timeout, and returns its
// exit code.
func (c *consumer) waitExit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err
		noRace(t, c.stderr.String())
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(timeout):
		t.Fatalf("consumer still running after %v:\n%s", timeout, c.stderr.String())
		return -1
	}
}

// signal sends sig to the consumer.
func (c *consumer) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// errorLine is the one "foodpipe: …" line of a consumer that failed.
func (c *consumer) errorLine(t *testing.T) string {
	t.Helper()
	return errorLine(t, result{code: 1, stdout: c.stdout.String(), stderr: c.stderr.String()})
}
