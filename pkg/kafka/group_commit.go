package kafka

// Kafka's copy of the stored offsets, written by one goroutine.

import (
	"context"
	"maps"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// committer copies the offsets stored in PostgreSQL to Kafka's committed
// offsets, one commit at a time, each with the latest offsets: a consumer
// that commits a transaction per row must not queue a commit to Kafka per
// row (franz-go runs them in order, each waiting for the one before), or
// Kafka's copy trails further and further behind and the last commit, on
// the way out, waits behind all the others.
type committer struct {
	r       *GroupReader
	mu      sync.Mutex
	pending map[int32]int64 // the latest offsets not yet sent
	kick    chan struct{}   // holds one wake-up at most
	stop    context.CancelFunc
	done    chan struct{}
}

func newCommitter(r *GroupReader) *committer {
	ctx, stop := context.WithCancel(context.Background())
	c := &committer{r: r, pending: map[int32]int64{}, kick: make(chan struct{}, 1), stop: stop, done: make(chan struct{})}
	go c.loop(ctx)
	return c
}

// add records offsets to commit, replacing older ones of their partitions.
func (c *committer) add(offsets map[int32]int64) {
	c.mu.Lock()
	maps.Copy(c.pending, offsets)
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default: // a wake-up is already due; it will take these too
	}
}

func (c *committer) take() map[int32]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.pending
	c.pending = map[int32]int64{}
	return out
}

func (c *committer) loop(ctx context.Context) {
	defer close(c.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		}
		if offsets := c.take(); len(offsets) > 0 {
			c.r.commitSync(ctx, offsets, "commit to Kafka failed (PostgreSQL holds the offsets)")
		}
	}
}

// close stops the loop, abandoning a commit in flight, and returns what
// was still waiting to be sent.
func (c *committer) close() map[int32]int64 {
	c.stop()
	<-c.done
	return c.take()
}

// commitSync commits offsets and waits for the answer, which is only
// logged: Kafka's copy is never read back.
func (r *GroupReader) commitSync(ctx context.Context, offsets map[int32]int64, failed string) {
	r.cl.CommitOffsetsSync(ctx, r.epochOffsets(offsets), func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			r.log.Debug(failed, "err", err)
		}
	})
}
