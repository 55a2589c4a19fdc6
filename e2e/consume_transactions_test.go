package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

// produceTransactions writes txns transactions of per valid orders each
// with a transactional client of the test's own, as Kafka Streams or Flink
// would; every abortEvery-th transaction is aborted. It returns the ids of
// the committed orders and of the aborted ones.
func produceTransactions(t *testing.T, brokers []string, topic string, txns, per, abortEvery int) (committed, aborted []string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID(testenv.Name(t, "txn")))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	run := randomHex(t)
	for i := range txns {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		abort := abortEvery > 0 && (i+1)%abortEvery == 0
		ids := make([]string, per)
		for j := range ids {
			ids[j] = fmt.Sprintf("TXN-%s-%d-%d", run, i, j)
			cl.Produce(t.Context(), &kgo.Record{Key: fmt.Appendf(nil, "CUST-%05d", j%7), Value: validOrder(t, ids[j])}, nil)
		}
		if err := cl.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		end := kgo.TryCommit
		if abort {
			end, aborted = kgo.TryAbort, append(aborted, ids...)
		} else {
			committed = append(committed, ids...)
		}
		if err := cl.EndTransaction(t.Context(), end); err != nil {
			t.Fatal(err)
		}
	}
	return committed, aborted
}

// TestConsumeTransactionalProducer: orders written by another producer in
// Kafka transactions, some aborted. Every committed order is stored once and
// no aborted one; the transaction markers are passed like records, so the
// stored offsets reach the partitions' end offsets (lag 0, where they
// stopped a marker short before), a running consumer reads each new
// transaction without taking the markers' gaps for missing records, and
// consume --stop-at-end ends (it waited for ever for the last marker).
func TestConsumeTransactionalProducer(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	conn := p.db()
	c := p.startConsumer()
	var committed, aborted []string
	for range 3 { // three rounds, so new transactions reach a running consumer
		ok, ab := produceTransactions(t, p.brokers, p.topic, 3, 40, 3)
		committed, aborted = append(committed, ok...), append(aborted, ab...)
		p.waitRows(conn, int64(len(committed)), 2*time.Minute, c)
	}
	p.waitCaughtUp(conn, 2*time.Minute, c)
	if s := c.stop(t); s.Stored != int64(len(committed)) {
		t.Errorf("summary says %d stored, want %d", s.Stored, len(committed))
	}
	if log := ownLines(c.stderr.String()); strings.Contains(log, "records missing") {
		t.Errorf("transaction markers taken for missing records:\n%s", log)
	}
	checkBatches(t, c.stderr.String())
	p.checkOrders(conn, int64(len(committed)))
	var stray int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM orders WHERE order_id = ANY($1)", aborted).Scan(&stray); err != nil || stray != 0 {
		t.Errorf("%d orders of aborted transactions stored (err %v)", stray, err)
	}
	p.checkStoredAtEnd(conn)
	if r := run(t, nil, "lag", p.brokersFlag(), "--topic", p.topic, "--group", p.group, "--database-url", p.dsn, "--max-lag", "0"); r.code != 0 {
		t.Errorf("lag --max-lag 0 after every transaction was stored:\n%s", r)
	}

	// A batch job over a backlog that ends with an aborted transaction.
	job := []string{"consume", p.brokersFlag(), "--topic", p.topic, "--group", p.group, "--database-url", p.dsn, "--stop-at-end"}
	ok, _ := produceTransactions(t, p.brokers, p.topic, 3, 40, 3)
	committed = append(committed, ok...)
	if r := run(t, nil, job...); r.code != 0 {
		t.Fatalf("consume --stop-at-end:\n%s", r)
	}
	p.checkOrders(conn, int64(len(committed)))
	p.checkStoredAtEnd(conn)

	// A transaction still open when a batch job starts is not waited for:
	// its records are not readable yet, as records produced after the
	// start they are left for the next run.
	open, err := kgo.NewClient(kgo.SeedBrokers(p.brokers...), kgo.DefaultProduceTopic(p.topic),
		kgo.TransactionalID(testenv.Name(t, "open")))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		open.Produce(t.Context(), &kgo.Record{Key: []byte("CUST-00001"), Value: validOrder(t, fmt.Sprintf("TXN-OPEN-%s-%d", p.schema[len(p.schema)-8:], i))}, nil)
	}
	if err := open.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := run(t, nil, job...); r.code != 0 {
		t.Fatalf("consume --stop-at-end with a transaction open:\n%s", r)
	}
	p.checkOrders(conn, int64(len(committed)))
	if err := open.EndTransaction(t.Context(), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if r := run(t, nil, job...); r.code != 0 {
		t.Fatalf("consume --stop-at-end after the transaction committed:\n%s", r)
	}
	p.checkOrders(conn, int64(len(committed)+20))
	p.checkStoredAtEnd(conn)
}
