package pipeline

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/foodpipe/foodpipe/pkg/store"
)

// memSink is an in-memory Sink with the store's contract: rows and offsets
// change together or not at all, offsets are compared and set, and refused
// orders are reported to beforeCommit. Tests add faults through hooks.
type memSink struct {
	mu      sync.Mutex
	rows    map[string]order.Order
	offsets map[int32]store.StoredOffset
	commits int
	// beforeWrite, when set, runs at the start of every WriteBatch, under
	// no lock; an error fails the write before anything is checked.
	beforeWrite func(offsets []store.Offset) error
	// afterBeforeCommit, when set, runs after beforeCommit succeeded and
	// before the commit; an error rolls the batch back.
	afterBeforeCommit func() error
	// writes records each committed batch's offsets, in commit order.
	writes [][]store.Offset
	// loseAnswer, when set and true for a commit, commits the batch and
	// then fails as a connection lost before COMMIT's answer came would.
	loseAnswer func() bool
	// afterLose, when set, runs after a commit's answer was lost.
	afterLose func()
	// beforeLoad, when set, runs at the start of LoadOffsets; an error
	// fails it (a database that cannot be reached).
	beforeLoad func() error
}

func newMemSink() *memSink {
	return &memSink{rows: map[string]order.Order{}, offsets: map[int32]store.StoredOffset{}}
}

func (s *memSink) LoadOffsets(_ context.Context, _, _ string) (map[int32]store.StoredOffset, error) {
	if s.beforeLoad != nil {
		if err := s.beforeLoad(); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.offsets), nil
}

func (s *memSink) check(offsets []store.Offset) []store.TopicPartition {
	var fenced []store.TopicPartition
	for _, o := range offsets {
		cur, ok := s.offsets[o.Partition]
		if (o.Expected == -1 && ok) || (o.Expected != -1 && (!ok || cur.Next != o.Expected)) {
			fenced = append(fenced, store.TopicPartition{Topic: o.Topic, Partition: o.Partition})
		}
	}
	return fenced
}

func (s *memSink) WriteBatch(_ context.Context, _ string, orders []*order.Order, offsets []store.Offset,
	beforeCommit func([]store.Rejected) error) (store.WriteResult, error) {
	if s.beforeWrite != nil {
		if err := s.beforeWrite(offsets); err != nil {
			return store.WriteResult{}, err
		}
	}
	s.mu.Lock()
	if fenced := s.check(offsets); len(fenced) > 0 {
		s.mu.Unlock()
		return store.WriteResult{}, &store.FencedError{Partitions: fenced}
	}
	var res store.WriteResult
	seen := map[string]bool{}
	for i, o := range orders {
		switch {
		case o.CustomerName == "REFUSE":
			res.Rejected = append(res.Rejected, store.Rejected{Index: i, Reason: "customer_name: refused by the test sink"})
		case seen[o.OrderID]:
			res.Duplicates++
		default:
			if _, ok := s.rows[o.OrderID]; ok {
				res.Duplicates++
			} else {
				res.Inserted++
			}
			seen[o.OrderID] = true
		}
	}
	s.mu.Unlock()
	if beforeCommit != nil {
		if err := beforeCommit(res.Rejected); err != nil {
			return store.WriteResult{}, fmt.Errorf("before commit: %w", err)
		}
	}
	if s.afterBeforeCommit != nil {
		if err := s.afterBeforeCommit(); err != nil {
			return store.WriteResult{}, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if fenced := s.check(offsets); len(fenced) > 0 { // moved while we were busy
		return store.WriteResult{}, &store.FencedError{Partitions: fenced}
	}
	for i, o := range orders {
		if _, ok := s.rows[o.OrderID]; !ok && !rejected(res.Rejected, i) {
			s.rows[o.OrderID] = *o
		}
	}
	for _, o := range offsets {
		s.offsets[o.Partition] = store.StoredOffset{Next: o.Next, TopicID: o.TopicID}
	}
	s.writes = append(s.writes, offsets)
	s.commits++
	if s.loseAnswer != nil && s.loseAnswer() {
		if s.afterLose != nil {
			s.afterLose()
		}
		return res, fmt.Errorf("store orders: commit: %w: %w", store.ErrCommitUnknown, store.ErrUnreachable)
	}
	return res, nil
}

func rejected(rs []store.Rejected, i int) bool {
	for _, r := range rs {
		if r.Index == i {
			return true
		}
	}
	return false
}

func (s *memSink) MoveOffset(_ context.Context, _ string, o store.Offset) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fenced := s.check([]store.Offset{o}); len(fenced) > 0 {
		return &store.FencedError{Partitions: fenced}
	}
	s.offsets[o.Partition] = store.StoredOffset{Next: o.Next, TopicID: o.TopicID}
	return nil
}

func (s *memSink) rowCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows)
}

func (s *memSink) stored() map[int32]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int32]int64{}
	for p, o := range s.offsets {
		out[p] = o.Next
	}
	return out
}
