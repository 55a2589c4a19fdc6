package e2e

// What a demo run reports and where it runs: its summary checked figure by
// figure, on the in-process broker or the test bed's, as root, and kept up
// with --keep.

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

// demoSummary is the part of foodpipe demo --output json the tests check.
type demoSummary struct {
	Topics []struct {
		Topic      string `json:"topic"`
		Status     string `json:"status"`
		Partitions int    `json:"partitions"`
	} `json:"topics"`
	Stopped     string `json:"stopped"`
	Produced    int64  `json:"produced"`
	Orders      int64  `json:"orders"`
	Failed      int64  `json:"failed"`
	Rows        int64  `json:"rows"`
	DeadLetters int64  `json:"dead_letters"`
	Drained     bool   `json:"drained"`
	Trimmed     int64  `json:"trimmed"`
	Poison      []struct {
		Class     string `json:"class"`
		Partition int32  `json:"partition"`
	} `json:"poison"`
	Consumers []struct {
		Name         string           `json:"name"`
		Partitions   []int32          `json:"partitions"`
		Stored       int64            `json:"stored"`
		DeadLettered map[string]int64 `json:"dead_lettered"`
	} `json:"consumers"`
	ByStatus []struct {
		Status string `json:"status"`
		Orders int64  `json:"orders"`
	} `json:"by_status"`
	TopItems []struct {
		ItemID   string `json:"item_id"`
		Quantity int64  `json:"quantity"`
	} `json:"top_items"`
	RevenueByHour []struct {
		Orders  int64 `json:"orders"`
		Revenue int64 `json:"revenue_cents"`
	} `json:"revenue_by_hour"`
	Explore struct {
		Brokers []string `json:"brokers"`
		Topic   string   `json:"topic"`
		Schema  string   `json:"schema"`
	} `json:"explore"`
	Group    string `json:"group"`
	DLQTopic string `json:"dlq_topic"`
}

// checkDemo checks that the summary's figures add up and agree with each
// other: every order stored once, every poison record dead-lettered once,
// three consumers splitting the partitions, the answers summing to the rows.
func checkDemo(t *testing.T, r result, stopped string) demoSummary {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("demo failed:\n%s", r)
	}
	var s demoSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("demo output is not JSON: %v\n%s", err, r)
	}
	if len(s.Topics) != 2 || s.Topics[0].Status != "created" || s.Topics[0].Partitions != 3 || !strings.HasSuffix(s.Topics[1].Topic, ".dlq") {
		t.Errorf("topics %+v, want the orders topic and its dead-letter topic created with 3 partitions", s.Topics)
	}
	if s.Stopped != stopped || !s.Drained || s.Orders == 0 || s.Failed != 0 {
		t.Errorf("stopped %q, drained %v, %d orders, %d failed", s.Stopped, s.Drained, s.Orders, s.Failed)
	}
	classes := map[string]int{}
	for _, p := range s.Poison {
		classes[p.Class]++
	}
	if classes["decode"] != 1 || classes["validate"] != 2 || classes["store"] != 1 {
		t.Errorf("poison records by class %v, want decode 1, validate 2, store 1", classes)
	}
	if s.Produced != s.Rows+s.DeadLetters || s.Rows != s.Orders || s.DeadLetters != int64(len(s.Poison)) {
		t.Errorf("produced %d, orders %d, rows %d, dead letters %d, poison %d: the counts do not add up",
			s.Produced, s.Orders, s.Rows, s.DeadLetters, len(s.Poison))
	}
	if s.Trimmed != s.Produced {
		t.Errorf("%d records trimmed from the broker, want all %d: every record is stored or dead-lettered by the end", s.Trimmed, s.Produced)
	}
	var stored, dead int64
	var owned []int32
	for _, c := range s.Consumers {
		stored += c.Stored
		for _, n := range c.DeadLettered {
			dead += n
		}
		owned = append(owned, c.Partitions...)
	}
	slices.Sort(owned)
	if len(s.Consumers) != 3 || !slices.Equal(owned, []int32{0, 1, 2}) {
		t.Errorf("consumers %+v: want three, each owning one of partitions 0, 1, 2 at the end", s.Consumers)
	}
	if stored != s.Rows || dead != s.DeadLetters {
		t.Errorf("consumers stored %d and dead-lettered %d; the database holds %d rows, the dead-letter topic %d", stored, dead, s.Rows, s.DeadLetters)
	}
	var byStatus, byHour int64
	for _, b := range s.ByStatus {
		byStatus += b.Orders
	}
	for _, h := range s.RevenueByHour {
		byHour += h.Orders
		if h.Revenue <= 0 {
			t.Errorf("revenue by hour %+v: no revenue", h)
		}
	}
	if byStatus != s.Rows || byHour != s.Rows || len(s.ByStatus) != 1 || s.ByStatus[0].Status != "pending" {
		t.Errorf("orders by status %+v and by hour sum to %d and %d, want %d pending", s.ByStatus, byStatus, byHour, s.Rows)
	}
	if len(s.TopItems) != 5 || !slices.IsSortedFunc(s.TopItems, func(a, b struct {
		ItemID   string `json:"item_id"`
		Quantity int64  `json:"quantity"`
	}) int {
		return int(b.Quantity - a.Quantity)
	}) {
		t.Errorf("top items %+v, want 5 by quantity, most first", s.TopItems)
	}
	if !strings.Contains(r.stderr, `msg=progress`) || !strings.Contains(r.stderr, "consumer-3=[") {
		t.Errorf("no progress line with the consumers' partitions on stderr:\n%s", r.stderr)
	}
	checkProgressAddsUp(t, r.stderr)
	return s
}

// checkProgressAddsUp: no progress line shows more orders stored than
// produced (the producer's figure was a snapshot a second old, the
// consumers' live: 200 produced, 201 stored).
func checkProgressAddsUp(t *testing.T, stderr string) {
	t.Helper()
	produced, stored := regexp.MustCompile(`\bproduced=(\d+)`), regexp.MustCompile(`\bstored=(\d+)`)
	for _, l := range strings.Split(stderr, "\n") {
		p, s := produced.FindStringSubmatch(l), stored.FindStringSubmatch(l)
		if !strings.Contains(l, "msg=progress") || p == nil || s == nil {
			continue
		}
		// The pattern matched digits only: they parse.
		np, _ := strconv.ParseInt(p[1], 10, 64)
		if ns, _ := strconv.ParseInt(s[1], 10, 64); ns > np {
			t.Errorf("a progress line shows %d stored of %d produced:\n%s", ns, np, l)
		}
	}
}

// TestDemoOnPostgres runs the demo with its in-process broker and the test
// bed's PostgreSQL (in a schema of the demo's own, dropped at exit): the
// path a root user takes, and the one a normal user takes with
// --database-url.
func TestDemoOnPostgres(t *testing.T) {
	t.Parallel()
	dsn := testenv.DatabaseURL(t)
	r := run(t, nil, "demo", "--duration", "6s", "--rate", "100", "--database-url", dsn, "--output", "json")
	s := checkDemo(t, r, "duration")
	if s.Explore.Topic != "food-orders" || !strings.HasPrefix(s.Explore.Brokers[0], "127.0.0.1:") {
		t.Errorf("explore %+v: want the in-process broker and food-orders", s.Explore)
	}
	if schemaExists(t, dsn, s.Explore.Schema) {
		t.Errorf("schema %s still exists after the demo", s.Explore.Schema)
	}
}

// TestDemoOnRealKafka gives the demo the test bed's broker: it makes a
// topic (and a group) of its own there, names that topic's dead-letter
// topic in its summary, and deletes them at exit.
func TestDemoOnRealKafka(t *testing.T) {
	t.Parallel()
	brokers := testenv.Brokers(t)
	dsn := testenv.DatabaseURL(t)
	r := run(t, nil, "demo", "--duration", "6s", "--rate", "100", "--brokers", strings.Join(brokers, ","),
		"--database-url", dsn, "--output", "json")
	s := checkDemo(t, r, "duration")
	if !strings.HasPrefix(s.Explore.Topic, "foodpipe-demo-") || !slices.Equal(s.Explore.Brokers, brokers) {
		t.Errorf("explore %+v: want a topic of the demo's own on %v", s.Explore, brokers)
	}
	td, err := testenv.Admin(t).ListTopics(context.Background(), s.Explore.Topic, s.Explore.Topic+".dlq")
	if err != nil {
		t.Fatal(err)
	}
	for name, d := range td {
		if d.Err == nil {
			t.Errorf("topic %s still exists after the demo", name)
		}
	}
	if s.DLQTopic != s.Explore.Topic+".dlq" || s.Group != s.Explore.Topic {
		t.Errorf("summary names dead-letter topic %q and group %q; the demo's topic is %s", s.DLQTopic, s.Group, s.Explore.Topic)
	}
	if groupExists(t, s.Group) {
		t.Errorf("group %s still exists after the demo", s.Group)
	}
}

// groupExists reports whether Kafka knows group (with members or
// committed offsets).
func groupExists(t *testing.T, group string) bool {
	t.Helper()
	groups, err := testenv.Admin(t).ListGroups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, ok := groups[group]
	return ok
}

// TestDemoAsRootSaysWhatToDo: PostgreSQL refuses root, so the embedded one
// cannot start; the demo says so in one line, exit 1.
func TestDemoAsRootSaysWhatToDo(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("runs as root only")
	}
	r := run(t, []string{"FOODPIPE_DATABASE_URL="}, "demo", "--duration", "2s")
	if r.code != 1 {
		t.Fatalf("want exit 1:\n%s", r)
	}
	line := errorLine(t, r)
	for _, want := range []string{"cannot run as root", "normal user", "--database-url"} {
		if !strings.Contains(line, want) {
			t.Errorf("error line %q does not say %q", line, want)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
}

func schemaExists(t *testing.T, dsn, schema string) bool {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// TestDemoKeepHoldsUntilCtrlC: with --keep the demo prints its summary and
// how to reach its services, keeps them up (the rows can be read), and
// stops at the first SIGINT with exit 0; on a server of the user's, its
// schema stays. The password of the user's URL is printed nowhere, not in
// the summary's explore section nor in the psql command (the test bed
// trusts local connections, so any password connects).
func TestDemoKeepHoldsUntilCtrlC(t *testing.T) {
	t.Parallel()
	dsn := testenv.DatabaseURL(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "demo-secret-4711"
	u.User = url.UserPassword(u.User.Username(), secret)
	c := command(t, t.Context(), nil, "demo", "--duration", "3s", "--rate", "100", "--database-url", u.String(), "--keep",
		"--metrics-addr", "127.0.0.1:0", "--output", "json")
	// The summary's closing brace: stdout and stderr are copied by
	// goroutines of their own, so the line on stderr does not say stdout
	// is all there.
	stdout := &lineWaiter{want: "\n}\n"}
	stderr := &lineWaiter{want: "kept running until Ctrl-C"}
	c.Stdout, c.Stderr = stdout, stderr
	done := startBackground(t, c)
	stderr.wait(t, time.Minute)
	stdout.wait(t, time.Minute)

	var s demoSummary
	if err := json.Unmarshal([]byte(stdout.String()), &s); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, stdout.String())
	}
	t.Cleanup(func() {
		mustExec(t, dsn, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s.Explore.Schema}.Sanitize()+" CASCADE")
	})
	if !strings.Contains(stderr.String(), "psql '") || !strings.Contains(stderr.String(), s.Explore.Schema) {
		t.Errorf("no psql command for schema %s on stderr:\n%s", s.Explore.Schema, stderr.String())
	}
	if strings.Contains(stdout.String(), secret) || strings.Contains(stderr.String(), secret) {
		t.Errorf("the password of --database-url is printed:\n%s\n%s", stdout.String(), stderr.String())
	}
	if got := countIn(t, dsn, s.Explore.Schema); got != s.Rows || got == 0 {
		t.Errorf("the kept schema holds %d orders, the summary says %d", got, s.Rows)
	}
	demoMetricsMatch(t, stderr.String(), s)
	if err := c.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after SIGINT: %v\n%s", err, stderr.String())
		}
	case <-time.After(stopDeadline):
		t.Fatalf("still running %v after SIGINT:\n%s", stopDeadline, stderr.String())
	}
	noRace(t, stderr.String())
	if !schemaExists(t, dsn, s.Explore.Schema) {
		t.Errorf("schema %s was dropped despite --keep", s.Explore.Schema)
	}
}

func countIn(t *testing.T, dsn, schema string) int64 {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM "+pgx.Identifier{schema, "orders"}.Sanitize()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// demoMetricsMatch: the metrics of a kept demo, whose address it prints,
// add up its three consumers and its producer: rows stored as the summary
// counts them, one dead letter for each poison record, every record
// produced.
func demoMetricsMatch(t *testing.T, stderr string, s demoSummary) {
	t.Helper()
	m := regexp.MustCompile(`(?m)^  metrics (http://\S+)/metrics$`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no metrics address printed:\n%s", stderr)
	}
	got := scrape(t, m[1])
	var dead float64
	for k, v := range got {
		if strings.HasPrefix(k, "foodpipe_dead_letters_total{") {
			dead += v
		}
	}
	if got["foodpipe_rows_stored_total"] != float64(s.Rows) || dead != float64(len(s.Poison)) ||
		got["foodpipe_orders_produced_total"] != float64(s.Orders) {
		t.Errorf("metrics: rows_stored %v, dead_letters %v, orders_produced %v; the summary: rows %d, poison %d, orders %d",
			got["foodpipe_rows_stored_total"], dead, got["foodpipe_orders_produced_total"], s.Rows, len(s.Poison), s.Orders)
	}
	if code, body := get(t, m[1]+"/healthz"); code != 200 {
		t.Errorf("/healthz %d %q", code, body)
	}
}
