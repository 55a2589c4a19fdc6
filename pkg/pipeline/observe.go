package pipeline

import (
	"time"

	"github.com/foodpipe/foodpipe/pkg/order"
)

// Observer is told what the consumer does, as it happens: pkg/metrics
// turns it into Prometheus series and health. Its methods are called from
// the consumer's goroutines and must be quick.
type Observer interface {
	// Consumed counts records read from Kafka.
	Consumed(records int)
	// Committed reports a committed batch.
	Committed(c Commit)
	// Retrying reports a failed attempt that will be retried (a service
	// down): op says what was tried.
	Retrying(op string, err error)
	// Lag reports, per owned partition, how far the stored offset is
	// behind the partition's end.
	Lag(lag map[int32]int64)
	// Ready reports whether the consumer does its job: it has joined its
	// group and PostgreSQL answers; reason says why not.
	Ready(ready bool, reason string)
	// Writing reports that a database write started at since, or (zero)
	// that none is in progress: a write that never ends is a stuck loop.
	Writing(since time.Time)
}

// Commit is one committed batch.
type Commit struct {
	Inserted    int            // rows stored
	Duplicates  int            // orders skipped: their order_id was stored
	Dropped     int            // orders the database skipped without an error (a trigger or rule)
	DeadLetters map[string]int // by class
	Records     int            // records the batch covered, dead letters included
	Polled      []time.Time    // when each order's record was polled from the client, parallel to Orders
	Took        time.Duration  // the write, from its start to the commit
	At          time.Time      // the commit
	// Orders are the batch's orders (stored or duplicates): their
	// created_at to At is the end-to-end latency.
	Orders []*order.Order
}

// ProduceObserver is told of every delivery of ProduceOrders.
type ProduceObserver interface {
	// Delivered reports one order acknowledged (err nil) or failed.
	Delivered(err error)
	// Stalled reports records waiting with none acknowledged for a while:
	// the broker is away or not answering, though none has failed yet.
	Stalled(reason string)
}

// NopObserver is the Observer of a consumer nobody watches; embed it to
// observe only some of what happens.
type NopObserver struct{}

func (NopObserver) Consumed(int)           {}
func (NopObserver) Committed(Commit)       {}
func (NopObserver) Retrying(string, error) {}
func (NopObserver) Lag(map[int32]int64)    {}
func (NopObserver) Ready(bool, string)     {}
func (NopObserver) Writing(time.Time)      {}
