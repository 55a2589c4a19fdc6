package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

// commitCutter is a TCP proxy in front of PostgreSQL that, once armed,
// passes the next COMMIT on to the server and then cuts the connection
// before the answer comes back: a commit whose outcome the client cannot
// know.
type commitCutter struct {
	ln     net.Listener
	server string
	armed  atomic.Bool
	// landed tells, from another connection, whether the commit's writes
	// are visible: the cut waits for it (at most a minute), so that the
	// commit has landed when the client loses its answer.
	landed func() bool
}

func newCommitCutter(t *testing.T, server string, landed func() bool) *commitCutter {
	t.Helper()
	p := &commitCutter{server: server, landed: landed}
	p.ln = testenv.Serve(t, p.serve)
	return p
}

func (p *commitCutter) serve(client net.Conn) {
	server, err := net.Dial("tcp", p.server)
	if err != nil {
		_ = client.Close()
		return
	}
	var mute atomic.Bool // the server's answers are dropped
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 && !mute.Load() {
				if _, werr := client.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		_ = client.Close()
	}()
	defer func() { _ = server.Close(); _ = client.Close() }()
	// The startup message has no type byte; every later one has.
	first := true
	for {
		var head []byte
		if first {
			head = make([]byte, 4)
		} else {
			head = make([]byte, 5)
		}
		if _, err := io.ReadFull(client, head); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(head[len(head)-4:])
		body := make([]byte, n-4)
		if _, err := io.ReadFull(client, body); err != nil {
			return
		}
		cut := !first && head[0] == 'Q' && bytes.EqualFold(bytes.TrimRight(body, "\x00"), []byte("commit")) && p.armed.Swap(false)
		if cut {
			mute.Store(true)
		}
		if _, err := server.Write(append(head, body...)); err != nil {
			return
		}
		if cut {
			// The answer is dropped with the connection once the commit
			// shows; after a minute without, the test's counts fail.
			for deadline := time.Now().Add(time.Minute); !p.landed() && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			return
		}
		first = false
	}
}

// TestWriteBatchCommitAnswerLost: the connection is cut after COMMIT reached
// the server. WriteBatch cannot know the outcome: it returns
// ErrCommitUnknown (retryable) with the result the batch would have, and
// here the commit did land — rows and offsets are stored.
func TestWriteBatchCommitAnswerLost(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.Schema(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	direct := openDSN(t, dsn, Options{}, true)
	cutter := newCommitCutter(t, u.Host, func() bool {
		n, err := direct.CountOrders(context.Background())
		return err == nil && n == 10
	})
	u.Host = cutter.ln.Addr().String()
	db := openDSN(t, u.String(), Options{}, false)

	orders := genOrders(t, 81, 10)
	cutter.armed.Store(true)
	res, err := db.WriteBatch(t.Context(), "g", orders, []Offset{{Topic: "t", Partition: 0, Expected: -1, Next: 10}}, nil)
	if !errors.Is(err, ErrCommitUnknown) || !IsRetryable(err) || res.Inserted != 10 {
		t.Fatalf("result %+v, err %v; want ErrCommitUnknown, retryable, with the 10 rows counted", res, err)
	}
	if n := storedCount(t, direct); n != 10 {
		t.Errorf("%d rows stored, want the 10 the commit wrote", n)
	}
	if got := loadOffsets(t, direct, "g", "t"); got[0] != 10 {
		t.Errorf("offsets %v, want partition 0 at 10", got)
	}
}
