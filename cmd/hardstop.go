package cmd

import (
	"maps"
	"slices"
	"sync"
)

// HardStops are what must still happen when the process ends at once, on a
// second signal: quick steps (a second or two at most) for what would
// otherwise outlive it, such as the demo's embedded PostgreSQL, which runs
// detached. main runs them before it exits.
type HardStops struct {
	mu   sync.Mutex
	next int
	fns  map[int]func()
}

// Add registers f until the returned remove is called.
func (h *HardStops) Add(f func()) (remove func()) {
	if h == nil {
		return func() {}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fns == nil {
		h.fns = map[int]func(){}
	}
	id := h.next
	h.next++
	h.fns[id] = f
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.fns, id)
	}
}

// Run runs every step registered, most recent first.
func (h *HardStops) Run() {
	if h == nil {
		return
	}
	h.mu.Lock()
	ids := slices.Collect(maps.Keys(h.fns))
	fns := h.fns
	h.fns = nil
	h.mu.Unlock()
	slices.Sort(ids)
	for _, id := range slices.Backward(ids) {
		fns[id]()
	}
}
