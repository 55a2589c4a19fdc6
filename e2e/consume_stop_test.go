package e2e

// A stop (SIGINT, SIGTERM, SIGHUP) ends consume in every state of its group,
// and a member's partitions move to the others in seconds. The waits here
// are deadlines far from what a correct consumer needs: each is shorter
// than what the fault would make a wrong one wait (a dead member's session,
// an endless retry), so the tests do not depend on the machine's speed.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

// TestConsumeStopsWhileJoining: a member died without leaving, so the group
// waits for it (two minutes, its session) before it can finish a join. A
// consumer stopped while it waits in that join exits at once, without
// waiting for the dead member.
func TestConsumeStopsWhileJoining(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	p.produce(100)
	dead := p.startConsumer("--session-timeout", "120s", "--rebalance-timeout", "120s", "--heartbeat-interval", "3s")
	dead.waitFor(t, `"msg":"partitions assigned"`, time.Minute)
	dead.kill()

	c := p.startConsumer()
	c.waitFor(t, `"msg":"consuming"`, time.Minute) // connected: joining from here on
	c.stopWhile(t, "joining behind a dead member")
	if strings.Contains(c.stderr.String(), `"msg":"partitions assigned"`) {
		t.Errorf("the consumer was not stopped while joining: it got partitions first")
	}
}

// TestConsumeStopsWhileDatabaseDownInAssignment: PostgreSQL is down when a
// rebalance hands a consumer new partitions, so it retries loading their
// offsets. A stop then ends it, exit 0, instead of waiting for the database.
func TestConsumeStopsWhileDatabaseDownInAssignment(t *testing.T) {
	t.Parallel()
	brokers := testenv.Brokers(t) // before the cluster is made: without services it skips at once
	pg := testenv.PrivatePostgres(t)
	p := &pipeline{t: t, brokers: brokers, topic: testenv.Name(t, "orders"), group: testenv.Name(t, "group"), dsn: pg.URL}
	p.init()
	p.produce(300)
	a := p.startConsumer()
	a.waitFor(t, `"msg":"partitions assigned"`, time.Minute)
	b := p.startConsumer()
	b.waitFor(t, `"msg":"partitions assigned"`, time.Minute)

	pg.Stop()
	b.kill() // after its session, its partitions move to a: PostgreSQL is down
	a.waitFor(t, "load stored offsets failed; retrying", time.Minute)
	a.stopWhile(t, "PostgreSQL is down in the assignment")
}

// waitOwns waits until the consumer's log says it owns at least n
// partitions.
func (c *consumer) waitOwns(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for len(assignment(t, c.stderr.String())) < n {
		if c.exited() || time.Now().After(deadline) {
			t.Fatalf("the consumer does not own %d partitions:\n%s", n, ownLines(c.stderr.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assignment follows a consumer's "partitions assigned" and "partitions
// revoked" lines and returns what it owns at the end of its log.
func assignment(t *testing.T, log string) []int32 {
	t.Helper()
	owned := map[int32]bool{}
	for _, l := range strings.Split(log, "\n") {
		var line struct {
			Msg        string  `json:"msg"`
			Partitions []int32 `json:"partitions"`
		}
		if json.Unmarshal([]byte(l), &line) != nil {
			continue
		}
		switch line.Msg {
		case "partitions assigned":
			for _, p := range line.Partitions {
				owned[p] = true
			}
		case "partitions revoked":
			for _, p := range line.Partitions {
				delete(owned, p)
			}
		}
	}
	var out []int32
	for p := range owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// TestConsumeFailover kills a member of a group of two while orders flow
// and measures how long its partitions go without a commit: the survivor
// takes them over after the session timeout (10 s by default), or the
// member restarted with the same --instance-id gets them back at once.
// The figures are logged (docs/benchmarks.md has them), not asserted; what
// is asserted is that every order is stored exactly once and that the dead
// member's partitions did move on.
func TestConsumeFailover(t *testing.T) {
	t.Parallel()
	for _, static := range []bool{false, true} {
		t.Run(fmt.Sprintf("static=%v", static), func(t *testing.T) {
			t.Parallel()
			p := newPipeline(t)
			producer := command(t, t.Context(), nil, "produce", p.brokersFlag(), "--topic", p.topic,
				"--rate", "300", "--duration", "40s", "--output", "json")
			if err := producer.Start(); err != nil {
				t.Fatal(err)
			}
			member := func(name string) []string {
				if static {
					return []string{"--instance-id", name}
				}
				return nil
			}
			a := p.startConsumer(member("a")...)
			a.waitFor(t, `"msg":"partitions assigned"`, time.Minute)
			b := p.startConsumer(member("b")...)
			b.waitFor(t, `"msg":"partitions assigned"`, time.Minute)
			conn := p.db()
			var lost []int32
			deadline := time.Now().Add(time.Minute)
			for len(lost) == 0 || len(assignment(t, a.stderr.String()))+len(lost) != 3 {
				if time.Now().After(deadline) {
					t.Fatalf("the group never settled: a owns %v, b owns %v", assignment(t, a.stderr.String()), lost)
				}
				time.Sleep(100 * time.Millisecond)
				lost = assignment(t, b.stderr.String())
			}
			p.waitRows(conn, 1, time.Minute, a, b)

			killed := time.Now()
			b.kill()
			var restarted *consumer
			if static {
				restarted = p.startConsumer(member("b")...)
			}
			// Failover time: until every partition b owned has a commit
			// after the kill.
			var took time.Duration
			for took == 0 {
				if time.Now().After(killed.Add(2 * time.Minute)) {
					t.Fatalf("partitions %v had no commit in the two minutes after the kill", lost)
				}
				var last time.Time
				if err := conn.QueryRow(context.Background(), `SELECT min(updated_at) FROM consumer_offsets
					WHERE consumer_group = $1 AND partition = ANY($2)`, p.group, lost).Scan(&last); err != nil {
					t.Fatal(err)
				}
				if last.After(killed) {
					took = last.Sub(killed)
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Logf("failover (static membership %v): partitions %v committed again %v after the kill", static, lost, took.Round(10*time.Millisecond))

			if err := waitProcess(t, producer, 3*time.Minute); err != nil { // 40 s of orders
				t.Fatal(err)
			}
			alive := []*consumer{a}
			if restarted != nil {
				alive = append(alive, restarted)
			}
			p.waitCaughtUp(conn, 2*time.Minute, alive...)
			var produced int64
			for _, e := range testenv.EndOffsets(t, p.topic) {
				produced += e
			}
			if got, ids := p.count(conn), p.distinctIDs(conn); got != produced || ids != produced {
				t.Errorf("%d rows, %d distinct, want the %d produced", got, ids, produced)
			}
		})
	}
}

// TestConsumeStopsWhilePostgreSQLIsPartitioned: PostgreSQL stops answering
// without closing anything (a network partition: no reset, no answer)
// while the consumer stores a backlog. SIGTERM must still end it (in
// 10 s, the README says: the time is logged) with its summary; the orders it had stored stay stored once. A
// commit sent before the partition, whose answer it held, may have landed:
// the summary counts its orders in doubt, not as unstored (it said 500
// stored beside 1000 rows).
func TestConsumeStopsWhilePostgreSQLIsPartitioned(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	p.produce(20_000)
	u, err := url.Parse(p.dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	direct := p.dsn
	p.dsn = u.String()
	c := p.startConsumer("--batch-rows", "500")
	p.dsn = direct
	conn := p.db()
	p.waitRows(conn, 1, time.Minute, c)
	proxy.Hold(true)
	// Until the consumer has sent something the database will not get.
	for deadline := time.Now().Add(time.Minute); proxy.Stuck() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the consumer sent nothing to PostgreSQL for a minute")
		}
	}
	s := c.stopWhile(t, "PostgreSQL is partitioned")
	if rows := p.count(conn); rows != s.Stored && rows != s.Stored+s.InDoubt {
		t.Errorf("%d rows, the summary says %d stored and %d in doubt", rows, s.Stored, s.InDoubt)
	}
}

// TestConsumeSIGHUP: SIGHUP stops the consumer like SIGTERM: the batch in
// hand is committed and the summary printed, exit 0.
func TestConsumeSIGHUP(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	_, c := p.consumeBacklog(2000)
	code, took := c.terminate(t, syscall.SIGHUP)
	t.Logf("stop while idle, by SIGHUP: %v", took)
	if code != 0 {
		t.Fatalf("exit %d after SIGHUP, want 0\n%s", code, c.stderr.String())
	}
	if !strings.Contains(c.stdout.String(), `"stored": 2000`) {
		t.Errorf("no summary after SIGHUP:\n%s", c.stdout.String())
	}
}
