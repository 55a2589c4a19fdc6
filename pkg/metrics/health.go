package metrics

import (
	"fmt"
	"maps"
	"slices"
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
//
// A process may run several members (the demo runs a producer and three
// consumers): it is ready when every member is, and live while none is
// stuck.
type Health struct {
	// StuckAfter is how long one call may run before the loop counts as
	// stuck.
	StuckAfter time.Duration
	now        func() time.Time

	mu      sync.Mutex
	members map[string]*memberHealth
}

type memberHealth struct {
	ready     bool
	reason    string
	busySince time.Time
}

func newHealth() *Health {
	return &Health{StuckAfter: 2 * time.Minute, now: time.Now, members: map[string]*memberHealth{}}
}

func (h *Health) member(name string) *memberHealth {
	mh := h.members[name]
	if mh == nil {
		mh = &memberHealth{reason: "starting"}
		h.members[name] = mh
	}
	return mh
}

// SetReady records a member's readiness and why not.
func (h *Health) SetReady(member string, ready bool, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	mh := h.member(member)
	mh.ready, mh.reason = ready, reason
}

// SetBusySince records when the member's call in progress began (zero:
// none).
func (h *Health) SetBusySince(member string, t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.member(member).busySince = t
}

// Live reports whether no member's loop is stuck, and why one is.
func (h *Health) Live() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(h.members)) {
		mh := h.members[name]
		if mh.busySince.IsZero() {
			continue
		}
		if d := h.now().Sub(mh.busySince); d > h.StuckAfter {
			return false, h.who(name) + fmt.Sprintf("a database write has been running for %s", d.Round(time.Second))
		}
	}
	return true, "ok"
}

// Ready reports whether every member does its job now, and why one does
// not.
func (h *Health) Ready() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.members) == 0 {
		return false, "starting"
	}
	for _, name := range slices.Sorted(maps.Keys(h.members)) {
		if mh := h.members[name]; !mh.ready {
			return false, h.who(name) + mh.reason
		}
	}
	return true, "ok"
}

// who prefixes a reason with the member's name when there are several.
func (h *Health) who(name string) string {
	if len(h.members) < 2 || name == "" {
		return ""
	}
	return name + ": "
}
