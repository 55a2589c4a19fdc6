package kafka

import (
	"sync"
	"time"
)

// every calls report every interval, in its own goroutine, until the
// returned stop is called; stop waits for it and reports once more, so the
// last report holds the final figures. A zero interval reports only at stop.
func every(interval time.Duration, report func()) (stop func()) {
	if interval <= 0 {
		return report
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				report()
			case <-done:
				return
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		report()
	}
}
