package cmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/store"
)

// TestLogFiguresReadWell: durations are strings like "1.5s" in JSON and
// text logs alike, and text logs spell maps and slices as the flags do,
// not as Go syntax. JSON keeps its own arrays and objects.
func TestLogFiguresReadWell(t *testing.T) {
	attrs := []any{
		"duration", 1500 * time.Millisecond,
		"offsets", map[int32]int64{2: 40, 0: 3556, 10: 1},
		"partitions", []int32{0, 1, 2},
		"brokers", []string{"k1:9092", "k2:9092"},
		"batches", []store.Offset{{Topic: "t", Partition: 1, Expected: -1, Next: 5}},
		"by_class", map[string][]int{"store": {1, 2}},
		"none", []int32{},
		"value", []byte("raw"),
		"err", errors.New("boom"),
		"count", 7,
	}

	var text bytes.Buffer
	newLogger(&text, config.Log{Level: "info", Format: "text"}).Info("m", attrs...)
	line := strings.TrimSpace(text.String())
	for _, want := range []string{
		"duration=1.5s", "offsets=0:3556,2:40,10:1", "partitions=0,1,2", "brokers=k1:9092,k2:9092",
		"batches=t/1:-1→5", "by_class=store:[1,2]", `none=""`, `value="raw"`, "err=boom", "count=7",
	} {
		if !strings.Contains(line, " "+want) {
			t.Errorf("text log lacks %q:\n%s", want, line)
		}
	}
	if strings.Contains(line, "map[") || strings.Contains(line, "[0 1 2]") {
		t.Errorf("text log prints Go syntax:\n%s", line)
	}

	var js bytes.Buffer
	newLogger(&js, config.Log{Level: "info", Format: "json"}).Info("m", attrs...)
	var got map[string]any
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatalf("json log: %v\n%s", err, js.String())
	}
	if got["duration"] != "1.5s" {
		t.Errorf("json duration %#v, want \"1.5s\"", got["duration"])
	}
	if o, ok := got["offsets"].(map[string]any); !ok || o["0"] != 3556.0 {
		t.Errorf("json offsets %#v, want an object", got["offsets"])
	}
	if p, ok := got["partitions"].([]any); !ok || len(p) != 3 {
		t.Errorf("json partitions %#v, want an array", got["partitions"])
	}
	if b, ok := got["batches"].([]any); !ok || len(b) != 1 {
		t.Errorf("json batches %#v, want an array of objects", got["batches"])
	}

	// Nested in a group, the same rules apply.
	text.Reset()
	newLogger(&text, config.Log{Level: "info", Format: "text"}).WithGroup("g").Info("m", "wait", time.Minute, "ids", []int{3, 4})
	if l := text.String(); !strings.Contains(l, "g.wait=1m0s") || !strings.Contains(l, "g.ids=3,4") {
		t.Errorf("grouped text log: %s", l)
	}
}
