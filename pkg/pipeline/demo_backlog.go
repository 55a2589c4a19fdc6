package pipeline

import (
	"context"
	"sync"
	"sync/atomic"
)

// backlog bounds how many of the demo's orders the in-process broker holds
// that PostgreSQL does not. That broker keeps every record in memory until
// the demo trims what was stored, so a producer faster than the consumers
// (--rate 0) grew it without end: 2.2 million records and 830 MB of RSS in
// a 15 s run. The producer (one goroutine) waits while max orders are
// unstored; the trim tick says how far PostgreSQL got.
type backlog struct {
	max    int64
	sent   atomic.Int64  // orders let through
	stored atomic.Int64  // records PostgreSQL holds (the sum of the stored offsets), as last read
	moved  chan struct{} // a token when stored grew
	first  sync.Once     // the first wait is logged
	onWait func()
}

func newBacklog(max int64, onWait func()) *backlog {
	return &backlog{max: max, moved: make(chan struct{}, 1), onWait: onWait}
}

// wait lets one more order through once fewer than max are unstored, or
// returns ctx's error. The stored count it compares with may be stale but
// is never ahead, so the bound holds at every moment.
func (b *backlog) wait(ctx context.Context) error {
	for b.sent.Load()-b.stored.Load() >= b.max {
		b.first.Do(b.onWait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-b.moved:
		}
	}
	b.sent.Add(1)
	return nil
}

// storedUpTo says that PostgreSQL holds n records of the topic. Only the
// trim tick calls it.
func (b *backlog) storedUpTo(n int64) {
	if n <= b.stored.Load() {
		return
	}
	b.stored.Store(n)
	select {
	case b.moved <- struct{}{}:
	default:
	}
}
