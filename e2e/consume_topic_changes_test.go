package e2e

// The topics change under the pipeline: compacted, deleted, created again,
// cut by retention, given more partitions. Each ends with every order stored
// once, or with exit 1 and one line that names what happened — never a
// silent gap.

import (
	"bytes"
	"context"
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
