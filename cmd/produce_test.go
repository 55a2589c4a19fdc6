package cmd

import (
	"strings"
	"testing"
)

// TestProduceSummarySaysWhatProducedMeans: "produced" counts acknowledged
// orders, except with acks=none, where the broker confirms nothing and the
// summary must not claim it did.
func TestProduceSummarySaysWhatProducedMeans(t *testing.T) {
	for acks, want := range map[string]string{
		"all":    "produced    7 orders (acknowledged by the broker)",
		"leader": "produced    7 orders (acknowledged by the partition leader: acks=leader)",
		"none":   "produced    7 orders (sent, none confirmed: acks=none asks the broker for no acknowledgement)",
	} {
		var b strings.Builder
		if err := printProduce(&b, produceResult{Topic: "t", Produced: 7, Acks: acks}); err != nil {
			t.Fatal(err)
		}
		if line := strings.Split(b.String(), "\n")[1]; line != want {
			t.Errorf("acks=%s: %q, want %q", acks, line, want)
		}
	}
}
