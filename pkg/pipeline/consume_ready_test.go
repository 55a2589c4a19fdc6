package pipeline

// What the consume loop reports while a service is away: lag while the
// stored offsets cannot load, readiness while out of the group or while
// PostgreSQL is down. kfake and the in-memory sink, as in consume_test.go.

import (
	"context"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/foodpipe/foodpipe/pkg/store"
)

// downSink is a memSink whose LoadOffsets fails as a lost connection does
// while down is set.
type downSink struct {
	*memSink
	down  atomic.Bool
	loads atomic.Int32 // failed loads
}

func (s *downSink) LoadOffsets(ctx context.Context, group, topic string) (map[int32]store.StoredOffset, error) {
	if s.down.Load() {
		s.loads.Add(1)
		return nil, &pgconn.PgError{Code: "08006", Message: "connection lost (test)"}
	}
	return s.memSink.LoadOffsets(ctx, group, topic)
}

// lagSeen keeps the last lag the consumer reported, summed.
type lagSeen struct {
	NopObserver
	total atomic.Int64
}

func (l *lagSeen) Lag(per map[int32]int64) {
	var n int64
	for _, v := range per {
		n += v
	}
	l.total.Store(n)
}

// TestConsumeLagWhileOffsetsCannotLoad: PostgreSQL is down when the
// partitions are assigned, so their stored offsets cannot be read; the
// backlog waits all the same, and the lag reported says so (counted from
// Kafka's committed copy, or the partition's start without one) instead
// of 0.
func TestConsumeLagWhileOffsetsCannotLoad(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(1000)
	var backlog int64
	for _, e := range f.end {
		backlog += e
	}
	sink := &downSink{memSink: newMemSink()}
	sink.down.Store(true)
	obs := &lagSeen{}
	opts := f.options()
	opts.Observer, opts.ProgressInterval = obs, 50*time.Millisecond
	errc := consumeAsync(t, f, sink, opts)
	waitFor(t, "the offsets to fail to load", func() bool { return sink.loads.Load() >= 2 })
	waitFor(t, "the lag to show the backlog", func() bool { return obs.total.Load() == backlog })
	sink.down.Store(false)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(sink.stored(), f.end) || obs.total.Load() != 0 {
		t.Errorf("after the outage: stored %v, lag %d; want the ends %v and lag 0", sink.stored(), obs.total.Load(), f.end)
	}
}

// readySeen keeps the readiness the consumer reported last.
type readySeen struct {
	NopObserver
	mu     sync.Mutex
	ready  bool
	reason string
}

func (r *readySeen) Ready(ready bool, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ready, r.reason = ready, reason
}

func (r *readySeen) get() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready, r.reason
}

// TestConsumeNotReadyWhileOutOfTheGroup: a member whose session with the
// group is lost (the coordinator stops answering its heartbeats, as when
// the broker is unreachable) is out of the group until it joins again:
// not ready, saying so, until it is back in; nothing is lost meanwhile.
func TestConsumeNotReadyWhileOutOfTheGroup(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(300)
	var down atomic.Bool
	for _, key := range []kmsg.Key{kmsg.Heartbeat, kmsg.JoinGroup} {
		f.kc.ControlKey(int16(key), func(req kmsg.Request) (kmsg.Response, error, bool) {
			f.kc.KeepControl()
			if !down.Load() {
				return nil, nil, false
			}
			resp := req.ResponseKind()
			switch r := resp.(type) {
			case *kmsg.HeartbeatResponse:
				r.ErrorCode = kerr.UnknownServerError.Code
			case *kmsg.JoinGroupResponse:
				r.ErrorCode = kerr.UnknownServerError.Code
			}
			return resp, nil, true
		})
	}
	sink := newMemSink()
	obs := &readySeen{}
	opts := f.options()
	opts.Observer = obs
	var setEnd func(map[int32]int64)
	opts.Until, setEnd = untilEnds()
	errc := consumeAsync(t, f, sink, opts)
	waitFor(t, "the first orders stored, ready", func() bool { ok, _ := obs.get(); return ok && sink.rowCount() > 0 })
	down.Store(true)
	waitFor(t, "not ready once out of the group", func() bool { ok, _ := obs.get(); return !ok })
	if _, reason := obs.get(); !strings.Contains(reason, "not in the group") {
		t.Errorf("reason %q, want it to say the member is not in the group", reason)
	}
	f.produce(300)
	down.Store(false)
	e := maps.Clone(f.end)
	setEnd(e)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if ok, reason := obs.get(); !ok {
		t.Errorf("not ready after rejoining: %q", reason)
	}
	if !maps.Equal(sink.stored(), e) || sink.rowCount() != f.valid {
		t.Errorf("stored %v, %d rows; want the ends %v and all %d valid orders", sink.stored(), sink.rowCount(), e, f.valid)
	}
}

// Ping fails while the sink is down, as store.DB's does.
func (s *downSink) Ping(context.Context) error {
	if s.down.Load() {
		return &pgconn.PgError{Code: "08006", Message: "connection lost (test)"}
	}
	return nil
}

// TestConsumeIdleNotReadyWhileDatabaseDown: a consumer with nothing to
// store does not find out from a write that PostgreSQL is down; it pings
// it, and is not ready, saying why, until it answers again.
func TestConsumeIdleNotReadyWhileDatabaseDown(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.produce(100)
	sink := &downSink{memSink: newMemSink()}
	obs := &readySeen{}
	opts := f.options()
	opts.Observer, opts.ProgressInterval = obs, 50*time.Millisecond
	stop := make(chan struct{})
	opts.Until = func(map[int32]int64) bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	errc := consumeAsync(t, f, sink, opts)
	waitFor(t, "the backlog stored, ready", func() bool { ok, _ := obs.get(); return ok && maps.Equal(sink.stored(), f.end) })
	sink.down.Store(true)
	waitFor(t, "not ready while the database is down", func() bool { ok, _ := obs.get(); return !ok })
	if _, reason := obs.get(); !strings.Contains(reason, "PostgreSQL unreachable") {
		t.Errorf("reason %q, want it to say PostgreSQL is unreachable", reason)
	}
	sink.down.Store(false)
	waitFor(t, "ready once the database answers", func() bool { ok, _ := obs.get(); return ok })
	close(stop)
	f.produce(1) // a batch, for Until to be asked again
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
