package pipeline

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// TestBacklogBound: a producer that goes through wait never has more than
// max orders unstored, whatever the pace of the stored count it is told;
// it goes on as the count grows; and a held producer stops when its
// context ends. The first hold is reported once.
func TestBacklogBound(t *testing.T) {
	t.Parallel()
	const max, orders = 100, 20_000
	waits := 0
	b := newBacklog(max, func() { waits++ })
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	done := make(chan error, 1)
	go func() {
		for range orders {
			if err := b.wait(ctx); err != nil {
				done <- err
				return
			}
			if n := b.sent.Load() - b.stored.Load(); n > max {
				done <- errors.New("more than max orders unstored")
				return
			}
		}
		done <- nil
	}()
	// The consumer side: stores a random part of what was sent, as the
	// trim tick reads it, until everything is.
	var err error
	for finished := false; !finished; {
		select {
		case err = <-done:
			finished = true
		case <-time.After(50 * time.Microsecond):
			if sent, stored := b.sent.Load(), b.stored.Load(); sent > stored {
				b.storedUpTo(stored + 1 + rand.Int64N(sent-stored))
			}
		}
	}
	if err != nil || b.sent.Load() != orders {
		t.Fatalf("after %d orders sent and %d stored: %v", b.sent.Load(), b.stored.Load(), err)
	}
	b.storedUpTo(orders)
	if waits != 1 {
		t.Errorf("the hold was reported %d times, want once", waits)
	}

	// Nothing stored any more: the next max go through, the one after
	// waits until its context ends.
	for i := range max {
		if err := b.wait(ctx); err != nil {
			t.Fatalf("order %d of the bound: %v", i, err)
		}
	}
	held, stop := context.WithTimeout(ctx, 20*time.Millisecond)
	defer stop()
	if err := b.wait(held); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an order past the bound: %v, want it held until its context ends", err)
	}
	if b.sent.Load() != orders+max {
		t.Errorf("%d orders let through, want %d", b.sent.Load(), orders+max)
	}
}
