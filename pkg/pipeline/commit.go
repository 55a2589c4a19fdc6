package pipeline

// What a committed batch changes: the partitions' positions, the counts,
// the observer, and Kafka's copy of the offsets.

import (
	"slices"
	"time"

	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/foodpipe/foodpipe/pkg/store"
)

// committed records a stored batch and copies its offsets to Kafka, so
// that standard lag tools see the truth.
func (c *consumer) committed(w *work, res store.WriteResult) {
	commit := map[int32]int64{}
	c.mu.Lock()
	for _, o := range w.offsets {
		if ps := c.parts[o.Partition]; ps != nil && ps == w.parts[o.Partition] {
			ps.stored, ps.next, ps.fresh, ps.holds = o.Next, o.Next, false, 0
		}
		c.stats.Offsets[o.Partition] = o.Next
		commit[o.Partition] = o.Next
	}
	dead := map[string]int{}
	for _, d := range append(slices.Clip(w.rejected), w.dead...) {
		dead[d.Class]++
		c.stats.DeadLettered[d.Class]++
		delete(c.acked, position{d.Record.Partition, d.Record.Offset})
	}
	c.stats.Stored += int64(res.Inserted)
	c.stats.Duplicates += int64(res.Duplicates)
	c.stats.Dropped += int64(len(res.Dropped))
	c.stats.Batches++
	c.stats.LastCommit = time.Since(c.start)
	c.mu.Unlock()
	c.observeCommit(w, res, dead)
	// One line per transaction: the fault tests read these to prove that no
	// offset range was ever stored twice and that each batch continues the
	// previous one.
	c.log.Debug("batch stored", "inserted", res.Inserted, "duplicates", res.Duplicates,
		"dead_lettered", len(w.dead)+len(w.rejected), "offsets", w.offsets)
	if len(res.Dropped) > 0 {
		ids := make([]string, 0, min(len(res.Dropped), 10))
		for _, i := range res.Dropped[:cap(ids)] {
			ids = append(ids, w.orders[i].OrderID)
		}
		c.log.Warn("orders dropped by the database without an error (a trigger returning NULL or a rule on orders): "+
			"not stored, not dead-lettered", "dropped", len(res.Dropped), "order_ids", ids, "offsets", w.offsets)
	}
	c.pause(PauseAfterCommit)
	c.reader.Commit(commit)
}

// observeCommit tells the observer of a committed batch; dead counts its
// dead letters by class.
func (c *consumer) observeCommit(w *work, res store.WriteResult, dead map[string]int) {
	orders, polled := w.orders, w.polled
	if len(res.Rejected)+len(res.Dropped) > 0 {
		// Refused and dropped orders were not stored: they have no latency.
		refused := make(map[int]bool, len(res.Rejected)+len(res.Dropped))
		for _, r := range res.Rejected {
			refused[r.Index] = true
		}
		for _, i := range res.Dropped {
			refused[i] = true
		}
		orders = make([]*order.Order, 0, len(w.orders))
		polled = make([]time.Time, 0, len(w.orders))
		for i, o := range w.orders {
			if !refused[i] {
				orders = append(orders, o)
				polled = append(polled, w.polled[i])
			}
		}
	}
	c.obs.Committed(Commit{Inserted: res.Inserted, Duplicates: res.Duplicates, Dropped: len(res.Dropped), DeadLetters: dead,
		Records: len(w.orders) + len(w.dead), Polled: polled, Took: w.took, At: w.at, Orders: orders})
}
