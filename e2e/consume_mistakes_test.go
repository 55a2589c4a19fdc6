package e2e

// Operator mistakes and odd records against a running pipeline: each ends
// with every order stored once, or with exit 1 and one line that names what
// happened — never a silent gap. The proof is in the rows, the offsets and
// the dead letters.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

// produceRaw writes records with a client of the test's own, able to send
// records up to 2 MiB.
func produceRaw(t *testing.T, brokers []string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerBatchMaxBytes(2<<20),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestConsumeOversizedRecord: a record as large as the orders topic accepts
// cannot get its dead-letter headers on a dead-letter topic of the same
// limit. It is dead-lettered whole when the dead-letter topic was made by
// topics init (which gives it room), and as a marker (no value; size and
// digest in headers) when the dead-letter topic is smaller. Either way every
// good order is stored and each dead letter is sent exactly once.
func TestConsumeOversizedRecord(t *testing.T) {
	t.Parallel()
	for _, roomy := range []bool{true, false} {
		t.Run(fmt.Sprintf("dlq made by topics init=%v", roomy), func(t *testing.T) {
			t.Parallel()
			p := newPipeline(t)
			if !roomy {
				// A dead-letter topic with Kafka's default limit.
				if _, err := testenv.Admin(t).DeleteTopic(t.Context(), p.topic+".dlq"); err != nil {
					t.Fatal(err)
				}
				testenv.WaitTopicGone(t, p.topic+".dlq")
				testenv.CreateTopic(t, p.topic+".dlq", 3)
			}
			huge := bytes.Repeat([]byte("x"), 1_048_300) // not JSON
			var recs []*kgo.Record
			for i := range 30 {
				recs = append(recs, &kgo.Record{Topic: p.topic, Key: []byte(fmt.Sprintf("CUST-%05d", i)), Value: validOrder(t, fmt.Sprintf("ORD-20261129-BIG-%d", i))})
			}
			// The oversized record goes alone: it fills a whole batch.
			produceRaw(t, p.brokers, recs...)
			produceRaw(t, p.brokers, &kgo.Record{Topic: p.topic, Key: []byte("CUST-00001"), Value: huge})
			produceRaw(t, p.brokers,
				&kgo.Record{Topic: p.topic, Key: []byte("CUST-00001"), Value: []byte(`{"order_id": 7}`)},
				&kgo.Record{Topic: p.topic, Key: []byte("CUST-00001"), Value: validOrder(t, "ORD-20261129-BIG-after")},
			)

			c := p.startConsumer()
			conn := p.db()
			p.waitCaughtUp(conn, 2*time.Minute, c)
			s := c.stop(t)
			if got := p.count(conn); got != 31 || s.Stored != 31 {
				t.Errorf("%d rows stored (summary %d), want the 31 valid orders", got, s.Stored)
			}
			dead := testenv.Records(t, p.topic+".dlq")
			if len(dead) != 2 {
				t.Fatalf("dead-letter topic holds %d records, want exactly 2 (each sent once)", len(dead))
			}
			var big testenv.Record
			for _, d := range dead {
				if d.Headers["foodpipe-error-class"] != "decode" {
					t.Errorf("dead letter class %q, want decode", d.Headers["foodpipe-error-class"])
				}
				if d.Headers["foodpipe-error"] != "" && d.Headers["foodpipe-source-offset"] != "" && len(d.Value) != len(`{"order_id": 7}`) {
					big = d
				}
			}
			if string(big.Key) != "CUST-00001" || big.Headers["foodpipe-source-topic"] != p.topic {
				t.Fatalf("no dead letter for the oversized record: %+v", dead)
			}
			sum := sha256.Sum256(huge)
			if roomy {
				if !bytes.Equal(big.Value, huge) || big.Headers["foodpipe-truncated"] != "" {
					t.Errorf("oversized record: got %d bytes (truncated=%q), want the original 1048300 bytes",
						len(big.Value), big.Headers["foodpipe-truncated"])
				}
			} else {
				h := big.Headers
				if len(big.Value) != 0 || h["foodpipe-truncated"] != "true" || h["foodpipe-original-size"] != "1048300" ||
					h["foodpipe-original-sha256"] != hex.EncodeToString(sum[:]) {
					t.Errorf("marker: value %d bytes, headers %v", len(big.Value), h)
				}
			}
		})
	}
}

// TestConsumeRefusesReadOnlyDatabase: --database-url points at a server
// that accepts no writes (a replica or read-only endpoint; here a role
// with default_transaction_read_only on). consume says so in one line and
// exits 1 after --db-timeout, instead of retrying every batch for ever; it
// stores nothing. Pointed at the primary, it stores the backlog.
func TestConsumeRefusesReadOnlyDatabase(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	p.produce(300)
	conn := p.db()
	role := strings.ReplaceAll(testenv.Name(t, "ro"), "-", "_")
	for _, sql := range []string{
		"CREATE ROLE " + role + " LOGIN SUPERUSER PASSWORD 'ro-secret'",
		"ALTER ROLE " + role + " SET default_transaction_read_only = on",
	} {
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })
	readOnly := strings.Replace(p.dsn, "://postgres@", "://"+role+":ro-secret@", 1)
	if readOnly == p.dsn {
		t.Fatalf("cannot put the role into %s", p.dsn)
	}
	args := []string{"consume", p.brokersFlag(), "--topic", p.topic, "--group", p.group, "--stop-at-end", "--db-timeout", "2s"}
	r := run(t, nil, append(args, "--database-url", readOnly)...)
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "read-only") || !strings.Contains(line, "primary") ||
		strings.Contains(line, "ro-secret") {
		t.Errorf("consume on a read-only database: want exit 1 saying so, without the password\n%s", r)
	}
	// A stop asked while it waits for the database to become writable is
	// a stop: exit 0.
	c := p.startConsumer("--database-url", readOnly, "--db-timeout", "1m")
	c.waitFor(t, `"msg":"postgres not writable yet"`, time.Minute)
	c.signal(t, syscall.SIGTERM)
	if code := c.waitExit(t, time.Minute); code != 0 {
		t.Errorf("SIGTERM while waiting for a writable database: exit %d, want 0\n%s", code, c.stderr.String())
	}
	if got := p.count(conn); got != 0 {
		t.Errorf("%d rows stored through a read-only connection", got)
	}
	if r := run(t, nil, append(args, "--database-url", p.dsn)...); r.code != 0 {
		t.Fatalf("consume on the primary:\n%s", r)
	}
	p.checkOrders(conn, 300)
}

// TestConsumeUnfixableErrorsStop: with the offsets table dropped, storing
// can never succeed: the consumer refuses to start, or stops once it meets
// it, with exit 1 and one line naming the cause, instead of retrying for
// ever.
func TestConsumeUnfixableErrorsStop(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	conn, c := p.consumeBacklog(10)
	if _, err := conn.Exec(context.Background(), "DROP TABLE consumer_offsets"); err != nil {
		t.Fatal(err)
	}
	p.produce(10) // the next batch meets the missing table
	if code := c.waitExit(t, time.Minute); code != 1 {
		t.Fatalf("dropped while running: exit %d, want 1\n%s", code, c.stderr.String())
	}
	if line := c.errorLine(t); !strings.Contains(line, "consumer_offsets") || !strings.Contains(line, "42P01") {
		t.Errorf("dropped while running: error line %q does not name the table and SQLSTATE 42P01", line)
	}
	c = p.startConsumer()
	if code := c.waitExit(t, time.Minute); code != 1 {
		t.Fatalf("dropped before the start: exit %d, want 1\n%s", code, c.stderr.String())
	}
	if line := c.errorLine(t); !strings.Contains(line, "table consumer_offsets does not exist") {
		t.Errorf("dropped before the start: error line %q does not say the table is missing", line)
	}
	if n := p.count(conn); n != 10 {
		t.Errorf("%d rows, want the 10 stored before the table was dropped", n)
	}
}
