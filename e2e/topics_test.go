package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

type topicResult struct {
	Topic             string            `json:"topic"`
	Status            string            `json:"status"`
	Partitions        int               `json:"partitions"`
	ReplicationFactor int               `json:"replication_factor"`
	Configs           map[string]string `json:"configs"`
	Differences       []struct {
		Key, Want, Got string
	} `json:"differences"`
}

func topicsInit(t *testing.T, topic string, args ...string) (result, []topicResult) {
	t.Helper()
	r := run(t, nil, append([]string{"topics", "init", brokersFlag(t), "--topic", topic, "--output", "json"}, args...)...)
	var res []topicResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("topics init output is not JSON: %v\n%s", err, r)
	}
	return r, res
}

func TestTopicsInit(t *testing.T) {
	t.Parallel()
	topic := testenv.Name(t, "orders")

	r, res := topicsInit(t, topic)
	if r.code != 0 || len(res) != 2 {
		t.Fatalf("first run:\n%s", r)
	}
	for i, want := range []struct{ topic, retention string }{{topic, "604800000"}, {topic + ".dlq", "2592000000"}} {
		got := res[i]
		if got.Topic != want.topic || got.Status != "created" || got.Partitions != 3 || got.ReplicationFactor != 1 ||
			got.Configs["retention.ms"] != want.retention || got.Configs["cleanup.policy"] != "delete" {
			t.Errorf("first run, topic %d: %+v", i, got)
		}
	}

	r, res = topicsInit(t, topic)
	if r.code != 0 {
		t.Fatalf("second run:\n%s", r)
	}
	for _, got := range res {
		if got.Status != "exists, matches" || got.Configs["retention.ms"] == "" {
			t.Errorf("second run: %+v", got)
		}
	}

	text := run(t, nil, "topics", "init", brokersFlag(t), "--topic", topic)
	if text.code != 0 || !strings.Contains(text.stdout, "TOPIC") || !strings.Contains(text.stdout, "exists, matches") {
		t.Errorf("text output:\n%s", text)
	}
}

func TestTopicsInitDrift(t *testing.T) {
	t.Parallel()
	topic := testenv.Name(t, "orders")
	if r, _ := topicsInit(t, topic, "--partitions", "2", "--retention", "24h"); r.code != 0 {
		t.Fatal(r)
	}

	r, res := topicsInit(t, topic)
	if r.code != 1 {
		t.Fatalf("drifted topic: want exit 1:\n%s", r)
	}
	keys := map[string]string{}
	for _, d := range res[0].Differences {
		keys[d.Key] = d.Want + " vs " + d.Got
	}
	if !strings.HasPrefix(keys["partitions"], "3 vs 2") || keys["retention.ms"] != "604800000 vs 86400000" {
		t.Errorf("differences = %v", keys)
	}
	if line := errorLine(t, r); !strings.Contains(line, topic) {
		t.Errorf("error line %q does not name the topic", line)
	}

	r, res = topicsInit(t, topic, "--retention", "24h", "--add-partitions")
	if r.code != 0 || res[0].Partitions != 3 || res[0].Status != "partitions added" {
		t.Errorf("--add-partitions: %+v\n%s", res, r)
	}
}

// TestTopicsInitHalfDone: when the second topic cannot be created, the
// error gives the broker's reason and the output still lists the topic that
// was created, so nobody is left guessing what exists now.
func TestTopicsInitHalfDone(t *testing.T) {
	t.Parallel()
	topic := testenv.Name(t, "orders")
	// Kafka refuses topic.dead beside an existing topic_dead.
	if r, _ := topicsInit(t, topic+"_dead"); r.code != 0 {
		t.Fatal(r)
	}
	r, res := topicsInit(t, topic, "--dlq-topic", topic+".dead")
	if r.code != 1 {
		t.Fatalf("want exit 1:\n%s", r)
	}
	if len(res) != 1 || res[0].Topic != topic || res[0].Status != "created" {
		t.Errorf("output lists %+v, want only %s created", res, topic)
	}
	line := errorLine(t, r)
	for _, want := range []string{"create topic " + topic + ".dead", "collides with existing topic", topic + "_dead"} {
		if !strings.Contains(line, want) {
			t.Errorf("error line %q does not contain %q", line, want)
		}
	}
}
