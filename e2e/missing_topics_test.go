package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

// TestConsumeWaitForTopic: without --wait-for-topic a consumer of topics
// that do not exist exits 1 in one line naming both; with it, the consumer
// waits (saying so once), and stores what is produced once topics init has
// made them.
func TestConsumeWaitForTopic(t *testing.T) {
	t.Parallel()
	p := &pipeline{t: t, brokers: testenv.Brokers(t), topic: testenv.Name(t, "orders"), group: testenv.Name(t, "group")}
	p.dsn, p.schema = testenv.Schema(t)
	if r := run(t, nil, "db", "migrate", "--database-url", p.dsn); r.code != 0 {
		t.Fatal(r)
	}

	r := run(t, nil, "consume", p.brokersFlag(), "--topic", p.topic, "--group", p.group, "--database-url", p.dsn)
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, p.topic+", "+p.topic+".dlq: run foodpipe topics init") {
		t.Errorf("missing topics: want exit 1 naming both\n%s", r)
	}

	c := p.startConsumer("--wait-for-topic")
	c.waitFor(t, "waiting for topics to exist", time.Minute)
	time.Sleep(2 * time.Second) // a few polls: it must keep waiting quietly
	p.init()
	p.produce(500)
	conn := p.db()
	p.waitCaughtUp(conn, 2*time.Minute, c)
	s := c.stop(t)
	if s.Stored != 500 || p.count(conn) != 500 {
		t.Errorf("stored %d (summary %d), want 500", p.count(conn), s.Stored)
	}
	if n := strings.Count(c.stderr.String(), "waiting for topics to exist"); n != 1 {
		t.Errorf("the wait was logged %d times, want once", n)
	}
}

// TestProduceRefusesMissingTopic: a producer whose topic does not exist
// says so at start in one line, with the fix, instead of one error per
// order after the client's retries.
func TestProduceRefusesMissingTopic(t *testing.T) {
	t.Parallel()
	topic := testenv.Name(t, "orders")
	r := run(t, nil, "produce", brokersFlag(t), "--topic", topic, "--count", "5", "--rate", "0")
	if line := errorLine(t, r); r.code != 1 || line != "foodpipe: topic does not exist: "+topic+": run foodpipe topics init" {
		t.Errorf("want exit 1 and one line naming the topic and topics init\n%s", r)
	}
	if strings.Contains(r.stderr, "not delivered") || r.stdout != "" {
		t.Errorf("orders were attempted:\n%s", r)
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
