package metrics

import (
	"fmt"
	"sync"
	"time"
)

// Health is what /healthz and /readyz answer.
//
// Live (/healthz): the process answers, and no call into a service has
// been running for longer than StuckAfter — a database write that never
// returns is a stuck loop, which only a restart fixes.
//
// Ready (/readyz): the role does its job now — for consume, it has joined
// its group and PostgreSQL answers (no outage backoff); for produce, the
// broker accepts records. Not ready is not a reason to restart: it says
// "do not count on me right now".
type Health struct {
	// StuckAfter is how long one call may run before the loop counts as
	// stuck.
	StuckAfter time.Duration
	now        func() time.Time

	mu        sync.Mutex
	ready     bool
	reason    string
	busySince time.Time
}

func newHealth() *Health {
	return &Health{StuckAfter: 2 * time.Minute, now: time.Now, reason: "starting"}
}

// SetReady records readiness and why not.
func (h *Health) SetReady(ready bool, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ready, h.reason = ready, reason
}

// SetBusySince records when the call in progress began (zero: none).
func (h *Health) SetBusySince(t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.busySince = t
}

// Live reports whether the loop is not stuck, and why it is.
func (h *Health) Live() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.busySince.IsZero() {
		if d := h.now().Sub(h.busySince); d > h.StuckAfter {
			return false, fmt.Sprintf("a database write has been running for %s", d.Round(time.Second))
		}
	}
	return true, "ok"
}

// Ready reports whether the role does its job now, and why not.
func (h *Health) Ready() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.ready {
		return false, h.reason
	}
	return true, "ok"
}
