package kafka

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestGroupOffsetsWaitForTheCoordinator: on a new cluster the broker
// answers COORDINATOR_NOT_AVAILABLE while it creates __consumer_offsets (the
// first `foodpipe dlq replay` there failed with it). Fetching and committing
// a group's offsets wait for the coordinator instead, and the offsets
// committed are the ones fetched.
func TestGroupOffsetsWaitForTheCoordinator(t *testing.T) {
	t.Parallel()
	c, cluster := fakeCluster(t, 2, "t")
	const refusals = 3
	var refused atomic.Int32
	c.ControlKey(int16(kmsg.FindCoordinator), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if refused.Load() >= refusals {
			return nil, nil, false
		}
		refused.Add(1)
		req := kreq.(*kmsg.FindCoordinatorRequest)
		resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		for _, k := range req.CoordinatorKeys {
			rk := kmsg.NewFindCoordinatorResponseCoordinator()
			rk.Key, rk.NodeID, rk.ErrorCode = k, -1, kerr.CoordinatorNotAvailable.Code
			resp.Coordinators = append(resp.Coordinators, rk)
		}
		return resp, nil, true
	})

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	admin := testAdmin(ctx, t, cluster)
	// Each group's first request meets the refusals (franz-go caches a
	// coordinator once found, so the commit goes to a second group).
	refusedAll := func(what string) {
		t.Helper()
		if n := refused.Swap(0); n < refusals {
			t.Fatalf("%s: the broker refused %d coordinator look-ups, want %d (the test did not test)", what, n, refusals)
		}
	}
	if got, err := admin.CommittedOffsets(ctx, "g", "t"); err != nil || len(got) != 0 {
		t.Fatalf("offsets of a group that never committed: %v, %v; want none and no error", got, err)
	}
	refusedAll("fetch")
	if err := admin.CommitOffsets(ctx, "h", "t", map[int32]int64{0: 7, 1: 3}); err != nil {
		t.Fatalf("commit: %v", err)
	}
	refusedAll("commit")
	got, err := admin.CommittedOffsets(ctx, "h", "t")
	if err != nil || len(got) != 2 || got[0] != 7 || got[1] != 3 {
		t.Fatalf("committed offsets %v, %v; want 0:7 1:3", got, err)
	}
}

// TestCheckTopicsRefusesCompaction: a topic whose cleanup.policy includes
// compact is refused with ErrCompacted naming it (compaction would delete
// all but each customer's latest order); delete passes, and a missing
// topic is still reported as missing first.
func TestCheckTopicsRefusesCompaction(t *testing.T) {
	t.Parallel()
	c, cluster := fakeCluster(t, 1, "orders", "orders.dlq")
	if err := c.CreateTopic("ledger", 1, map[string]string{"cleanup.policy": "compact,delete"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	admin := testAdmin(ctx, t, cluster)
	if err := admin.CheckTopics(ctx, "orders", "orders.dlq"); err != nil {
		t.Errorf("two delete topics: %v", err)
	}
	err := admin.CheckTopics(ctx, "orders", "ledger")
	if !errors.Is(err, ErrCompacted) || !strings.Contains(err.Error(), "ledger has cleanup.policy=compact,delete") {
		t.Errorf("a compacted topic: %v, want ErrCompacted naming ledger and its policy", err)
	}
	if err := admin.CheckTopics(ctx, "ledger", "nowhere"); !errors.Is(err, ErrTopicMissing) {
		t.Errorf("a missing topic beside a compacted one: %v, want ErrTopicMissing", err)
	}
}
