package cmd

// The demo's live view: redrawn in place on a terminal, or a progress line
// in the log otherwise.

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/foodpipe/foodpipe/pkg/pipeline"
)

// viewLines renders the live view: where the run is, and each consumer's
// partitions and progress.
func viewLines(v pipeline.DemoView, rate float64) []string {
	t := totalsOf(v)
	of := v.Duration.String()
	if v.Duration <= 0 {
		of = "until Ctrl-C"
	}
	head := fmt.Sprintf("foodpipe demo  %-9s %5s / %s at %g orders/s", v.Phase, v.Elapsed.Truncate(time.Second), of, rate)
	lines := []string{head,
		fmt.Sprintf("  produced %d (%d orders + %d poison)   stored %d   dead-lettered %d   lag %d",
			t.produced, v.Produced, v.Poisoned, t.stored, t.dead, t.lag)}
	for _, c := range v.Consumers {
		lines = append(lines, fmt.Sprintf("  %-11s partitions %-9s stored %-7d dead-lettered %-3d lag %d",
			c.Name, fmtPartitions(c.Partitions), c.Stored, sum(c.DeadLettered), c.Lag))
	}
	return lines
}

func fmtPartitions(ps []int32) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprint(p)
	}
	return "[" + strings.Join(s, ",") + "]"
}

// viewTotals are the view's figures for the whole demo.
type viewTotals struct {
	// produced counts what the summary's produced does: the orders and the
	// poison records the broker acknowledged.
	produced, stored, dead, lag int64
}

func totalsOf(v pipeline.DemoView) viewTotals {
	t := viewTotals{produced: v.Produced + int64(v.Poisoned)}
	for _, c := range v.Consumers {
		t.stored += c.Stored
		t.dead += sum(c.DeadLettered)
		t.lag += c.Lag
	}
	return t
}

// logView is the view as one progress line, for a log that is not a
// terminal: the live view's figures, produced split as orders + poison.
func logView(log *slog.Logger, v pipeline.DemoView) {
	t := totalsOf(v)
	parts := make([]string, 0, len(v.Consumers))
	for _, c := range v.Consumers {
		parts = append(parts, fmt.Sprintf("%s=%s:%d", c.Name, fmtPartitions(c.Partitions), c.Stored))
	}
	log.Info("progress", "phase", v.Phase, "elapsed", v.Elapsed.Truncate(time.Second).String(),
		"produced", t.produced, "orders", v.Produced, "poison", v.Poisoned,
		"stored", t.stored, "dead_lettered", t.dead, "lag", t.lag, "consumers", strings.Join(parts, " "))
}

// liveView redraws a few lines in place at the bottom of a terminal, with
// log lines scrolling above them.
type liveView struct {
	mu    sync.Mutex
	w     io.Writer
	lines []string
	drawn int // lines on screen now
}

// erase moves the cursor to the first line of the view and clears to the
// end of the screen; mu is held.
func (l *liveView) erase() {
	if l.drawn > 0 {
		fmt.Fprintf(l.w, "\x1b[%dA\r\x1b[J", l.drawn)
		l.drawn = 0
	}
}

func (l *liveView) draw() {
	for _, s := range l.lines {
		fmt.Fprintf(l.w, "%s\n", s)
	}
	l.drawn = len(l.lines)
}

func (l *liveView) show(lines []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.erase()
	l.lines = lines
	l.draw()
}

// Write prints a log line above the view.
func (l *liveView) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.erase()
	n, err := l.w.Write(p)
	l.draw()
	return n, err
}

// stop leaves the last view on screen.
func (l *liveView) stop() {
	l.mu.Lock()
	l.drawn = 0
	l.mu.Unlock()
}
