package e2e

// Operator mistakes and odd records against a running pipeline: each ends
// with every order stored once, or with exit 1 and one line that names what
// happened — never a silent gap. The proof is in the rows, the offsets and
// the dead letters.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

// produceRaw writes records with a client of the test's own, able to send
// records up to 2 MiB.
func produceRaw(t *testing.T, brokers []string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerBatchMaxBytes(2<<20),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestConsumeOversizedRecord: a record as large as the orders topic accepts
// cannot get its dead-letter headers on a dead-letter topic of the same
// limit. It is dead-lettered whole when the dead-letter topic was made by
// topics init (which gives it room), and as a marker (no value; size and
// digest in headers) when the dead-letter topic is smaller. Either way every
// good order is stored and each dead letter is sent exactly once.
func TestConsumeOversizedRecord(t *testing.T) {
	t.Parallel()
	for _, roomy := range []bool{true, false} {
		t.Run(fmt.Sprintf("dlq made by topics init=%v", roomy), func(t *testing.T) {
			t.Parallel()
			p := newPipeline(t)
			if !roomy {
				// A dead-letter topic with Kafka's default limit.
				if _, err := testenv.Admin(t).DeleteTopic(t.Context(), p.topic+".dlq"); err != nil {
					t.Fatal(err)
				}
				testenv.WaitTopicGone(t, p.topic+".dlq")
				testenv.CreateTopic(t, p.topic+".dlq", 3)
			}
			huge := bytes.Repeat([]byte("x"), 1_048_300) // not JSON
			var recs []*kgo.Record
			for i := range 30 {
				recs = append(recs, &kgo.Record{Topic: p.topic, Key: []byte(fmt.Sprintf("CUST-%05d", i)), Value: validOrder(t, fmt.Sprintf("ORD-20261129-BIG-%d", i))})
			}
			// The oversized record goes alone: it fills a whole batch.
			produceRaw(t, p.brokers, recs...)
			produceRaw(t, p.brokers, &kgo.Record{Topic: p.topic, Key: []byte("CUST-00001"), Value: huge})
			produceRaw(t, p.brokers,
				&kgo.Record{Topic: p.topic, Key: []byte("CUST-00001"), Value: []byte(`{"order_id": 7}`)},
				&kgo.Record{Topic: p.topic, Key: []byte("CUST-00001"), Value: validOrder(t, "ORD-20261129-BIG-after")},
			)

			c := p.startConsumer()
			conn := p.db()
			p.waitCaughtUp(conn, 2*time.Minute, c)
			s := c.stop(t)
			if got := p.count(conn); got != 31 || s.Stored != 31 {
				t.Errorf("%d rows stored (summary %d), want the 31 valid orders", got, s.Stored)
			}
			dead := testenv.Records(t, p.topic+".dlq")
			if len(dead) != 2 {
				t.Fatalf("dead-letter topic holds %d records, want exactly 2 (each sent once)", len(dead))
			}
			var big testenv.Record
			for _, d := range dead {
				if d.Headers["foodpipe-error-class"] != "decode" {
					t.Errorf("dead letter class %q, want decode", d.Headers["foodpipe-error-class"])
				}
				if d.Headers["foodpipe-error"] != "" && d.Headers["foodpipe-source-offset"] != "" && len(d.Value) != len(`{"order_id": 7}`) {
					big = d
				}
			}
			if string(big.Key) != "CUST-00001" || big.Headers["foodpipe-source-topic"] != p.topic {
				t.Fatalf("no dead letter for the oversized record: %+v", dead)
			}
			sum := sha256.Sum256(huge)
			if roomy {
				if !bytes.Equal(big.Value, huge) || big.Headers["foodpipe-truncated"] != "" {
					t.Errorf("oversized record: got %d bytes (truncated=%q), want the original 1048300 bytes",
						len(big.Value), big.Headers["foodpipe-truncated"])
				}
			} else {
				h := big.Headers
				if len(big.Value) != 0 || h["foodpipe-truncated"] != "true" || h["foodpipe-original-size"] != "1048300" ||
					h["foodpipe-original-sha256"] != hex.EncodeToString(sum[:]) {
					t.Errorf("marker: value %d bytes, headers %v", len(big.Value), h)
				}
			}
		})
	}
}

// TestConsumeRefusesMissingTopics: a consumer whose orders topic or
// dead-letter topic does not exist (with auto-creation off) says so at start
// in one line and exits 1, instead of blocking.
func TestConsumeRefusesMissingTopics(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.Schema(t)
	if r := run(t, nil, "db", "migrate", "--database-url", dsn); r.code != 0 {
		t.Fatal(r)
	}
	topic := testenv.Name(t, "orders")
	args := []string{"consume", brokersFlag(t), "--database-url", dsn, "--topic", topic, "--group", testenv.Name(t, "g")}

	r := run(t, nil, args...)
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, topic) || !strings.Contains(line, "run foodpipe topics init") {
		t.Errorf("no orders topic: want exit 1 naming it and topics init\n%s", r)
	}
	testenv.CreateTopic(t, topic, 3)
	r = run(t, nil, args...)
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, topic+".dlq") || !strings.Contains(line, "run foodpipe topics init") {
		t.Errorf("no dead-letter topic: want exit 1 naming it and topics init\n%s", r)
	}
}

// TestRefusesCompactedTopics: an orders or dead-letter topic whose
// cleanup.policy includes compact would lose every order but each
// customer's latest (records are keyed by customer_id), stored or not, with
// no gap a consumer can see. consume and produce refuse such a topic at
// start with exit 1 and one line that names it; nothing is stored or
// produced. Set back to delete, the same backlog is stored whole.
func TestRefusesCompactedTopics(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	p.produce(500)
	consume := []string{"consume", p.brokersFlag(), "--topic", p.topic, "--group", p.group, "--database-url", p.dsn, "--stop-at-end"}
	produce := []string{"produce", p.brokersFlag(), "--topic", p.topic, "--count", "100", "--rate", "0"}
	conn := p.db()
	for _, c := range []struct{ topic, policy string }{{p.topic, "compact"}, {p.topic + ".dlq", "compact,delete"}} {
		testenv.SetTopicConfig(t, c.topic, "cleanup.policy", c.policy)
		args := [][]string{consume}
		if c.topic == p.topic {
			args = append(args, produce)
		}
		for _, a := range args {
			r := run(t, nil, a...)
			if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, c.topic+" has cleanup.policy="+c.policy) {
				t.Errorf("%s with %s compacted: want exit 1 naming it\n%s", a[0], c.topic, r)
			}
		}
		testenv.SetTopicConfig(t, c.topic, "cleanup.policy", "delete")
	}
	if got := p.count(conn); got != 0 {
		t.Errorf("%d rows stored from a compacted topic, want none", got)
	}
	var total int64
	for _, e := range testenv.EndOffsetsAt(t, p.brokers, p.topic) {
		total += e
	}
	if total != 500 {
		t.Errorf("the orders topic holds %d records, want the 500 produced before it was compacted", total)
	}
	if r := run(t, nil, consume...); r.code != 0 {
		t.Fatalf("consume after cleanup.policy=delete:\n%s", r)
	}
	p.checkOrders(conn, 500)
}

// TestConsumeStopsWhenTopicCompactedWhileRunning: the orders or the
// dead-letter topic is set to compact under a running consumer. Refused at
// start, it is refused at run time too: the consumer stops with exit 1 and
// a line naming the topic, instead of storing on while the cleaner deletes
// what a lagging member has not read. What was stored stays stored.
func TestConsumeStopsWhenTopicCompactedWhileRunning(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	conn := p.db()
	for i, topic := range []string{p.topic, p.topic + ".dlq"} {
		c := p.startConsumer()
		p.produce(200)
		p.waitRows(conn, int64(200*(i+1)), 2*time.Minute, c)
		testenv.SetTopicConfig(t, topic, "cleanup.policy", "compact")
		if code := c.waitExit(t, 2*time.Minute); code != 1 {
			t.Fatalf("%s compacted under a running consumer: exit %d, want 1\n%s", topic, code, c.stderr.String())
		}
		if line := c.errorLine(t); !strings.Contains(line, topic+" has cleanup.policy=compact") || !strings.Contains(line, "while consuming") {
			t.Errorf("error line %q does not name %s compacted while consuming", line, topic)
		}
		testenv.SetTopicConfig(t, topic, "cleanup.policy", "delete")
		p.checkOrders(conn, int64(200*(i+1)))
	}
}

// TestConsumeGroupSharedWithAnotherApplication: another application joins
// foodpipe's group (a default name like "orders" is easy to reuse). The
// partitions it is given are not stored while it holds them, whatever it
// commits to Kafka, since foodpipe's position is in PostgreSQL: foodpipe
// names the stranger in a warning, and once it leaves, the orders it read
// are stored all the same.
func TestConsumeGroupSharedWithAnotherApplication(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	conn := p.db()
	c := p.startConsumer()
	c.waitFor(t, `"msg":"partitions assigned"`, time.Minute)
	assigned := make(chan struct{}, 1)
	other, err := kgo.NewClient(kgo.SeedBrokers(p.brokers...), kgo.ClientID("billing-service"),
		kgo.ConsumerGroup(p.group), kgo.ConsumeTopics(p.topic), kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			select {
			case assigned <- struct{}{}:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close() // the client joins the group as it starts
	select {
	case <-assigned:
	case <-time.After(time.Minute):
		t.Fatal("the other application got no partition within a minute")
	}
	p.produce(600)
	read := 0
	for read == 0 { // until the stranger has read orders of its partitions
		fs := other.PollFetches(t.Context())
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		read += fs.NumRecords()
	}
	if err := other.CommitUncommittedOffsets(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, `"members":["billing-service@`, 2*time.Minute)
	other.Close() // leaves the group: foodpipe gets its partitions back
	p.waitRows(conn, 600, 2*time.Minute, c)
	c.stop(t)
	p.checkOrders(conn, 600)
	p.checkStoredAtEnd(conn)
}

// TestConsumeDeadLetterTopicDeleted: the dead-letter topic is deleted
// while a consumer runs, then a bad record arrives. Its dead letter cannot
// be written; instead of retrying for ever with every partition held up,
// the consumer exits 1 with one line naming the topic and topics init, and
// no offset passes the bad record. After topics init a new consumer
// stores every valid order once and dead-letters the bad one once.
func TestConsumeDeadLetterTopicDeleted(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	p.produce(500)
	conn := p.db()
	c := p.startConsumer()
	p.waitCaughtUp(conn, 2*time.Minute, c)
	if _, err := testenv.Admin(t).DeleteTopic(t.Context(), p.topic+".dlq"); err != nil {
		t.Fatal(err)
	}
	testenv.WaitTopicGone(t, p.topic+".dlq")
	p.produce(300)
	bad := &kgo.Record{Topic: p.topic, Key: []byte("CUST-00001"), Value: []byte("not an order")}
	produceRaw(t, p.brokers, bad)
	p.produce(200)
	if code := c.waitExit(t, 2*time.Minute); code != 1 {
		t.Fatalf("consume exited %d, want 1", code)
	}
	if line := c.errorLine(t); !strings.Contains(line, p.topic+".dlq") || !strings.Contains(line, "run foodpipe topics init") {
		t.Errorf("error line %q does not name the dead-letter topic and topics init", line)
	}
	if next := p.storedOffsets(conn)[bad.Partition]; next > bad.Offset {
		t.Errorf("partition %d: stored offset %d passed the bad record at %d, which was never dead-lettered", bad.Partition, next, bad.Offset)
	}
	p.init()
	c = p.startConsumer()
	p.waitCaughtUp(conn, 2*time.Minute, c)
	c.stop(t)
	p.checkOrders(conn, 1_000)
	if dead := testenv.Records(t, p.topic+".dlq"); len(dead) != 1 || string(dead[0].Value) != "not an order" {
		t.Errorf("the dead-letter topic holds %d records, want the bad one once", len(dead))
	}
}

// TestConsumeRefusesReadOnlyDatabase: --database-url points at a server
// that accepts no writes (a replica or read-only endpoint; here a role
// with default_transaction_read_only on). consume says so in one line and
// exits 1 after --db-timeout, instead of retrying every batch for ever; it
// stores nothing. Pointed at the primary, it stores the backlog.
func TestConsumeRefusesReadOnlyDatabase(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	p.produce(300)
	conn := p.db()
	role := strings.ReplaceAll(testenv.Name(t, "ro"), "-", "_")
	for _, sql := range []string{
		"CREATE ROLE " + role + " LOGIN SUPERUSER PASSWORD 'ro-secret'",
		"ALTER ROLE " + role + " SET default_transaction_read_only = on",
	} {
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })
	readOnly := strings.Replace(p.dsn, "://postgres@", "://"+role+":ro-secret@", 1)
	if readOnly == p.dsn {
		t.Fatalf("cannot put the role into %s", p.dsn)
	}
	args := []string{"consume", p.brokersFlag(), "--topic", p.topic, "--group", p.group, "--stop-at-end", "--db-timeout", "2s"}
	r := run(t, nil, append(args, "--database-url", readOnly)...)
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "read-only") || !strings.Contains(line, "primary") ||
		strings.Contains(line, "ro-secret") {
		t.Errorf("consume on a read-only database: want exit 1 saying so, without the password\n%s", r)
	}
	// A stop asked while it waits for the database to become writable is
	// a stop: exit 0.
	c := p.startConsumer("--database-url", readOnly, "--db-timeout", "1m")
	c.waitFor(t, `"msg":"postgres not writable yet"`, time.Minute)
	c.signal(t, syscall.SIGTERM)
	if code := c.waitExit(t, time.Minute); code != 0 {
		t.Errorf("SIGTERM while waiting for a writable database: exit %d, want 0\n%s", code, c.stderr.String())
	}
	if got := p.count(conn); got != 0 {
		t.Errorf("%d rows stored through a read-only connection", got)
	}
	if r := run(t, nil, append(args, "--database-url", p.dsn)...); r.code != 0 {
		t.Fatalf("consume on the primary:\n%s", r)
	}
	p.checkOrders(conn, 300)
}

// TestConsumeOffsetRowsDeleted: an operator deletes the group's stored
// offsets while the consumer drains a backlog. A missing row means what it
// means at assignment — the start of the partition — so the consumer reads
// the partitions again: no order is lost (duplicates are skipped by
// order_id) and the stored offsets end at the end offsets.
func TestConsumeOffsetRowsDeleted(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	const n = 60_000
	p.produce(n)
	conn := p.db()
	c := p.startConsumer("--batch-rows", "500")
	p.waitRows(conn, 5_000, 2*time.Minute, c)
	tag, err := conn.Exec(context.Background(), "DELETE FROM consumer_offsets WHERE consumer_group = $1", p.group)
	if err != nil {
		t.Fatal(err)
	}
	if tag.RowsAffected() == 0 {
		t.Fatal("no offset rows to delete")
	}
	if got := p.count(conn); got == n {
		t.Fatal("the backlog drained before the rows were deleted: make it larger")
	}
	p.waitCaughtUp(conn, 3*time.Minute, c)
	s := c.stop(t)
	p.checkOrders(conn, n)
	p.checkStoredAtEnd(conn)
	if !strings.Contains(c.stderr.String(), "no offset stored for this group and partition") {
		t.Errorf("the missing rows were not logged")
	}
	if s.Duplicates == 0 {
		t.Errorf("no duplicates skipped: the partitions were not read again from the start")
	}
}

// TestConsumeSameInstanceIDTwice: an operator starts a second consumer
// with the --instance-id of one that runs. The broker shuts the first out
// of the group; it exits 1 with one line naming the group and the id
// instead of trying to rejoin for ever, and the second stores the rest:
// every order once.
func TestConsumeSameInstanceIDTwice(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	p.produce(2_000)
	conn := p.db()
	first := p.startConsumer("--instance-id", "consumer-1")
	p.waitCaughtUp(conn, 2*time.Minute, first)
	second := p.startConsumer("--instance-id", "consumer-1")
	if code := first.waitExit(t, 2*time.Minute); code != 1 {
		t.Fatalf("the consumer shut out exited %d, want 1:\n%s", code, first.stderr.String())
	}
	if line := first.errorLine(t); !strings.Contains(line, "group "+p.group) || !strings.Contains(line, `instance id "consumer-1"`) {
		t.Errorf("error line %q does not name the group and the instance id", line)
	}
	p.produce(1_000)
	p.waitCaughtUp(conn, 2*time.Minute, second)
	s := second.stop(t)
	p.checkOrders(conn, 3_000)
	if s.Stored == 0 {
		t.Error("the second consumer stored nothing")
	}
	p.checkStoredAtEnd(conn)
}

// TestConsumeSessionTimeoutRefused: a --session-timeout below the broker's
// group.min.session.timeout.ms makes the broker refuse every join. The
// consumer exits 2 (the invocation is wrong) with one line naming the
// setting, instead of rejoining for ever; nothing is stored.
func TestConsumeSessionTimeoutRefused(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	p.produce(100)
	conn := p.db()
	c := p.startConsumer("--session-timeout", "1s", "--heartbeat-interval", "200ms")
	if code := c.waitExit(t, 2*time.Minute); code != 2 {
		t.Fatalf("exit %d, want 2:\n%s", code, c.stderr.String())
	}
	if line := c.errorLine(t); !strings.Contains(line, "session-timeout 1s") || !strings.Contains(line, "group "+p.group) {
		t.Errorf("error line %q does not name the group and the refused setting", line)
	}
	if n := p.count(conn); n != 0 {
		t.Errorf("%d rows stored, want none", n)
	}
}

// deleteAndRecreate deletes the pipeline's topics and makes them again with
// topics init: a new topic with the same name, and a new topic id.
func (p *pipeline) deleteAndRecreate() {
	p.t.Helper()
	adm := testenv.AdminAt(p.t, p.brokers)
	resp, err := adm.DeleteTopics(context.Background(), p.topic, p.topic+".dlq")
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		p.t.Fatal(err)
	}
	testenv.WaitTopicGone(p.t, p.topic)
	testenv.WaitTopicGone(p.t, p.topic+".dlq")
	p.init()
}

// TestConsumeTopicRecreated: the orders topic is deleted and created again
// while the group's offsets stay in PostgreSQL. Whether the new topic holds
// fewer records than the stored offsets (they are past its end) or more
// (the topic id differs), the consumer refuses with exit 1 and one line
// naming the group, the partition and both offsets; with
// --offset-out-of-range earliest it stores every new order.
func TestConsumeTopicRecreated(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	conn, c := p.consumeBacklog(3000)
	c.stop(t)
	old := p.storedOffsets(conn)

	p.deleteAndRecreate()
	p.produce(300) // fewer than the stored offsets: they lie past the new end
	c = p.startConsumer()
	if code := c.waitExit(t, time.Minute); code != 1 {
		t.Fatalf("recreated topic, offsets past its end: exit %d, want 1\n%s", code, c.stderr.String())
	}
	line := c.errorLine(t)
	for _, want := range []string{"group " + p.group, "partition ", "stored offset ", "belongs to an earlier topic of this name",
		"deleted and created again", "--offset-out-of-range"} {
		if !strings.Contains(line, want) {
			t.Errorf("error line %q does not contain %q", line, want)
		}
	}

	// lag shows those partitions blocked, lagging all the new topic holds;
	// an alert on --max-lag fires for them however high the limit, since no
	// consumer can start.
	rep, r := p.lag("--max-lag", "1000000")
	if r.code != 1 || !strings.Contains(errorLine(t, r), "consume cannot resume partition") {
		t.Errorf("lag --max-lag on a group that cannot resume: want exit 1 naming the blocked partitions\n%s", r)
	}
	for _, row := range rep.Partitions {
		if row.Lag != row.End-row.Start || !row.Blocked || !strings.Contains(row.Note, "earlier topic of this name") {
			t.Errorf("lag row %+v: want blocked, lagging end - start, noted as stored for an earlier topic", row)
		}
	}

	// A batch job refuses them too, rather than take them for "all stored".
	c = p.startConsumer("--stop-at-end")
	if code := c.waitExit(t, time.Minute); code != 1 || !strings.Contains(c.errorLine(t), "belongs to an earlier topic of this name") {
		t.Fatalf("--stop-at-end with offsets past the end: exit %d, want 1 naming them\n%s", code, c.stderr.String())
	}

	p.produce(6000) // now the new partitions reach past the stored offsets
	c = p.startConsumer()
	if code := c.waitExit(t, time.Minute); code != 1 || !strings.Contains(c.errorLine(t), "deleted and created again") {
		t.Fatalf("recreated topic, offsets inside it: exit %d, want 1 naming the new topic id\n%s", code, c.stderr.String())
	}
	if got := p.count(conn); got != 3000 {
		t.Fatalf("%d rows after the refusals, want the 3000 of the old topic", got)
	}
	if got := p.storedOffsets(conn); fmt.Sprint(got) != fmt.Sprint(old) {
		t.Errorf("stored offsets changed by a refusal: %v, were %v", got, old)
	}

	c = p.startConsumer("--offset-out-of-range", "earliest")
	p.waitCaughtUp(conn, 2*time.Minute, c)
	s := c.stop(t)
	if got := p.count(conn); got != 3000+6300 || s.Stored != 6300 {
		t.Errorf("%d rows (%d stored by the last run), want 9300 (6300 new)", got, s.Stored)
	}
	p.checkStoredAtEnd(conn)
}

// TestConsumeTopicRecreatedWhileRunning: the orders topic is deleted and
// created again under a running consumer, and the new topic soon holds more
// records than the stored offsets: reading on from them would skip the new
// topic's first records without a word. The consumer notices the new topic
// id and refuses with exit 1 naming it; with --offset-out-of-range earliest
// every new order is stored.
func TestConsumeTopicRecreatedWhileRunning(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	conn, c := p.consumeBacklog(3000)

	p.deleteAndRecreate()
	p.produce(6000) // about 2,000 a partition, past the stored 1,000
	if code := c.waitExit(t, time.Minute); code != 1 || !strings.Contains(c.errorLine(t), "deleted and created again") {
		t.Fatalf("topic recreated under the consumer: exit %d, want 1 naming the new topic id\n%s", code, c.stderr.String())
	}

	c = p.startConsumer("--offset-out-of-range", "earliest")
	p.waitCaughtUp(conn, 2*time.Minute, c)
	c.stop(t)
	if got, ids := p.count(conn), p.distinctIDs(conn); got != 9000 || ids != 9000 {
		t.Errorf("%d rows, %d distinct ids, want 9000: the 3000 of the old topic and the 6000 of the new", got, ids)
	}
	p.checkStoredAtEnd(conn)
}

// TestConsumeRetentionOvertook: records are deleted (as retention does)
// before the group consumed them. The consumer refuses with exit 1, counting
// the records lost; with --offset-out-of-range earliest it says so and goes
// on from the first record left.
func TestConsumeRetentionOvertook(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	conn, c := p.consumeBacklog(1500)
	c.stop(t)

	p.produce(3000)
	end := testenv.EndOffsetsAt(t, p.brokers, p.topic)
	stored := p.storedOffsets(conn)
	cut := kadm.Offsets{}
	var deleted int64
	for part, e := range end {
		cut.Add(kadm.Offset{Topic: p.topic, Partition: part, At: e - 200, LeaderEpoch: -1})
		deleted += e - 200 - stored[part]
	}
	resp, err := testenv.AdminAt(t, p.brokers).DeleteRecords(context.Background(), cut)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}

	c = p.startConsumer()
	if code := c.waitExit(t, time.Minute); code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, c.stderr.String())
	}
	line := c.errorLine(t)
	m := regexp.MustCompile(`partition (\d+): stored offset (\d+) is outside the partition's offsets \[(\d+), (\d+)\): (\d+) records were deleted \(retention\) before they were consumed`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("error line %q does not name the partition, the offsets and the records deleted", line)
	}
	part, _ := strconv.Atoi(m[1])
	num := func(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
	if num(m[2]) != stored[int32(part)] || num(m[3]) != end[int32(part)]-200 || num(m[4]) != end[int32(part)] ||
		num(m[5]) != end[int32(part)]-200-stored[int32(part)] {
		t.Errorf("error line %q: want stored %d, start %d, end %d", line, stored[int32(part)], end[int32(part)]-200, end[int32(part)])
	}
	if deleted <= 0 {
		t.Fatal("nothing was deleted")
	}

	c = p.startConsumer("--offset-out-of-range", "earliest")
	p.waitCaughtUp(conn, 2*time.Minute, c)
	s := c.stop(t)
	if s.Stored != 3*200 {
		t.Errorf("stored %d after the cut, want the 600 records left", s.Stored)
	}
	p.checkStoredAtEnd(conn)
}

// TestConsumeStalledWriterHoldsOnePartition: another transaction (a
// consumer stopped in the middle of a batch) holds the stored offset of
// partition 0 locked. The consumer sets partition 0 aside after
// --lock-timeout and keeps storing the others; when the lock goes, it
// stores partition 0 too.
func TestConsumeStalledWriterHoldsOnePartition(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	conn, c := p.consumeBacklog(3000)
	c.stop(t)
	before := p.storedOffsets(conn)

	// The stalled writer: a transaction that updated partition 0's row and
	// stays open.
	stalled := p.db()
	tx, err := stalled.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(context.Background(), "UPDATE consumer_offsets SET updated_at = now() WHERE consumer_group = $1 AND partition = 0", p.group); err != nil {
		t.Fatal(err)
	}

	p.produce(30_000)
	end := testenv.EndOffsetsAt(t, p.brokers, p.topic)
	c = p.startConsumer("--lock-timeout", "1s")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got := p.storedOffsets(conn)
		if got[1] == end[1] && got[2] == end[2] {
			if got[0] != before[0] {
				t.Fatalf("partition 0 moved from %d to %d while its row was locked", before[0], got[0])
			}
			break
		}
		if c.exited() || time.Now().After(deadline) {
			t.Fatalf("partitions 1 and 2 not stored while partition 0 was locked: stored %v, end %v\n%s", got, end, c.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.waitFor(t, "partition held", time.Minute)
	if err := tx.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.waitCaughtUp(conn, 2*time.Minute, c)
	c.stop(t)
	p.checkOrders(conn, 33_000)
}

// TestConsumeUnfixableErrorsStop: with the offsets table dropped, storing
// can never succeed: the consumer refuses to start, or stops once it meets
// it, with exit 1 and one line naming the cause, instead of retrying for
// ever.
func TestConsumeUnfixableErrorsStop(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	conn, c := p.consumeBacklog(10)
	if _, err := conn.Exec(context.Background(), "DROP TABLE consumer_offsets"); err != nil {
		t.Fatal(err)
	}
	p.produce(10) // the next batch meets the missing table
	if code := c.waitExit(t, time.Minute); code != 1 {
		t.Fatalf("dropped while running: exit %d, want 1\n%s", code, c.stderr.String())
	}
	if line := c.errorLine(t); !strings.Contains(line, "consumer_offsets") || !strings.Contains(line, "42P01") {
		t.Errorf("dropped while running: error line %q does not name the table and SQLSTATE 42P01", line)
	}
	c = p.startConsumer()
	if code := c.waitExit(t, time.Minute); code != 1 {
		t.Fatalf("dropped before the start: exit %d, want 1\n%s", code, c.stderr.String())
	}
	if line := c.errorLine(t); !strings.Contains(line, "table consumer_offsets does not exist") {
		t.Errorf("dropped before the start: error line %q does not say the table is missing", line)
	}
	if n := p.count(conn); n != 10 {
		t.Errorf("%d rows, want the 10 stored before the table was dropped", n)
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

// TestConsumeTakesUpAddedPartitions: an operator adds partitions with
// topics init --add-partitions while a producer and a consumer run. The
// running producer spreads onto the new partitions and the running
// consumer takes them up, both within a minute (Kafka clients' default
// metadata age would leave them unread for five), and every order
// produced is stored once.
func TestConsumeTakesUpAddedPartitions(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	producer := command(t, t.Context(), nil, "produce", brokersFlag(t), "--topic", p.topic,
		"--rate", "500", "--duration", "10m", "--output", "json")
	var produced bytes.Buffer
	producer.Stdout = &produced
	if err := producer.Start(); err != nil {
		t.Fatal(err)
	}
	conn := p.db()
	c := p.startConsumer()
	c.waitFor(t, `"msg":"batch stored"`, time.Minute)
	if r := run(t, nil, "topics", "init", brokersFlag(t), "--topic", p.topic, "--partitions", "6", "--add-partitions"); r.code != 0 {
		t.Fatal(r)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		got := p.storedOffsets(conn)
		if got[3] > 0 && got[4] > 0 && got[5] > 0 {
			break
		}
		if c.exited() || time.Now().After(deadline) {
			t.Fatalf("stored offsets %v a minute after the partitions were added, end offsets %v\n%s",
				got, testenv.EndOffsetsAt(t, p.brokers, p.topic), c.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := producer.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := waitProcess(t, producer, stopDeadline); err != nil {
		t.Fatalf("producer: %v", err)
	}
	n := parseProduce(t, result{stdout: produced.String()}).Produced
	p.waitCaughtUp(conn, 2*time.Minute, c)
	s := c.stop(t)
	if got, ids := p.count(conn), p.distinctIDs(conn); got != n || ids != n || s.Stored != n {
		t.Errorf("%d rows, %d distinct ids, summary %d stored, want the %d produced", got, ids, s.Stored, n)
	}
	p.checkStoredAtEnd(conn)
	checkBatches(t, c.stderr.String())
}

// TestConsumeKafkaOffsetsReset: an operator stops the group and moves its
// offsets in Kafka, as kafka-consumer-groups --reset-offsets --to-earliest
// would. foodpipe's offsets live in PostgreSQL: the consumer resumes from
// them (nothing is read twice), says that Kafka's copy differed and how to
// move the group instead, and rewrites Kafka's copy.
func TestConsumeKafkaOffsetsReset(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	p.produce(1_000)
	conn := p.db()
	c := p.startConsumer()
	p.waitCaughtUp(conn, 2*time.Minute, c)
	c.stop(t)
	reset := kadm.Offsets{}
	for part := range testenv.EndOffsetsAt(t, p.brokers, p.topic) {
		reset.AddOffset(p.topic, part, 0, -1)
	}
	rs, err := testenv.Admin(t).CommitOffsets(t.Context(), p.group, reset)
	if err == nil {
		err = rs.Error()
	}
	if err != nil {
		t.Fatalf("reset Kafka's offsets: %v", err)
	}
	p.produce(500)
	c = p.startConsumer()
	p.waitCaughtUp(conn, 2*time.Minute, c)
	s := c.stop(t)
	if got, ids := p.count(conn), p.distinctIDs(conn); got != 1_500 || ids != 1_500 || s.Stored != 500 || s.Duplicates != 0 {
		t.Errorf("%d rows, %d distinct ids; this run stored %d with %d duplicates; want 1500 rows, 500 stored, none read twice",
			got, ids, s.Stored, s.Duplicates)
	}
	if !regexp.MustCompile(`"msg":"Kafka's committed offsets differ from those stored in PostgreSQL[^\n]*consumer_offsets`).
		MatchString(c.stderr.String()) {
		t.Errorf("no warning that Kafka's offsets differ, naming consumer_offsets:\n%s", ownLines(c.stderr.String()))
	}
	committed, err := testenv.Admin(t).FetchOffsets(t.Context(), p.group)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	for part, end := range testenv.EndOffsetsAt(t, p.brokers, p.topic) {
		if o, _ := committed.Lookup(p.topic, part); o.At != end {
			t.Errorf("partition %d: Kafka's committed offset %d after the run, want the end offset %d", part, o.At, end)
		}
	}
}
