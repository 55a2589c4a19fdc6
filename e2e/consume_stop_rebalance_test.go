package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestConsumeStopsWhileRebalancing: a rebalance is held open by a member
// that does not answer (SIGSTOPped: it neither rejoins nor leaves, so the
// broker holds the others' JoinGroup up to the rebalance timeout). A member
// stopped in the middle of it exits 0 with its summary, without waiting for
// the rebalance to end; once the silent member is dropped, a new consumer
// stores every order, the ones produced after the stop too, once.
func TestConsumeStopsWhileRebalancing(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	p.produce(300)
	// The session outlives the rebalance timeout, so the broker waits for
	// the silent member's JoinGroup, not for its session to expire.
	slow := []string{"--rebalance-timeout", "20s", "--session-timeout", "25s", "--heartbeat-interval", "2s"}
	a := p.startConsumer(append(slow, "--log-level", "debug")...) // franz-go's "joining group"
	a.waitOwns(t, 3)
	silent := p.startConsumer(slow...)
	silent.waitFor(t, `"msg":"partitions assigned"`, time.Minute)
	silent.signal(t, syscall.SIGSTOP)
	t.Cleanup(silent.kill) // SIGKILL ends a stopped process too

	before := a.stderr.String()
	third := p.startConsumer(slow...)
	// a rejoins when its next heartbeat says the group is rebalancing;
	// silent never will.
	waitLogAfter(t, a, before, `"msg":"joining group"`, time.Minute)
	a.stopWhile(t, "rebalancing behind a silent member")
	third.stopWhile(t, "joining a group that is rebalancing")
	silent.kill()

	p.produce(300)
	last := p.startConsumer()
	conn := p.db()
	p.waitCaughtUp(conn, 3*time.Minute, last) // the silent member is dropped after 20 s
	p.checkOrders(conn, 600)
	p.checkStoredAtEnd(conn)
	last.stop(t)
}

// waitLogAfter waits until c's log, past the text it had in before, holds
// want.
func waitLogAfter(t *testing.T, c *consumer, before, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if log := c.stderr.String(); strings.Contains(log[len(before):], want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %v:\n%s", want, timeout, ownLines(c.stderr.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
