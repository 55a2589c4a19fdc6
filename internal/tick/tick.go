// Package tick runs a function on a ticker while other work goes on: the
// progress reports and the lag loop of pipeline and the measurement
// windows of bench, which may not import each other.
package tick

import (
	"sync"
	"time"
)

// Every calls f every interval, in its own goroutine, until the returned
// stop is called. Stop waits for a call under way, so none runs after it
// returns; calling stop again does nothing. A zero or negative interval
// never calls f.
func Every(interval time.Duration, f func()) (stop func()) {
	if interval <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				f()
			case <-done:
				return
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
}
