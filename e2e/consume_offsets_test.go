package e2e

// The stored offsets are the consumer's position: their rows deleted or
// locked by another transaction, or Kafka's copy moved by an operator, no
// order is lost and none is read twice unseen.

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

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
