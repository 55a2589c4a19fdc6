package tick

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestEveryStopWaits holds the first call open while stop is called: stop
// returns only once that call has finished, no call follows it, and a
// second stop is harmless.
func TestEveryStopWaits(t *testing.T) {
	var calls, finished atomic.Int64
	entered, release := make(chan struct{}), make(chan struct{})
	stop := Every(time.Millisecond, func() {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
		finished.Add(1)
	})
	deadline := time.After(10 * time.Second)
	select {
	case <-entered:
	case <-deadline:
		t.Fatal("f was not called within 10s")
	}
	stopped := make(chan int64)
	go func() {
		stop()
		stopped <- finished.Load()
	}()
	close(release)
	var got int64
	select {
	case got = <-stopped:
	case <-deadline:
		t.Fatal("stop did not return within 10s")
	}
	stop()
	if all := calls.Load(); got != all || got < 1 {
		t.Errorf("finished %d calls when stop returned, %d begun; want all begun finished, at least 1", got, all)
	}
}

// TestEveryZero never calls f: a zero interval means no ticker.
func TestEveryZero(t *testing.T) {
	var calls atomic.Int64
	stop := Every(0, func() { calls.Add(1) })
	stop()
	stop()
	if got := calls.Load(); got != 0 {
		t.Errorf("calls = %d, want 0", got)
	}
}
