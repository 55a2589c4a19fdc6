package main

// Fault tests of foodpipe consume, run with the real binary against the
// real Kafka and PostgreSQL of the test bed. The proof is in the data: rows,
// stored offsets, dead letters.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/order"
)

// pipeline is one test's topic, group and database schema.
type pipeline struct {
	t       *testing.T
	brokers []string
	topic   string
	group   string
	dsn     string
	schema  string
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
	if r := run(p.t, nil, "topics", "init", p.brokersFlag(), "--topic", p.topic); r.code != 0 {
		p.t.Fatal(r)
	}
	if r := run(p.t, nil, "db", "migrate", "--database-url", p.dsn); r.code != 0 {
		p.t.Fatal(r)
	}
}

func (p *pipeline) brokersFlag() string { return "--brokers=" + strings.Join(p.brokers, ",") }

// produce runs foodpipe produce for count orders as fast as possible.
func (p *pipeline) produce(count int, extra ...string) produceSummary {
	p.t.Helper()
	args := append([]string{"produce", p.brokersFlag(), "--topic", p.topic, "--count", fmt.Sprint(count), "--rate", "0", "--output", "json"}, extra...)
	r := run(p.t, nil, args...)
	s := parseProduce(p.t, r)
	if r.code != 0 || s.Produced != int64(count) {
		p.t.Fatalf("produce:\n%s", r)
	}
	return s
}

// consumer is one running foodpipe consume process.
type consumer struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr *lineWaiter
	done   chan error
}

func (p *pipeline) startConsumer(extra ...string) *consumer {
	p.t.Helper()
	args := append([]string{"consume", p.brokersFlag(), "--topic", p.topic, "--group", p.group,
		"--database-url", p.dsn, "--output", "json", "--log-format", "json", "--log-level", "debug",
		"--progress-interval", "500ms"}, extra...)
	c := &consumer{stderr: &lineWaiter{want: `"msg":"consuming"`}, done: make(chan error, 1)}
	c.cmd = command(p.t, context.Background(), nil, args...)
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, c.stderr
	if err := c.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	p.t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.done
		c.done <- nil
	})
	return c
}

// stop sends SIGTERM and returns the summary; the consumer must exit 0
// within 10 s.
func (c *consumer) stop(t *testing.T) consumeSummary {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		c.done <- err
		if err != nil {
			t.Fatalf("consumer exit after SIGTERM: %v\n%s", err, c.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("consumer still running 10s after SIGTERM\n%s", c.stderr.String())
	}
	var s consumeSummary
	if err := json.Unmarshal(c.stdout.Bytes(), &s); err != nil {
		t.Fatalf("consume summary: %v\n%s", err, c.stdout.String())
	}
	return s
}

func (c *consumer) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	err := <-c.done
	c.done <- err
}

func (c *consumer) exited() bool {
	select {
	case err := <-c.done:
		c.done <- err
		return true
	default:
		return false
	}
}

type consumeSummary struct {
	Stored       int64            `json:"stored"`
	Duplicates   int64            `json:"duplicates"`
	DeadLettered map[string]int64 `json:"dead_lettered"`
	Batches      int64            `json:"batches"`
	Offsets      map[string]int64 `json:"offsets"`
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
			p.t.Fatalf("stored offsets %v, end offsets %v after %v", got, end, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestConsumeStoresEveryColumn(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	p.produce(2000)
	c := p.startConsumer()
	conn := p.db()
	p.waitCaughtUp(conn, 2*time.Minute, c)
	s := c.stop(t)
	if s.Stored != 2000 || s.Duplicates != 0 || len(s.DeadLettered) != 0 {
		t.Errorf("summary %+v, want 2000 stored", s)
	}

	want := map[string]order.Order{}
	for _, r := range testenv.Records(t, p.topic) {
		var o order.Order
		if err := order.DecodeAndValidate(r.Value, &o); err != nil {
			t.Fatal(err)
		}
		o.RawItems = append([]byte(nil), o.RawItems...)
		want[o.OrderID] = o
	}
	rows, err := conn.Query(context.Background(), `
		SELECT order_id, customer_id, customer_name, customer_email, items::text, total_amount::text,
		       status, created_at, processed_at
		FROM orders`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
		var id, cust, name, email, items, total, status string
		var created, processed time.Time
		if err := rows.Scan(&id, &cust, &name, &email, &items, &total, &status, &created, &processed); err != nil {
			t.Fatal(err)
		}
		w, ok := want[id]
		if !ok {
			t.Fatalf("row %s was never produced", id)
		}
		if cust != w.CustomerID || name != w.CustomerName || email != w.CustomerEmail || status != w.Status {
			t.Errorf("%s: got %q %q %q %q, want %q %q %q %q", id, cust, name, email, status, w.CustomerID, w.CustomerName, w.CustomerEmail, w.Status)
		}
		if total != w.TotalAmount.String() {
			t.Errorf("%s: total %s, want %s", id, total, w.TotalAmount)
		}
		if !created.Equal(w.CreatedAt) {
			t.Errorf("%s: created_at %v, want %v (microseconds kept)", id, created, w.CreatedAt)
		}
		if processed.Before(created) {
			t.Errorf("%s: processed_at %v before created_at %v", id, processed, created)
		}
		var gotItems, wantItems []map[string]any
		if err := json.Unmarshal([]byte(items), &gotItems); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(w.RawItems, &wantItems); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(gotItems) != fmt.Sprint(wantItems) {
			t.Errorf("%s: items %s, want %s", id, items, w.RawItems)
		}
	}
	if n != len(want) {
		t.Errorf("%d rows, %d orders produced", n, len(want))
	}
}

// batchLog is one "batch stored" debug line of a consumer.
type batchLog struct {
	Msg        string `json:"msg"`
	Inserted   int    `json:"inserted"`
	Duplicates int    `json:"duplicates"`
	Offsets    []struct {
		Partition int32
		Expected  int64
		Next      int64
	} `json:"offsets"`
}

// checkBatches reads the "batch stored" lines of every consumer process: no
// offset range may have been stored twice (each partition's ranges chain
// Expected → Next without repeating a start) and no duplicate was seen.
func checkBatches(t *testing.T, logs ...string) (batches int) {
	t.Helper()
	starts := map[int32]map[int64]bool{}
	for _, l := range logs {
		sc := bufio.NewScanner(strings.NewReader(l))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var b batchLog
			if json.Unmarshal(sc.Bytes(), &b) != nil || b.Msg != "batch stored" {
				continue
			}
			batches++
			if b.Duplicates != 0 {
				t.Errorf("a batch met %d duplicates: some orders were delivered twice", b.Duplicates)
			}
			for _, o := range b.Offsets {
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
	return batches
}

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

// TestConsumePoison mixes valid orders with every kind of bad record: each
// bad one lands in the dead-letter topic, untouched and with the right
// headers; every valid one is stored; the consumer keeps running.
func TestConsumePoison(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)

	type poison struct {
		name, class string
		value       []byte
	}
	var bad []poison
	files, err := filepath.Glob("testdata/orders/bad/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("bad-record fixtures: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		class, _, _ := strings.Cut(filepath.Base(f), "-")
		bad = append(bad, poison{filepath.Base(f), class, data})
	}
	valid, err := os.ReadFile("testdata/orders/valid.json")
	if err != nil {
		t.Fatal(err)
	}
	var tmpl order.Order
	if err := order.DecodeAndValidate(valid, &tmpl); err != nil {
		t.Fatal(err)
	}
	tmpl.RawItems = nil
	withID := func(id string, edit func(*order.Order)) []byte {
		o := tmpl
		o.Items = append([]order.Item(nil), tmpl.Items...)
		o.OrderID = id
		if edit != nil {
			edit(&o)
		}
		return order.AppendJSON(nil, &o)
	}
	bad = append(bad,
		poison{"non-utf8", "decode", []byte("\xff\xfe{\"order_id\":1}")},
		poison{"null value", "decode", nil},
		poison{"json array", "decode", []byte(`[1,2,3]`)},
		poison{"json string", "decode", []byte(`"an order"`)},
		// Valid to foodpipe, refused by PostgreSQL: a number jsonb cannot hold.
		poison{"db rejects", "store", bytes.Replace(withID("ORD-20261127-DBREJECT-1", nil),
			[]byte(`"item_id":`), []byte(`"calories":1e200000,"item_id":`), 1)},
	)

	// Interleave 300 valid orders with the bad records, on one key so they
	// share a partition and batch.
	var recs []*kgo.Record
	wantValid := map[string]bool{}
	for i := range 300 {
		id := fmt.Sprintf("ORD-20261127-POISON-%d", i)
		wantValid[id] = true
		recs = append(recs, &kgo.Record{Topic: p.topic, Key: []byte("CUST-00042"), Value: withID(id, nil)})
		if i < len(bad) {
			recs = append(recs, &kgo.Record{Topic: p.topic, Key: []byte("CUST-00042"), Value: bad[i].value,
				Headers: []kgo.RecordHeader{{Key: "test-case", Value: []byte(bad[i].name)}}})
		}
	}
	if len(bad) > 300 {
		t.Fatalf("%d bad records, the test interleaves at most 300", len(bad))
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(testenv.Brokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	c := p.startConsumer("--batch-rows", "100")
	conn := p.db()
	p.waitCaughtUp(conn, 2*time.Minute, c)
	if c.exited() {
		t.Fatalf("consumer exited on poison:\n%s", c.stderr.String())
	}
	s := c.stop(t)

	if got := p.count(conn); got != int64(len(wantValid)) {
		t.Errorf("%d rows stored, want %d", got, len(wantValid))
	}
	dead := testenv.Records(t, p.topic+".dlq")
	if len(dead) != len(bad) {
		t.Errorf("dead-letter topic holds %d records, want %d", len(dead), len(bad))
	}
	byCase := map[string]testenv.Record{}
	for _, d := range dead {
		byCase[d.Headers["test-case"]] = d
	}
	for _, b := range bad {
		d, ok := byCase[b.name]
		if !ok {
			t.Errorf("%s: not in the dead-letter topic", b.name)
			continue
		}
		if !bytes.Equal(d.Value, b.value) || string(d.Key) != "CUST-00042" {
			t.Errorf("%s: dead letter bytes changed", b.name)
		}
		h := d.Headers
		if h["foodpipe-error-class"] != b.class {
			t.Errorf("%s: class %q, want %q (error %q)", b.name, h["foodpipe-error-class"], b.class, h["foodpipe-error"])
		}
		if h["foodpipe-error"] == "" || strings.Contains(h["foodpipe-error"], "\n") {
			t.Errorf("%s: error header %q", b.name, h["foodpipe-error"])
		}
		if h["foodpipe-source-topic"] != p.topic || h["foodpipe-source-partition"] == "" || h["foodpipe-source-offset"] == "" ||
			h["foodpipe-source-timestamp"] == "" || h["foodpipe-group"] != p.group || h["foodpipe-failed-at"] == "" {
			t.Errorf("%s: headers %v", b.name, h)
		}
	}
	if got := s.DeadLettered["decode"] + s.DeadLettered["validate"] + s.DeadLettered["store"]; got != int64(len(bad)) {
		t.Errorf("summary counts %v dead letters, want %d", s.DeadLettered, len(bad))
	}
}

// TestConsumePostgresOutage stops PostgreSQL for 20 s while orders flow:
// the consumer waits, retries, and resumes; nothing is lost or doubled.
func TestConsumePostgresOutage(t *testing.T) {
	t.Parallel()
	pg := testenv.PrivatePostgres(t)
	p := &pipeline{t: t, brokers: testenv.Brokers(t), topic: testenv.Name(t, "orders"), group: testenv.Name(t, "group"), dsn: pg.URL}
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

// TestConsumeMemoryBounded drains a backlog of 1,000,000 orders and reads
// the consumer's peak resident set (VmHWM) from /proc: it must stay under
// 200 MB, whatever the backlog.
func TestConsumeMemoryBounded(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	const n = 1_000_000
	p.produce(n)
	c := p.startConsumer("--log-level", "info")
	conn := p.db()
	p.waitCaughtUp(conn, 10*time.Minute, c)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var peakKB int64
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &peakKB)
		}
	}
	s := c.stop(t)
	if s.Stored != n {
		t.Errorf("stored %d, want %d", s.Stored, n)
	}
	t.Logf("peak RSS while draining %d orders: %d MB", n, peakKB/1024)
	if peakKB == 0 || peakKB > 200*1024 {
		t.Errorf("peak RSS %d kB, want under 200 MB", peakKB)
	}
}

// TestKafkaOutage stops the broker for 10 s while orders are produced and
// consumed: both roles retry, recover when it returns, and every order is
// stored exactly once. The broker is a private test bed of this test's own
// (scripts/testbed.sh in a temporary run dir), so the other tests keep
// theirs.
func TestKafkaOutage(t *testing.T) {
	t.Parallel()
	// Not t.TempDir(): its 0700 parent would keep the postgres user out.
	dir, err := os.MkdirTemp("", "foodpipe-testbed-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bed := filepath.Join(dir, "run")
	testbed := func(args ...string) string {
		t.Helper()
		c := exec.Command("scripts/testbed.sh", args...)
		c.Env = append(os.Environ(), "FOODPIPE_TESTBED_DIR="+bed)
		var stderr bytes.Buffer
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			t.Fatalf("testbed.sh %v: %v\n%s", args, err, stderr.String())
		}
		return string(out)
	}
	testbed("up")
	t.Cleanup(func() { testbed("down") })
	env := map[string]string{}
	for _, f := range strings.Fields(strings.SplitN(testbed("env"), "\n", 2)[0]) {
		if k, v, ok := strings.Cut(f, "="); ok {
			env[k] = v
		}
	}
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
	c.stderr.wait(t, time.Minute)
	time.Sleep(5 * time.Second)

	testbed("kafka-stop")
	time.Sleep(10 * time.Second)
	if c.exited() {
		t.Fatalf("consumer exited while the broker was down:\n%s", c.stderr.String())
	}
	testbed("kafka-start")

	if err := producer.Wait(); err != nil {
		t.Fatalf("producer: %v\n%s", err, produced.String())
	}
	s := parseProduce(t, result{stdout: produced.String()})
	if s.Failed != 0 || s.Produced < 10000 {
		t.Errorf("producer summary %+v: want every order acknowledged despite the outage", s)
	}
	conn := p.db()
	p.waitCaughtUp(conn, 3*time.Minute, c)
	cs := c.stop(t)
	if got := p.count(conn); got != s.Produced {
		t.Errorf("orders table holds %d rows, the producer acknowledged %d", got, s.Produced)
	}
	if cs.Duplicates != 0 {
		t.Errorf("consumer met %d duplicates", cs.Duplicates)
	}
	checkBatches(t, c.stderr.String())
}

// TestConsumeStopsOnPermanentErrors: a schema that is not migrated is
// refused at start, and an error no retry can fix (the table dropped under
// a running consumer) ends it with exit 1 and one line, instead of a retry
// loop that hides it.
func TestConsumeStopsOnPermanentErrors(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.Schema(t) // empty: never migrated
	r := run(t, nil, "consume", brokersFlag(t), "--database-url", dsn, "--topic", testenv.Name(t, "orders"))
	if r.code != 1 || !strings.Contains(errorLine(t, r), "run foodpipe db migrate") {
		t.Errorf("unmigrated schema: want exit 1 asking for db migrate\n%s", r)
	}

	p := newPipeline(t)
	c := p.startConsumer()
	c.stderr.wait(t, time.Minute)
	conn := p.db()
	if _, err := conn.Exec(context.Background(), "DROP TABLE orders"); err != nil {
		t.Fatal(err)
	}
	p.produce(10)
	select {
	case err := <-c.done:
		c.done <- err
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("consumer exit: %v, want exit code 1\n%s", err, c.stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("consumer still running a minute after its table was dropped\n%s", c.stderr.String())
	}
	if !strings.Contains(c.stderr.String(), `foodpipe: store batch: not retryable: `) {
		t.Errorf("no one-line permanent error:\n%s", c.stderr.String())
	}
}
