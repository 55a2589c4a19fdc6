package cmd

import (
	"strings"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/pkg/pipeline"
)

// TestConsumeSummaryFigures: the rate is over the busy part of the run
// (first records to last commit), not over the time spent waiting, and a
// batch of dead letters only still counts its records in the average.
func TestConsumeSummaryFigures(t *testing.T) {
	busy := newConsumeResult("orders", "g", pipeline.Stats{Stored: 10_000, Batches: 4,
		Elapsed: 60 * time.Second, FirstRecords: 10 * time.Second, LastCommit: 12 * time.Second})
	if busy.ActiveSeconds != 2 || busy.RowsPerSecond != 5000 || busy.DurationSeconds != 60 {
		t.Errorf("active %v s, %v rows/s, duration %v s; want 2, 5000, 60", busy.ActiveSeconds, busy.RowsPerSecond, busy.DurationSeconds)
	}
	deadOnly := newConsumeResult("orders", "g", pipeline.Stats{DeadLettered: map[string]int64{"decode": 3}, Batches: 1,
		Elapsed: time.Second, FirstRecords: 100 * time.Millisecond, LastCommit: 200 * time.Millisecond})
	for name, tc := range map[string]struct {
		r    consumeResult
		want []string
	}{
		"busy":      {busy, []string{"batches 4 transactions (2500.0 records each on average)", "rate 5000.0 rows/s (over 2s, from the first records to the last commit)"}},
		"dead only": {deadOnly, []string{"batches 1 transactions (3.0 records each on average)", "dead-lettered 3 decode: 3"}},
	} {
		var b strings.Builder
		if err := printConsume(&b, tc.r); err != nil {
			t.Fatal(err)
		}
		got := strings.Join(strings.Fields(b.String()), " ") // the table's padding aside
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: no line %q in\n%s", name, w, b.String())
			}
		}
	}
}
