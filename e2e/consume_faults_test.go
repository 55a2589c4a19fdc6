package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

// TestConsumeRebalance runs three consumers of one group while orders flow
// in; one is stopped and another added mid-stream. From the logs' fields
// and the data: every member owned partitions and stored rows, the
// newcomer got partitions and stored rows too, each batch continues its
// partition's previous one, and every order is stored exactly once.
func TestConsumeRebalance(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	producer := command(t, t.Context(), nil, "produce", brokersFlag(t), "--topic", p.topic,
		"--rate", "1000", "--duration", "10m", "--output", "json")
	var produced bytes.Buffer
	producer.Stdout = &produced
	if err := producer.Start(); err != nil {
		t.Fatal(err)
	}
	conn := p.db()
	a, b, c := p.startConsumer(), p.startConsumer(), p.startConsumer()
	// Each of the three gets one partition, and stores from it.
	for _, x := range []*consumer{a, b, c} {
		x.waitOwns(t, 1)
		x.waitFor(t, `"msg":"batch stored"`, time.Minute)
	}
	sb := b.stopWhile(t, "storing a stream in a group of three") // leaves the group mid-stream
	d := p.startConsumer()
	d.waitOwns(t, 1)
	// d took b's partition: it stores a batch of its own before the
	// producer stops.
	d.waitFor(t, `"msg":"batch stored"`, time.Minute)
	if err := producer.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := waitProcess(t, producer, stopDeadline); err != nil {
		t.Fatalf("producer: %v", err)
	}
	n := parseProduce(t, result{stdout: produced.String()}).Produced
	p.waitCaughtUp(conn, 3*time.Minute, a, c, d)
	sa, sc, sd := a.stop(t), c.stop(t), d.stop(t)

	p.checkOrders(conn, n)
	for name, s := range map[string]consumeSummary{"a": sa, "b": sb, "c": sc, "d (the newcomer)": sd} {
		if s.Stored == 0 {
			t.Errorf("consumer %s stored nothing", name)
		}
	}
	total := sa.Stored + sb.Stored + sc.Stored + sd.Stored
	dups := sa.Duplicates + sb.Duplicates + sc.Duplicates + sd.Duplicates
	if total != n || dups != 0 {
		t.Errorf("consumers stored %d in total with %d duplicates, want %d and 0", total, dups, n)
	}
	checkBatches(t, a.stderr.String(), b.stderr.String(), c.stderr.String(), d.stderr.String())
}

// TestConsumeFencedWriteRollsBack: while a consumer drains a backlog,
// partition 0's stored offset is moved 5,000 ahead behind its back (as
// another member that took the partition would). The consumer's batch in
// hand is refused whole by the compare-and-set: it logs the fence, reloads
// the offset and goes on from there. The 5,000 records it skipped are
// stored by nobody — which proves that the refused batch left no row.
func TestConsumeFencedWriteRollsBack(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	const n = 60_000
	p.produce(n)
	end := testenv.EndOffsetsAt(t, p.brokers, p.topic)
	conn := p.db()
	c := p.startConsumer("--batch-rows", "300")
	deadline := time.Now().Add(time.Minute)
	for p.storedOffsets(conn)[0] < 1000 {
		if c.exited() || time.Now().After(deadline) {
			t.Fatalf("partition 0 not stored:\n%s", ownLines(c.stderr.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	tag, err := conn.Exec(context.Background(), `UPDATE consumer_offsets SET next_offset = next_offset + 5000
		WHERE consumer_group = $1 AND partition = 0 AND next_offset < $2`, p.group, end[0]-6000)
	if err != nil {
		t.Fatal(err)
	}
	if tag.RowsAffected() != 1 {
		t.Fatal("partition 0 drained before its offset could be moved: make the backlog larger")
	}
	c.waitFor(t, `"msg":"batch fenced: another consumer wrote these partitions; reloading their offsets"`, time.Minute)
	p.waitCaughtUp(conn, 3*time.Minute, c)
	c.stop(t)
	if got := p.count(conn); got != n-5000 {
		t.Errorf("%d rows, want %d: the fenced batch (or a later one) wrote the skipped range", got, n-5000)
	}
	checkBatches(t, c.stderr.String())
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
	p.waitRows(p.db(), 1, time.Minute, c) // orders flow end to end

	const outage = 20 * time.Second // the fault itself, not a wait for a state
	pg.Stop()
	time.Sleep(outage)
	if c.exited() {
		t.Fatalf("consumer exited during the outage:\n%s", c.stderr.String())
	}
	pg.Start()

	if err := waitProcess(t, producer, 3*time.Minute); err != nil { // 30 s of orders, and the outage
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

	// The flush waits as long as the broker may take to come back: its
	// restart (a JVM) takes seconds on a quiet machine and many more on a
	// busy one, and the orders must wait for it, not fail.
	producer := command(t, t.Context(), nil, "produce", p.brokersFlag(), "--topic", p.topic,
		"--rate", "500", "--duration", "25s", "--flush-timeout", "2m", "--output", "json")
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

	if err := waitProcess(t, producer, 5*time.Minute); err != nil { // 25 s of orders, a flush of up to 2 min
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
	if cs := c.stopWhile(t, "the broker is down"); cs.Stored != s.Produced || cs.Duplicates != 0 {
		t.Errorf("summary %+v, want %d stored and no duplicates", cs, s.Produced)
	}
}
