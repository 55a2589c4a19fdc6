package cmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
)

func TestEscape(t *testing.T) {
	tests := []struct {
		in    string
		limit int
		want  string
	}{
		{`{"order_id":"ORD-1"}`, 0, `{"order_id":"ORD-1"}`},
		{"a\nb\tc\r\\", 0, `a\nb\tc\r\\`},
		{"\x00\x1b[31m\x7f", 0, `\x00\x1b[31m\x7f`},
		{"\xff\xfe{", 0, `\xff\xfe{`},
		{"Zoë ☕ \u0085 \u2028", 0, `Zoë ☕ \u0085 \u2028`},
		{"0123456789", 4, "0123…"},
		{"0123", 4, "0123"},
		{"ééééé", 2, "éé…"},
		{"", 60, ""},
	}
	for _, tt := range tests {
		if got := escape([]byte(tt.in), tt.limit); got != tt.want {
			t.Errorf("escape(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
		}
	}
}

// TestDLQTopicHint: a dead-letter command given the dead-letter topic as
// --topic reads <topic>.dlq.dlq, which does not exist; its one line says
// which flags to use instead. Other missing topics, other errors and an
// explicit --dlq-topic get no hint.
func TestDLQTopicHint(t *testing.T) {
	missing := fmt.Errorf("%w: food-orders.dlq.dlq: run foodpipe topics init", kafka.ErrTopicMissing)
	hint := topicHint(config.Kafka{Topic: "food-orders.dlq"})
	got := withHint(missing, hint).Error()
	if !strings.Contains(got, "use --topic food-orders, or --dlq-topic food-orders.dlq") || !strings.HasPrefix(got, missing.Error()) {
		t.Errorf("hint: %q", got)
	}
	if !errors.Is(withHint(missing, hint), kafka.ErrTopicMissing) {
		t.Error("the hint lost the error chain")
	}
	for _, k := range []config.Kafka{{Topic: "food-orders"}, {Topic: "food-orders.dlq", DLQTopic: "x"}} {
		if h := topicHint(k); h != "" {
			t.Errorf("%+v: hint %q, want none", k, h)
		}
	}
	if other := errors.New("connection refused"); withHint(other, hint) != other {
		t.Error("a hint added to an error that is not a missing topic")
	}
}

// TestDeadLetterRowKey: a record with no key (null) and one with an empty key
// are different records, and replay sends each back as it was; the JSON line
// shows which: null or "".
func TestDeadLetterRowKey(t *testing.T) {
	for _, tt := range []struct {
		key  []byte
		want string
	}{{nil, `"key":null`}, {[]byte{}, `"key":""`}, {[]byte("CUST-1\n"), `"key":"CUST-1\\n"`}} {
		b, err := json.Marshal(deadLetterRowOf(kafka.Letter{Key: tt.key}))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tt.want) {
			t.Errorf("key %q: %s, want %s", tt.key, b, tt.want)
		}
	}
}
