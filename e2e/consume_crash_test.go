package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

// crashSeed is the seed of the crash test's random kill moments: logged,
// and taken from FOODPIPE_TEST_SEED to replay a failure.
func crashSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("FOODPIPE_TEST_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FOODPIPE_TEST_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("kill moments from seed %d (replay with FOODPIPE_TEST_SEED=%d)", seed, seed)
	return seed
}

// TestConsumeExactlyOnceUnderCrashes drains a backlog of 100,000 orders
// with poison records mixed in all through it, while the consumer is
// killed with SIGKILL and restarted, in every phase where a crash could
// break exactly-once: during start-up, right after the assignment, inside
// a transaction (its dead letters acknowledged, its rows written, nothing
// committed), between the PostgreSQL commit and the Kafka offset commit,
// and at random moments while it stores. Every valid order ends up stored
// once; every bad record is in the dead-letter topic, at least once: a
// kill inside a transaction may leave dead letters that the restart sends
// again, with the same source offset (the README says so).
func TestConsumeExactlyOnceUnderCrashes(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	const n = 100_000
	poison := produceCrashBacklog(t, p, n)
	conn := p.db()
	rng := rand.New(rand.NewPCG(crashSeed(t), 1))

	// Static membership (--instance-id) lets each restarted process take
	// over its predecessor's partitions at once, as a restarted pod would,
	// instead of waiting out the dead member's session.
	args := []string{"--batch-rows", "1000", "--instance-id", "crash-test"}
	// A hold far longer than the kill takes to follow the pause's log
	// line: the kill always lands inside the pause, whatever the machine.
	inTx := []string{"FOODPIPE_TEST_PAUSE=in-transaction=10m"}
	afterCommit := []string{"FOODPIPE_TEST_PAUSE=after-commit=10m"}
	phases := []struct {
		name string
		env  []string
		wait func(c *consumer) // until the moment to kill
	}{
		{"start-up", nil, func(*consumer) { time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond) }},
		{"assignment", nil, func(c *consumer) { c.waitFor(t, `"msg":"partitions assigned"`, time.Minute) }},
		{"inside a transaction", inTx, func(c *consumer) { c.waitFor(t, `"point":"in-transaction"`, time.Minute) }},
		{"between the commits", afterCommit, func(c *consumer) { c.waitFor(t, `"point":"after-commit"`, time.Minute) }},
		{"while storing", nil, func(c *consumer) {
			stored := p.count(conn)
			p.waitRows(conn, stored+1, time.Minute, c)
			time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		}},
	}
	var logs []string
	uncommitted := 0 // dead letters acknowledged by a transaction killed before its commit
	for round := range 2 {
		for _, ph := range phases {
			c := p.startConsumerEnv(ph.env, args...)
			ph.wait(c)
			c.kill()
			logs = append(logs, c.stderr.String())
			stored := p.count(conn)
			t.Logf("round %d, killed %s: %d rows stored so far", round+1, ph.name, stored)
			if stored == n {
				t.Fatalf("the backlog drained before the last kill: make it larger")
			}
			if ph.name == "inside a transaction" {
				k := deadLettersNotCommitted(t, p, conn)
				t.Logf("round %d: the transaction killed held %d dead letters, acknowledged, not committed", round+1, k)
				uncommitted += k
			}
		}
	}
	if uncommitted == 0 {
		t.Errorf("no kill inside a transaction landed in one holding dead letters: the poison is too sparse")
	}
	c := p.startConsumer(args...)
	p.waitCaughtUp(conn, 5*time.Minute, c)
	c.stop(t)
	logs = append(logs, c.stderr.String())

	p.checkOrders(conn, n)
	p.checkStoredAtEnd(conn)
	checkBatches(t, logs...)
	checkCrashDeadLetters(t, p, poison)
}

// poisonEvery is how many valid orders of a partition come between two of
// its poison records. A batch of 1,000 records takes at least 334 in a row
// from one of the three partitions, so each full batch holds poison, and
// every kill inside a transaction finds dead letters in it.
const poisonEvery = 300

// produceCrashBacklog produces n valid orders, spread evenly over the
// topic's partitions, with a poison record after every poisonEvery valid
// orders of each partition. It returns the poison records, their partition
// and offset set.
func produceCrashBacklog(t *testing.T, p *pipeline, n int) (poison []*kgo.Record) {
	t.Helper()
	parts := len(testenv.EndOffsetsAt(t, p.brokers, p.topic))
	gen, err := order.NewGenerator(order.GeneratorConfig{Seed: 1, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]*kgo.Record, 0, n+n/poisonEvery+parts)
	var o order.Order
	for i := range n {
		gen.Next(&o)
		part := int32(i % parts)
		recs = append(recs, &kgo.Record{Topic: p.topic, Partition: part, Key: []byte(o.CustomerID), Value: order.AppendJSON(nil, &o)})
		if (i/parts+1)%poisonEvery == 0 {
			bad := &kgo.Record{Topic: p.topic, Partition: part, Key: []byte(o.CustomerID), Value: fmt.Appendf(nil, `{"poison":%d}`, len(poison))}
			recs = append(recs, bad)
			poison = append(poison, bad)
		}
	}
	// Partitions chosen here, not by key: each gets its share of poison.
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d valid orders and %d poison records over %d partitions", n, len(poison), parts)
	return poison
}

// sourceOf is the "partition@offset" of the record a dead letter carries.
func sourceOf(d testenv.Record) string {
	return d.Headers["foodpipe-source-partition"] + "@" + d.Headers["foodpipe-source-offset"]
}

// deadLettersNotCommitted counts the dead letters whose source offset its
// partition's stored offset has not passed: acknowledged inside a
// transaction that did not commit.
func deadLettersNotCommitted(t *testing.T, p *pipeline, conn *pgx.Conn) int {
	t.Helper()
	stored := p.storedOffsets(conn)
	k := 0
	for _, d := range testenv.Records(t, p.topic+".dlq") {
		part, err1 := strconv.ParseInt(d.Headers["foodpipe-source-partition"], 10, 32)
		off, err2 := strconv.ParseInt(d.Headers["foodpipe-source-offset"], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("dead letter without its source: %v", d.Headers)
		}
		if off >= stored[int32(part)] {
			k++
		}
	}
	return k
}

// checkCrashDeadLetters: each poison record is in the dead-letter topic,
// under its own source partition and offset, and nothing else is; copies
// sent again after a crash are counted and logged.
func checkCrashDeadLetters(t *testing.T, p *pipeline, poison []*kgo.Record) {
	t.Helper()
	dead := map[string]int{}
	for _, d := range testenv.Records(t, p.topic+".dlq") {
		dead[sourceOf(d)]++
	}
	for _, b := range poison {
		if dead[fmt.Sprintf("%d@%d", b.Partition, b.Offset)] == 0 {
			t.Errorf("poison record %d@%d is not in the dead-letter topic", b.Partition, b.Offset)
		}
	}
	if len(dead) != len(poison) {
		t.Errorf("the dead-letter topic holds %d distinct source records, want the %d poison ones", len(dead), len(poison))
	}
	twice, copies := 0, 0
	for _, k := range dead {
		if k > 1 {
			twice++
			copies += k - 1
		}
	}
	t.Logf("dead letters seen twice: %d of %d (%d extra copies), sent again after a kill inside their transaction",
		twice, len(poison), copies)
}
