package cmd

import (
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// bar is a live progress bar on a terminal and nothing at all otherwise,
// so piped or logged output carries no control characters. A nil *bar is
// valid and does nothing.
type bar struct {
	pb *progressbar.ProgressBar
}

// newBar returns a progress bar to total on w when w is a terminal, else nil.
func newBar(w io.Writer, total int64, unit string) *bar {
	if !isTerminal(w) || total <= 0 {
		return nil
	}
	return &bar{pb: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(unit),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)}
}

func (b *bar) set(n int64) {
	if b != nil {
		_ = b.pb.Set64(n)
	}
}

// clear removes the bar so that a line can be printed; it comes back on
// the next set.
func (b *bar) clear() {
	if b != nil {
		_ = b.pb.Clear()
	}
}

func (b *bar) finish() {
	if b != nil {
		_ = b.pb.Finish()
	}
}
