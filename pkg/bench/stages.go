package bench

import (
	"sync"
	"time"
)

// Stages splits each stored row's trip into where its time went, from the
// consumer's clock as each batch commits:
//
//   - to poll: created_at to the poll that handed the record to the
//     consumer — the producer's queue and linger, the broker, the fetch,
//     and the time the record waited in the client's buffer while the
//     consumer was busy with earlier batches;
//   - batch wait: from that poll to the start of the batch's write —
//     decoding, validating, and waiting for the writer to finish the
//     batch before;
//   - write: the write's start to its commit — the COPY, the offsets and
//     the commit.
//
// The three add up to the latency to the commit, measured apart from the
// database's own commit times. It is safe for concurrent use.
type Stages struct {
	mu                     sync.Mutex
	toPoll, waiting, write *Histogram
}

// NewStages returns empty stages.
func NewStages() *Stages {
	return &Stages{toPoll: NewHistogram(), waiting: NewHistogram(), write: NewHistogram()}
}

// Record adds the rows of one committed batch: created holds their
// created_at times, polled when each was polled.
func (s *Stages) Record(created, polled []time.Time, writeStart, committed time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, c := range created {
		s.toPoll.Record(polled[i].Sub(c))
		s.waiting.Record(writeStart.Sub(polled[i]))
		s.write.Record(committed.Sub(writeStart))
	}
}

// StageLatency is one stage's share of the rows' latency.
type StageLatency struct {
	Stage   string  `json:"stage"`
	Latency Latency `json:"latency_ms"`
}

// Summary returns the stages in the order a row goes through them.
func (s *Stages) Summary() []StageLatency {
	s.mu.Lock()
	defer s.mu.Unlock()
	return []StageLatency{
		{"created_at to poll (produce, linger, broker, fetch, client buffer)", s.toPoll.Summary()},
		{"poll to write start (decode, validate, wait for the writer)", s.waiting.Summary()},
		{"write start to commit (COPY, offsets, commit)", s.write.Summary()},
	}
}
