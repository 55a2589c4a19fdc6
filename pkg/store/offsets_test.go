package store

import (
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/order"
)

func TestOffsetsStoredWithRows(t *testing.T) {
	t.Parallel()
	db := openMigrated(t, Options{})
	ctx := t.Context()
	o := genOrders(t, 21, 6)

	steps := []struct {
		name    string
		group   string
		orders  []*order.Order
		offsets []Offset
		want    map[string]map[int32]int64 // group/topic → offsets after the step
	}{
		{"first batch creates rows", "g1", o[:2], []Offset{
			{Topic: "a", Partition: 0, Expected: -1, Next: 100},
			{Topic: "a", Partition: 2, Expected: -1, Next: 7},
		}, map[string]map[int32]int64{"g1/a": {0: 100, 2: 7}}},
		{"advance one, add one", "g1", o[2:4], []Offset{
			{Topic: "a", Partition: 0, Expected: 100, Next: 150},
			{Topic: "a", Partition: 1, Expected: -1, Next: 3},
		}, map[string]map[int32]int64{"g1/a": {0: 150, 1: 3, 2: 7}}},
		{"no progress is checked and kept", "g1", nil, []Offset{
			{Topic: "a", Partition: 2, Expected: 7, Next: 7},
		}, map[string]map[int32]int64{"g1/a": {0: 150, 1: 3, 2: 7}}},
		{"other group and topic are separate", "g2", o[4:5], []Offset{
			{Topic: "a", Partition: 0, Expected: -1, Next: 1},
			{Topic: "b", Partition: 0, Expected: -1, Next: 9},
		}, map[string]map[int32]int64{"g1/a": {0: 150, 1: 3, 2: 7}, "g2/a": {0: 1}, "g2/b": {0: 9}, "g1/b": {}}},
		{"rows without offsets", "g1", o[5:6], nil, map[string]map[int32]int64{"g1/a": {0: 150, 1: 3, 2: 7}}},
	}
	for _, s := range steps {
		res, err := db.WriteBatch(ctx, s.group, s.orders, s.offsets, nil)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if res.Inserted != len(s.orders) {
			t.Errorf("%s: inserted %d, want %d", s.name, res.Inserted, len(s.orders))
		}
		for key, want := range s.want {
			var group, topic string
			for i := range key {
				if key[i] == '/' {
					group, topic = key[:i], key[i+1:]
				}
			}
			if got := loadOffsets(t, db, group, topic); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: offsets of %s = %v, want %v", s.name, key, mapString(got), mapString(want))
			}
		}
	}
	if got := storedCount(t, db); got != 6 {
		t.Errorf("stored %d rows, want 6", got)
	}
}

// TestFencedWriterStoresNothing: a writer whose Expected is stale, for one
// partition of several, gets a *FencedError naming exactly the stale ones,
// and neither its rows nor any of its offsets are stored.
func TestFencedWriterStoresNothing(t *testing.T) {
	t.Parallel()
	db := openMigrated(t, Options{})
	ctx := t.Context()
	o := genOrders(t, 31, 10)
	if _, err := db.WriteBatch(ctx, "g", o[:2], []Offset{
		{Topic: "t", Partition: 0, Expected: -1, Next: 10},
		{Topic: "t", Partition: 1, Expected: -1, Next: 20},
	}, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		offsets []Offset
		fenced  []TopicPartition
	}{
		{"stale expected", []Offset{{Topic: "t", Partition: 1, Expected: 15, Next: 30}}, []TopicPartition{{"t", 1}}},
		{"one stale of three", []Offset{
			{Topic: "t", Partition: 2, Expected: -1, Next: 5},
			{Topic: "t", Partition: 1, Expected: 20, Next: 30},
			{Topic: "t", Partition: 0, Expected: 9, Next: 30},
		}, []TopicPartition{{"t", 0}}},
		{"row exists, caller expected none", []Offset{{Topic: "t", Partition: 0, Expected: -1, Next: 30}}, []TopicPartition{{"t", 0}}},
		{"caller expected a row that does not exist", []Offset{{Topic: "t", Partition: 7, Expected: 3, Next: 30}}, []TopicPartition{{"t", 7}}},
		{"all stale, sorted", []Offset{
			{Topic: "t", Partition: 1, Expected: 0, Next: 30},
			{Topic: "t", Partition: 0, Expected: 0, Next: 30},
		}, []TopicPartition{{"t", 0}, {"t", 1}}},
	}
	for _, tt := range tests {
		res, err := db.WriteBatch(ctx, "g", o[2:], tt.offsets, nil)
		var fe *FencedError
		if !errors.As(err, &fe) {
			t.Fatalf("%s: err = %v, want *FencedError", tt.name, err)
		}
		if !reflect.DeepEqual(fe.Partitions, tt.fenced) {
			t.Errorf("%s: fenced %v, want %v", tt.name, fe.Partitions, tt.fenced)
		}
		if IsRetryable(err) || res.Inserted != 0 {
			t.Errorf("%s: retryable %v, result %+v", tt.name, IsRetryable(err), res)
		}
		if got := storedCount(t, db); got != 2 {
			t.Errorf("%s: %d rows stored, want the first batch's 2", tt.name, got)
		}
		if got, want := loadOffsets(t, db, "g", "t"), map[int32]int64{0: 10, 1: 20}; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: offsets %v, want %v", tt.name, got, want)
		}
	}
}

// TestConcurrentWritersOneWins starts writers on separate pools, all with
// the same Expected for one partition and different rows: exactly one
// commits, the others are fenced, and only the winner's rows are stored.
func TestConcurrentWritersOneWins(t *testing.T) {
	t.Parallel()
	for _, expected := range []int64{-1, 50} {
		dsn, _ := testenv.Schema(t)
		setup := openDSN(t, dsn, Options{}, true)
		if expected >= 0 {
			if _, err := setup.WriteBatch(t.Context(), "g", nil, []Offset{{Topic: "t", Partition: 0, Expected: -1, Next: expected}}, nil); err != nil {
				t.Fatal(err)
			}
		}
		const writers = 4
		batches := make([][]*order.Order, writers)
		dbs := make([]*DB, writers)
		for i := range writers {
			batches[i] = genOrders(t, uint64(40+i), 500)
			dbs[i] = openDSN(t, dsn, Options{}, false)
		}
		start := make(chan struct{})
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				<-start
				_, errs[i] = dbs[i].WriteBatch(t.Context(), "g", batches[i],
					[]Offset{{Topic: "t", Partition: 0, Expected: expected, Next: expected + 1000}}, nil)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			var fe *FencedError
			switch {
			case err == nil:
				if winner >= 0 {
					t.Errorf("expected %d: writers %d and %d both committed", expected, winner, i)
				}
				winner = i
			case !errors.As(err, &fe):
				t.Errorf("expected %d: writer %d: %v, want success or *FencedError", expected, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("expected %d: no writer committed: %v", expected, errs)
		}
		if got := storedCount(t, setup); got != 500 {
			t.Errorf("expected %d: %d rows stored, want the winner's 500", expected, got)
		}
		var n int
		if err := setup.pool.QueryRow(t.Context(), "SELECT count(*) FROM orders WHERE order_id = ANY($1)", ids(batches[winner])).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 500 {
			t.Errorf("expected %d: %d of the winner's rows stored, want 500", expected, n)
		}
		if got := loadOffsets(t, setup, "g", "t"); got[0] != expected+1000 {
			t.Errorf("expected %d: offsets %v, want %d", expected, got, expected+1000)
		}
	}
}

func ids(orders []*order.Order) []string {
	out := make([]string, len(orders))
	for i, o := range orders {
		out[i] = o.OrderID
	}
	return out
}
