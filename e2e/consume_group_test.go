package e2e

// The consumer group misused: shared with another application, one
// instance id given twice, a session timeout the broker refuses. Each ends
// with every order stored once, or with an exit code and one line naming
// the group.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

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
