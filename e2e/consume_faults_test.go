package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

// TestConsumeExactlyOnceUnderCrashes drains a backlog of 100,000 orders
// while the consumer is killed with SIGKILL at random moments and
// restarted: every order ends up stored exactly once.
func TestConsumeExactlyOnceUnderCrashes(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	const n = 100_000
	p.produce(n)
	conn := p.db()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))

	// Static membership (--instance-id) lets each restarted process take
	// over its predecessor's partitions at once, as a restarted pod would,
	// instead of waiting out the dead member's session.
	consumerArgs := []string{"--batch-rows", "1000", "--instance-id", "crash-test"}
	var logs []string
	var stored int64
	for kill := range 5 {
		c := p.startConsumer(consumerArgs...)
		// Kill at a random moment once this process has stored something.
		for p.count(conn) <= stored {
			if c.exited() {
				t.Fatalf("consumer exited:\n%s", c.stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		c.kill()
		logs = append(logs, c.stderr.String())
		stored = p.count(conn)
		t.Logf("kill %d: %d rows stored so far", kill+1, stored)
		if stored == n {
			t.Fatalf("the backlog drained before kill %d: make it larger", kill+1)
		}
	}
	c := p.startConsumer(consumerArgs...)
	p.waitCaughtUp(conn, 5*time.Minute, c)
	s := c.stop(t)
	logs = append(logs, c.stderr.String())

	if got := p.count(conn); got != n {
		t.Errorf("orders table holds %d rows, want %d", got, n)
	}
	end := testenv.EndOffsets(t, p.topic)
	offsets := p.storedOffsets(conn)
	for part, e := range end {
		if offsets[part] != e {
			t.Errorf("partition %d: stored offset %d, end offset %d", part, offsets[part], e)
		}
	}
	if b := checkBatches(t, logs...); b == 0 {
		t.Error("no batch logs seen")
	}
	if s.Duplicates != 0 {
		t.Errorf("last consumer saw %d duplicates", s.Duplicates)
	}
}

// TestConsumeRebalance runs three consumers of one group while orders flow
// in; one is stopped and another added mid-stream. Every order is stored
// exactly once.
func TestConsumeRebalance(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	const n = 30_000
	producer := command(t, t.Context(), nil, "produce", brokersFlag(t), "--topic", p.topic,
		"--count", fmt.Sprint(n), "--rate", "3000", "--output", "json")
	if err := producer.Start(); err != nil {
		t.Fatal(err)
	}
	conn := p.db()
	a, b, c := p.startConsumer(), p.startConsumer(), p.startConsumer()
	for _, x := range []*consumer{a, b, c} {
		x.stderr.wait(t, time.Minute)
	}
	time.Sleep(3 * time.Second)
	sb := b.stop(t) // leaves the group mid-stream
	d := p.startConsumer()
	d.stderr.wait(t, time.Minute)
	if err := producer.Wait(); err != nil {
		t.Fatalf("producer: %v", err)
	}
	p.waitCaughtUp(conn, 3*time.Minute, a, c, d)
	sa, sc, sd := a.stop(t), c.stop(t), d.stop(t)

	if got := p.count(conn); got != n {
		t.Errorf("orders table holds %d rows, want %d", got, n)
	}
	total := sa.Stored + sb.Stored + sc.Stored + sd.Stored
	dups := sa.Duplicates + sb.Duplicates + sc.Duplicates + sd.Duplicates
	if total != n || dups != 0 {
		t.Errorf("consumers stored %d in total with %d duplicates, want %d and 0", total, dups, n)
	}
	checkBatches(t, a.stderr.String(), b.stderr.String(), c.stderr.String(), d.stderr.String())
}

// TestConsumePostgresOutage stops PostgreSQL for 20 s while orders flow:
// the consumer waits, retries, and resumes; nothing is lost or doubled.
func TestConsumePostgresOutage(t *testing.T) {
	t.Parallel()
	brokers := testenv.Brokers(t) // before the cluster is made: without services it skips at once
	pg := testenv.PrivatePostgres(t)
	p := &pipeline{t: t, brokers: brokers, topic: testenv.Name(t, "orders"), group: testenv.Name(t, "group"), dsn: pg.URL}
	p.init()
	const n = 30_000
	producer := command(t, t.Context(), nil, "produce", brokersFlag(t), "--topic", p.topic,
		"--count", fmt.Sprint(n), "--rate", "1000", "--output", "json")
	if err := producer.Start(); err != nil {
		t.Fatal(err)
	}
	c := p.startConsumer()
	c.stderr.wait(t, time.Minute)
	time.Sleep(3 * time.Second)

	pg.Stop()
	time.Sleep(20 * time.Second)
	if c.exited() {
		t.Fatalf("consumer exited during the outage:\n%s", c.stderr.String())
	}
	pg.Start()

	if err := producer.Wait(); err != nil {
		t.Fatalf("producer: %v", err)
	}
	conn := p.db()
	p.waitCaughtUp(conn, 3*time.Minute, c)
	s := c.stop(t)
	logs := c.stderr.String()
	if !strings.Contains(logs, "storing batch failed; retrying") {
		t.Errorf("no retry was logged during the outage:\n%s", logs)
	}
	if got := p.count(conn); got != n {
		t.Errorf("orders table holds %d rows, want %d", got, n)
	}
	if s.Stored != n || s.Duplicates != 0 {
		t.Errorf("summary %+v, want %d stored, 0 duplicates", s, n)
	}
	checkBatches(t, logs)
}

// TestKafkaOutage stops the broker for 10 s while orders are produced and
// consumed: both roles retry, recover when it returns, and every order is
// stored exactly once. The broker is a private test bed of this test's own
// (scripts/testbed.sh in a temporary run dir), so the other tests keep
// theirs.
func TestKafkaOutage(t *testing.T) {
	t.Parallel()
	bed := newTestbed(t)
	bed.must(nil, "up")
	env := bed.env()
	p := &pipeline{t: t, brokers: []string{env["FOODPIPE_TEST_BROKERS"]}, topic: "orders", group: "orders",
		dsn: env["FOODPIPE_TEST_DATABASE_URL"]}
	p.init()

	producer := command(t, t.Context(), nil, "produce", p.brokersFlag(), "--topic", p.topic,
		"--rate", "500", "--duration", "25s", "--output", "json")
	var produced bytes.Buffer
	producer.Stdout = &produced
	if err := producer.Start(); err != nil {
		t.Fatal(err)
	}
	c := p.startConsumer()
	conn := p.db()
	p.waitRows(conn, 1, time.Minute, c) // orders flow end to end

	const outage = 10 * time.Second // the fault itself, not a wait for a state
	bed.must(nil, "kafka-stop")
	time.Sleep(outage)
	if c.exited() {
		t.Fatalf("consumer exited while the broker was down:\n%s", c.stderr.String())
	}
	bed.must(nil, "kafka-start")

	if err := producer.Wait(); err != nil {
		t.Fatalf("producer: %v\n%s", err, produced.String())
	}
	s := parseProduce(t, result{stdout: produced.String()})
	if s.Failed != 0 || s.Produced == 0 {
		t.Errorf("producer summary %+v: want every order acknowledged despite the outage", s)
	}
	p.waitCaughtUp(conn, 3*time.Minute, c)
	if got := p.count(conn); got != s.Produced {
		t.Errorf("orders table holds %d rows, the producer acknowledged %d", got, s.Produced)
	}
	checkBatches(t, c.stderr.String())

	// A stop asked while the broker is down ends the consumer all the same
	// (it cannot commit to Kafka or leave the group; PostgreSQL holds the
	// offsets), with exit 0 and the summary.
	bed.must(nil, "kafka-stop")
	c.signal(t, syscall.SIGTERM)
	if code := c.waitExit(t, time.Minute); code != 0 {
		t.Fatalf("exit %d after SIGTERM with the broker down, want 0\n%s", code, ownLines(c.stderr.String()))
	}
	var cs consumeSummary
	if err := json.Unmarshal(c.stdout.Bytes(), &cs); err != nil || cs.Stored != s.Produced || cs.Duplicates != 0 {
		t.Errorf("summary %+v (%v), want %d stored and no duplicates", cs, err, s.Produced)
	}
}
