package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/jackc/pgx/v5"
)

// pipeline is one test's topic, group and database schema.
type pipeline struct {
	t       *testing.T
	brokers []string
	topic   string
	group   string
	dsn     string
	schema  string
	// listener, when set, is what the binary connects to instead of
	// brokers: a secured listener of the same broker, which the test
	// itself keeps reading through brokers.
	listener []string
	// env is added to every run of the binary (security settings).
	env []string
	// bin is the binary consumers run, when not the race-enabled one.
	bin string
}

func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	p := &pipeline{t: t, brokers: testenv.Brokers(t), topic: testenv.Name(t, "orders"), group: testenv.Name(t, "group")}
	p.dsn, p.schema = testenv.Schema(t)
	p.init()
	return p
}

// init creates the pipeline's topics and applies its schema.
func (p *pipeline) init() {
	p.t.Helper()
	if r := run(p.t, p.env, "topics", "init", p.brokersFlag(), "--topic", p.topic); r.code != 0 {
		p.t.Fatal(r)
	}
	if r := run(p.t, p.env, "db", "migrate", "--database-url", p.dsn); r.code != 0 {
		p.t.Fatal(r)
	}
}

func (p *pipeline) brokersFlag() string {
	if p.listener != nil {
		return "--brokers=" + strings.Join(p.listener, ",")
	}
	return "--brokers=" + strings.Join(p.brokers, ",")
}

// produce runs foodpipe produce for count orders as fast as possible.
func (p *pipeline) produce(count int, extra ...string) produceSummary {
	p.t.Helper()
	args := append([]string{"produce", p.brokersFlag(), "--topic", p.topic, "--count", fmt.Sprint(count), "--rate", "0", "--output", "json"}, extra...)
	r := run(p.t, p.env, args...)
	s := parseProduce(p.t, r)
	if r.code != 0 || s.Produced != int64(count) {
		p.t.Fatalf("produce:\n%s", r)
	}
	return s
}

// consumeBacklog produces n orders, starts a consumer and waits until it
// has stored them all; the consumer is still running.
func (p *pipeline) consumeBacklog(n int) (*pgx.Conn, *consumer) {
	p.t.Helper()
	p.produce(n)
	conn := p.db()
	c := p.startConsumer()
	p.waitCaughtUp(conn, 2*time.Minute, c)
	return conn, c
}

// db connects to the test's schema.
func (p *pipeline) db() *pgx.Conn {
	p.t.Helper()
	conn, err := pgx.Connect(context.Background(), p.dsn)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func (p *pipeline) count(conn *pgx.Conn) int64 {
	p.t.Helper()
	var n int64
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM orders").Scan(&n); err != nil {
		p.t.Fatal(err)
	}
	return n
}

// storedOffsets reads consumer_offsets of the test's group.
func (p *pipeline) storedOffsets(conn *pgx.Conn) map[int32]int64 {
	p.t.Helper()
	rows, err := conn.Query(context.Background(),
		"SELECT partition, next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2", p.group, p.topic)
	if err != nil {
		p.t.Fatal(err)
	}
	out := map[int32]int64{}
	for rows.Next() {
		var part int32
		var next int64
		if err := rows.Scan(&part, &next); err != nil {
			p.t.Fatal(err)
		}
		out[part] = next
	}
	if rows.Err() != nil {
		p.t.Fatal(rows.Err())
	}
	return out
}

// waitCaughtUp waits until the stored offsets equal the topic's end offsets.
func (p *pipeline) waitCaughtUp(conn *pgx.Conn, timeout time.Duration, alive ...*consumer) {
	p.t.Helper()
	end := testenv.EndOffsetsAt(p.t, p.brokers, p.topic)
	deadline := time.Now().Add(timeout)
	for {
		got := p.storedOffsets(conn)
		caught := true
		for part, e := range end {
			if e > 0 && got[part] != e {
				caught = false
			}
		}
		if caught {
			return
		}
		for _, c := range alive {
			if c.exited() {
				p.t.Fatalf("a consumer exited:\n%s", c.stderr.String())
			}
		}
		if time.Now().After(deadline) {
			for _, c := range alive {
				p.t.Logf("consumer log:\n%s", c.stderr.String())
			}
			p.t.Fatalf("stored offsets %v, end offsets %v after %v", got, end, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// logLine is a line of a consumer's JSON log that checkBatches reads.
type logLine struct {
	Msg          string          `json:"msg"`
	Inserted     int             `json:"inserted"`
	Duplicates   int             `json:"duplicates"`
	StartOffsets map[int32]int64 `json:"start_offsets"` // "partitions assigned": {"0": 12, "1": 40}
	Partitions   []int32
	Offsets      []struct {
		Partition int32
		Expected  int64
		Next      int64
	} `json:"offsets"`
}

// checkBatches reads the logs of every consumer process, each in order: a
// batch must start where the previous batch of its partition ended, or
// where the partition was positioned (its start offset at assignment, or
// anywhere after a fence reloaded it); no offset range may be stored twice
// across all processes; no batch met a duplicate. It fails when there is
// no batch at all, and returns how many there were.
func checkBatches(t *testing.T, logs ...string) (batches int) {
	t.Helper()
	starts := map[int32]map[int64]bool{}
	for i, l := range logs {
		next := map[int32]int64{} // where this process's next batch must start; absent: unknown
		sc := bufio.NewScanner(strings.NewReader(l))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var b logLine
			if err := json.Unmarshal(sc.Bytes(), &b); err != nil {
				if strings.Contains(sc.Text(), `"msg":"partitions assigned"`) {
					t.Errorf("a partitions assigned line does not read (start_offsets must be a map): %v\n%s", err, sc.Text())
				}
				continue
			}
			switch b.Msg {
			case "partitions assigned":
				maps.Copy(next, b.StartOffsets)
			case "batch fenced: another consumer wrote these partitions; reloading their offsets":
				for _, part := range b.Partitions {
					delete(next, part)
				}
			case "batch stored":
				batches++
				if b.Duplicates != 0 {
					t.Errorf("a batch met %d duplicates: some orders were delivered twice", b.Duplicates)
				}
				for _, o := range b.Offsets {
					if want, ok := next[o.Partition]; ok && o.Expected != -1 && o.Expected != want {
						t.Errorf("process %d, partition %d: a batch starts at %d, the partition stood at %d", i, o.Partition, o.Expected, want)
					}
					next[o.Partition] = o.Next
					if starts[o.Partition] == nil {
						starts[o.Partition] = map[int64]bool{}
					}
					if starts[o.Partition][o.Expected] {
						t.Errorf("partition %d: two batches stored from offset %d", o.Partition, o.Expected)
					}
					starts[o.Partition][o.Expected] = true
				}
			}
		}
	}
	if batches == 0 {
		t.Error("no batch logs: nothing to check (is the log level debug?)")
	}
	return batches
}

// waitRows waits until the orders table holds at least n rows.
func (p *pipeline) waitRows(conn *pgx.Conn, n int64, timeout time.Duration, alive ...*consumer) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for p.count(conn) < n {
		for _, c := range alive {
			if c.exited() {
				p.t.Fatalf("a consumer exited:\n%s", c.stderr.String())
			}
		}
		if time.Now().After(deadline) {
			for _, c := range alive {
				p.t.Logf("consumer log:\n%s", ownLines(c.stderr.String()))
			}
			p.t.Fatalf("fewer than %d rows after %v", n, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// distinctIDs counts the distinct order ids stored.
func (p *pipeline) distinctIDs(conn *pgx.Conn) int64 {
	p.t.Helper()
	var n int64
	if err := conn.QueryRow(context.Background(), "SELECT count(DISTINCT order_id) FROM orders").Scan(&n); err != nil {
		p.t.Fatal(err)
	}
	return n
}

// checkOrders fails unless the orders table holds want rows, each with
// its own order_id: every order stored, none twice.
func (p *pipeline) checkOrders(conn *pgx.Conn, want int64) {
	p.t.Helper()
	if got, ids := p.count(conn), p.distinctIDs(conn); got != want || ids != want {
		p.t.Errorf("orders table holds %d rows, %d distinct ids, want %d", got, ids, want)
	}
}

// checkStoredAtEnd fails unless every partition's stored offset is its end
// offset.
func (p *pipeline) checkStoredAtEnd(conn *pgx.Conn) {
	p.t.Helper()
	end := testenv.EndOffsetsAt(p.t, p.brokers, p.topic)
	got := p.storedOffsets(conn)
	for part, e := range end {
		if e > 0 && got[part] != e {
			p.t.Errorf("partition %d: stored offset %d, end offset %d", part, got[part], e)
		}
	}
}

// validOrder is testdata's valid order with another order_id.
func validOrder(t *testing.T, id string) []byte {
	t.Helper()
	data, err := os.ReadFile("../testdata/orders/valid.json")
	if err != nil {
		t.Fatal(err)
	}
	var o order.Order
	if err := order.DecodeAndValidate(data, &o); err != nil {
		t.Fatal(err)
	}
	o.RawItems, o.OrderID = nil, id
	return order.AppendJSON(nil, &o)
}

// ownLines drops franz-go's debug lines from a log, keeping foodpipe's.
func ownLines(log string) string {
	var b strings.Builder
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, `"component":"franz-go"`) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
