package e2e

// What the operator adds to the orders table: triggers and indexes of
// their own. Each refuses or drops some orders; none may halt the pipeline
// or make an order vanish from the counts.

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/order"
)

// TestConsumeWithTheOperatorsTriggersAndIndexes: on orders, a trigger
// drops the orders of one customer (RETURN NULL), another refuses a second
// customer's (RAISE EXCEPTION), and a partial unique index allows a third
// customer one order. The consumer keeps going: the refused orders are
// dead-lettered (class store) with the reason, the dropped ones counted in
// the summary and a warning, everything else stored once — counted against
// an independent decoding of the topic.
func TestConsumeWithTheOperatorsTriggersAndIndexes(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	conn := p.db()
	if _, err := conn.Exec(context.Background(), `
CREATE FUNCTION operators_rules() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.customer_id = 'CUST-00001' THEN RETURN NULL; END IF;
	IF NEW.customer_id = 'CUST-00002' THEN RAISE EXCEPTION 'customer % is blocked', NEW.customer_id; END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER operators_rules BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION operators_rules();
CREATE UNIQUE INDEX one_order_for_cust_3 ON orders (customer_id) WHERE customer_id = 'CUST-00003';`); err != nil {
		t.Fatal(err)
	}
	p.produce(2000, "--customers", "20")
	perCustomer, droppedIDs, total := ordersByCustomer(t, p)
	dropped, blocked, second := perCustomer["CUST-00001"], perCustomer["CUST-00002"], perCustomer["CUST-00003"]-1
	if dropped == 0 || blocked == 0 || second < 1 {
		t.Fatalf("orders by customer %v: want several of each of the first three", perCustomer)
	}

	c := p.startConsumer("--metrics-addr", "127.0.0.1:0")
	base := c.metricsURL(t)
	p.waitCaughtUp(conn, 2*time.Minute, c)
	m := scrape(t, base)
	s := c.stop(t)
	if m["foodpipe_rows_dropped_by_database_total"] != float64(dropped) || m["foodpipe_rows_stored_total"] != float64(s.Stored) ||
		m["foodpipe_end_to_end_latency_seconds"] != float64(s.Stored) {
		t.Errorf("metrics: %v dropped, %v stored, %v latencies; want %d dropped, %d stored and as many latencies",
			m["foodpipe_rows_dropped_by_database_total"], m["foodpipe_rows_stored_total"],
			m["foodpipe_end_to_end_latency_seconds"], dropped, s.Stored)
	}
	if want := total - dropped - blocked - second; s.Stored != want || s.Dropped != dropped ||
		s.DeadLettered["store"] != blocked+second || s.Duplicates != 0 {
		t.Errorf("summary: stored %d, dropped %d, dead-lettered %v, duplicates %d; want %d stored, %d dropped, %d store",
			s.Stored, s.Dropped, s.DeadLettered, s.Duplicates, want, dropped, blocked+second)
	}
	if rows, ids := p.count(conn), p.distinctIDs(conn); rows != s.Stored || ids != rows {
		t.Errorf("%d rows (%d ids), the summary says %d stored", rows, ids, s.Stored)
	}
	checkDeadLettersByCause(t, p, blocked, second)
	checkDroppedWarnings(t, c.stderr.String(), droppedIDs, dropped)
	p.checkStoredAtEnd(conn)
}

// ordersByCustomer decodes the orders topic on its own: the orders of each
// customer, the ids of those the trigger drops (CUST-00001's), and the
// total.
func ordersByCustomer(t *testing.T, p *pipeline) (perCustomer map[string]int64, droppedIDs map[string]bool, total int64) {
	t.Helper()
	perCustomer = map[string]int64{}
	droppedIDs = map[string]bool{}
	for _, r := range testenv.Records(t, p.topic) {
		var o order.Order
		if err := order.DecodeAndValidate(r.Value, &o); err != nil {
			t.Fatal(err)
		}
		perCustomer[o.CustomerID]++
		total++
		if o.CustomerID == "CUST-00001" {
			droppedIDs[o.OrderID] = true
		}
	}
	return perCustomer, droppedIDs, total
}

// checkDeadLettersByCause: every dead letter is of class store, refused by
// the trigger (blocked of them) or by the index (second of them), with
// PostgreSQL's reason.
func checkDeadLettersByCause(t *testing.T, p *pipeline, blocked, second int64) {
	t.Helper()
	reasons := map[string]int64{}
	for _, d := range testenv.Records(t, p.topic+".dlq") {
		switch r := d.Headers["foodpipe-error"]; {
		case d.Headers["foodpipe-error-class"] != "store":
			t.Errorf("dead letter of class %q: %s", d.Headers["foodpipe-error-class"], r)
		case strings.Contains(r, "customer CUST-00002 is blocked") && strings.Contains(r, "P0001"):
			reasons["trigger"]++
		case strings.Contains(r, "one_order_for_cust_3") && strings.Contains(r, "23505"):
			reasons["index"]++
		default:
			t.Errorf("dead letter with reason %q", r)
		}
	}
	if reasons["trigger"] != blocked || reasons["index"] != second {
		t.Errorf("dead letters by cause %v, want %d by the trigger, %d by the index", reasons, blocked, second)
	}
}

// checkDroppedWarnings: the warnings in the consumer's log count the
// dropped orders, and each names them (up to ten a batch).
func checkDroppedWarnings(t *testing.T, stderr string, droppedIDs map[string]bool, dropped int64) {
	t.Helper()
	warned := 0
	for _, l := range strings.Split(stderr, "\n") {
		var line struct {
			Msg      string   `json:"msg"`
			Dropped  int      `json:"dropped"`
			OrderIDs []string `json:"order_ids"`
		}
		if json.Unmarshal([]byte(l), &line) != nil || !strings.HasPrefix(line.Msg, "orders dropped by the database") {
			continue
		}
		warned += line.Dropped
		if len(line.OrderIDs) != min(line.Dropped, 10) {
			t.Errorf("warning %s: want the dropped orders' ids", l)
		}
		for _, id := range line.OrderIDs {
			if !droppedIDs[id] {
				t.Errorf("warning names order %s, which the trigger does not drop", id)
			}
		}
	}
	if warned != int(dropped) {
		t.Errorf("warnings count %d dropped orders, want %d", warned, dropped)
	}
}

// TestConsumeRefusesAColumnOfAnotherType: items changed to text used to
// store every order with jsonb's version byte in front, silently. The
// consumer refuses the table at start, in one line, and stores nothing.
func TestConsumeRefusesAColumnOfAnotherType(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	conn := p.db()
	if _, err := conn.Exec(context.Background(), "DROP INDEX orders_items_path_idx; ALTER TABLE orders ALTER COLUMN items TYPE text"); err != nil {
		t.Fatal(err)
	}
	p.produce(50)
	r := run(t, p.env, "consume", p.brokersFlag(), "--topic", p.topic, "--group", p.group, "--database-url", p.dsn, "--stop-at-end")
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "column items of orders is text") {
		t.Errorf("want exit 1 naming the column:\n%s", r)
	}
	if rows := p.count(conn); rows != 0 {
		t.Errorf("%d rows stored", rows)
	}
}
