package e2e

// Promises of the README that no other test keeps.

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

// TestSecondSignalExitsAtOnce: the first SIGINT asks for a graceful stop;
// a second one ends the process there and then, without the summary. The
// consumer is held inside a transaction so that its graceful stop cannot
// be over before the second signal.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	p.produce(100)
	c := p.startConsumerEnv([]string{"FOODPIPE_TEST_PAUSE=in-transaction=1m"})
	c.waitFor(t, `"point":"in-transaction"`, time.Minute)
	c.signal(t, syscall.SIGINT)
	c.waitFor(t, `"msg":"stopping: `, time.Minute) // the first signal was taken
	c.signal(t, syscall.SIGINT)
	var err error
	select {
	case err = <-c.done:
		c.done <- err
	case <-time.After(stopDeadline):
		t.Fatalf("still running %v after the second SIGINT:\n%s", stopDeadline, ownLines(c.stderr.String()))
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("exit: %v, want the process ended by the second signal", err)
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("exit status %v, want killed by SIGINT", ee)
	}
	if c.stdout.Len() != 0 {
		t.Errorf("a summary was printed after the second signal:\n%s", c.stdout.String())
	}
	if got := p.count(p.db()); got != 0 {
		t.Errorf("%d rows: the transaction held open must not have committed", got)
	}
}

// TestKafkaCommittedOffsetsFollowPostgreSQL: after each transaction the
// stored offsets are copied to Kafka's committed offsets, so that standard
// lag tools see the truth.
func TestKafkaCommittedOffsetsFollowPostgreSQL(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	conn, c := p.consumeBacklog(3000)
	stored := p.storedOffsets(conn)
	adm := testenv.AdminAt(t, p.brokers)
	deadline := time.Now().Add(time.Minute) // the copy is asynchronous
	for {
		resp, err := adm.FetchOffsets(context.Background(), p.group)
		if err != nil {
			t.Fatal(err)
		}
		committed := map[int32]int64{}
		resp.Each(func(o kadm.OffsetResponse) { committed[o.Partition] = o.At })
		same := len(committed) == len(stored)
		for part, off := range stored {
			same = same && committed[part] == off
		}
		if same {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Kafka's committed offsets %v, PostgreSQL's %v", committed, stored)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.stop(t)
}

// TestDeadLetterTopicOverride: with --dlq-topic, dead letters go to that
// topic and nowhere else.
func TestDeadLetterTopicOverride(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	custom := testenv.Name(t, "dead")
	if r := run(t, nil, "topics", "init", p.brokersFlag(), "--topic", p.topic, "--dlq-topic", custom); r.code != 0 {
		t.Fatal(r)
	}
	produceRaw(t, p.brokers,
		&kgo.Record{Topic: p.topic, Key: []byte("CUST-00001"), Value: []byte("not json")},
		&kgo.Record{Topic: p.topic, Key: []byte("CUST-00001"), Value: validOrder(t, "ORD-20261129-OVERRIDE-1")})
	c := p.startConsumer("--dlq-topic", custom)
	p.waitCaughtUp(p.db(), time.Minute, c)
	c.stop(t)
	if got := testenv.Records(t, custom); len(got) != 1 || string(got[0].Value) != "not json" {
		t.Errorf("%s holds %d records, want the one bad record", custom, len(got))
	}
	if got := testenv.Records(t, p.topic+".dlq"); len(got) != 0 {
		t.Errorf("the default dead-letter topic got %d records", len(got))
	}
}

// TestProduceExitsOneOnUndelivered: orders the broker never acknowledges
// (here: the topic is deleted under the producer, and --delivery-timeout
// runs out) are counted failed, and produce exits 1.
func TestProduceExitsOneOnUndelivered(t *testing.T) {
	t.Parallel()
	topic := testenv.Name(t, "orders")
	testenv.CreateTopic(t, topic, 3)
	c := command(t, t.Context(), nil, "produce", brokersFlag(t), "--topic", topic, "--rate", "200", "--duration", "15s",
		"--delivery-timeout", "3s", "--output", "json")
	var stdout strings.Builder
	c.Stdout = &stdout
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitRecords(t, topic, 100)
	if _, err := testenv.Admin(t).DeleteTopic(context.Background(), topic); err != nil {
		t.Fatal(err)
	}
	err := waitProcess(t, c, time.Minute) // 15 s of orders
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want 1", err)
	}
	var s produceSummary
	if err := json.Unmarshal([]byte(stdout.String()), &s); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	if s.Failed == 0 || s.Produced < 100 {
		t.Errorf("summary %+v: want the acknowledged orders produced and the rest failed", s)
	}
}

// TestConfigFlagBeatsEnvironment: --config names the file even when
// FOODPIPE_CONFIG names another; FOODPIPE_CONFIG is used without the flag.
func TestConfigFlagBeatsEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, topic string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("topic: "+topic+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	fromFlag, fromEnv := write("flag.yaml", "from-flag"), write("env.yaml", "from-env")
	for _, tt := range []struct {
		env  []string
		args []string
		want string
	}{
		{[]string{"FOODPIPE_CONFIG=" + fromEnv}, []string{"--config", fromFlag}, "from-flag"},
		{[]string{"FOODPIPE_CONFIG=" + fromEnv}, nil, "from-env"},
		{[]string{"FOODPIPE_CONFIG=" + fromEnv, "FOODPIPE_TOPIC=from-var"}, []string{"--config", fromFlag}, "from-var"},
	} {
		r := run(t, tt.env, append([]string{"config", "show", "--output", "json"}, tt.args...)...)
		var m map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || r.code != 0 {
			t.Fatalf("%v\n%s", err, r)
		}
		if m["topic"] != tt.want {
			t.Errorf("env %v, args %v: topic %v, want %s", tt.env, tt.args, m["topic"], tt.want)
		}
	}
}
