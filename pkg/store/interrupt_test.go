package store

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// blockOn makes a WriteBatch of db wait: another transaction inserts the
// order id o without committing, so the batch's COPY waits for it at that
// row, after the offset check and some rows. It returns a function that
// rolls the blocker back.
func blockOn(t *testing.T, db *DB, o *order.Order) func() {
	t.Helper()
	ctx := t.Context()
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO orders (order_id, customer_id, customer_name, customer_email, items, total_amount, status, created_at)
		VALUES ($1, 'c', 'n', 'e@x', '[]', 1, 'pending', now())`, o.OrderID); err != nil {
		t.Fatal(err)
	}
	return func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }
}

// waitBlocked waits until the backend of application app waits for a lock
// and returns its pid.
func waitBlocked(t *testing.T, db *DB, app string) int32 {
	t.Helper()
	for range 500 {
		var pid int32
		err := db.pool.QueryRow(t.Context(), `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, app).Scan(&pid)
		if err == nil {
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no backend of %s ever waited for a lock", app)
	return 0
}

// TestWriteBatchInterrupted stops a batch mid-COPY: the backend is
// terminated, or the caller's context is canceled or times out. The error
// says whether to retry, and nothing of the batch is stored.
func TestWriteBatchInterrupted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		interrupt func(t *testing.T, admin *DB, pid int32, cancel context.CancelFunc)
		timeout   bool
		retryable bool
		is        error
	}{
		{"terminate backend", func(t *testing.T, admin *DB, pid int32, _ context.CancelFunc) {
			if _, err := admin.pool.Exec(t.Context(), "SELECT pg_terminate_backend($1)", pid); err != nil {
				t.Fatal(err)
			}
		}, false, true, nil},
		{"cancel query", func(t *testing.T, admin *DB, pid int32, _ context.CancelFunc) {
			if _, err := admin.pool.Exec(t.Context(), "SELECT pg_cancel_backend($1)", pid); err != nil {
				t.Fatal(err)
			}
		}, false, true, nil},
		{"context canceled", func(_ *testing.T, _ *DB, _ int32, cancel context.CancelFunc) { cancel() }, false, false, context.Canceled},
		{"context deadline", nil, true, true, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			dsn, _ := testenv.Schema(t)
			app := testenv.Name(t, "writer")
			admin := openDSN(t, dsn, Options{}, true)
			writer := openDSN(t, dsn, Options{AppName: app}, false)
			orders := genOrders(t, 5, 2000)
			release := blockOn(t, admin, orders[1500])
			defer release()

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.timeout {
				ctx, cancel = context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
			}
			done := make(chan error, 1)
			go func() {
				_, err := writer.WriteBatch(ctx, "g", orders, []Offset{{Topic: "t", Partition: 2, Expected: -1, Next: 2000}}, nil)
				done <- err
			}()
			if !tt.timeout {
				pid := waitBlocked(t, admin, app)
				tt.interrupt(t, admin, pid, cancel)
			}
			err := <-done
			release()
			if err == nil {
				t.Fatal("WriteBatch succeeded, want an error")
			}
			t.Logf("error: %v", err)
			if got := IsRetryable(err); got != tt.retryable {
				t.Errorf("IsRetryable(%v) = %v, want %v", err, got, tt.retryable)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if !strings.HasPrefix(err.Error(), "store orders: ") {
				t.Errorf("error %q does not start with \"store orders: \"", err)
			}
			if n := storedCount(t, admin); n != 0 {
				t.Errorf("%d rows stored, want none", n)
			}
			if got := loadOffsets(t, admin, "g", "t"); len(got) != 0 {
				t.Errorf("offsets %v stored, want none", got)
			}
			// The pool recovers: the same batch succeeds now.
			res, err := writer.WriteBatch(t.Context(), "g", orders, []Offset{{Topic: "t", Partition: 2, Expected: -1, Next: 2000}}, nil)
			if err != nil || res.Inserted != len(orders) {
				t.Fatalf("retry: %+v, %v", res, err)
			}
		})
	}
}

func TestIsRetryable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "57P03"}, true},
		{&pgconn.PgError{Code: "57014"}, true},
		{&pgconn.PgError{Code: "53300"}, true},
		{&pgconn.PgError{Code: "40001"}, true},
		{&pgconn.PgError{Code: "40P01"}, true},
		{&pgconn.PgError{Code: "25006"}, true},
		{&pgconn.PgError{Code: "42P01"}, false},
		{&pgconn.PgError{Code: "22001"}, false},
		{&pgconn.PgError{Code: "23505"}, false},
		{&pgconn.PgError{Code: "XX000"}, false},
		{describe(&pgconn.PgError{Code: "57P01"}), true},
		{io.ErrUnexpectedEOF, true},
		{context.DeadlineExceeded, true},
		{context.Canceled, false},
		{&FencedError{Partitions: []TopicPartition{{"t", 1}}}, false},
		{errors.New("store orders: order 3 is nil"), false},
	}
	for _, tt := range tests {
		if got := IsRetryable(tt.err); got != tt.want {
			t.Errorf("IsRetryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestIdleInTransactionTimeoutIsRetried: the server ends a session whose
// transaction stays idle longer than idle_in_transaction_session_timeout
// (SQLSTATE 25P03) — here while beforeCommit waits, as it waits for the
// dead letters' acknowledgements. The connection is lost like any other
// (57P01 is retried): the error is retryable, nothing was stored, and the
// retry stores the batch.
func TestIdleInTransactionTimeoutIsRetried(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.Schema(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("idle_in_transaction_session_timeout", "100")
	u.RawQuery = q.Encode()
	db := openDSN(t, u.String(), Options{}, true)
	orders := genOrders(t, 71, 10)
	offsets := []Offset{{Topic: "t", Partition: 0, Expected: -1, Next: 10}}
	_, err = db.WriteBatch(t.Context(), "g", orders, offsets, func([]Rejected) error {
		time.Sleep(500 * time.Millisecond) // idle in the transaction past the server's timeout
		return nil
	})
	if err == nil || !IsRetryable(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	if msg := describe(err).Error(); strings.Contains(msg, "25P03") && !strings.Contains(msg, "idle_in_transaction_session_timeout") {
		t.Errorf("describe = %q: want the setting named", msg)
	}
	if n := storedCount(t, db); n != 0 {
		t.Fatalf("%d rows stored by the failed attempt", n)
	}
	if res, err := db.WriteBatch(t.Context(), "g", orders, offsets, nil); err != nil || res.Inserted != 10 {
		t.Fatalf("retry: %+v, %v", res, err)
	}
}

// TestDatabaseNotAcceptingConnectionsIsRetried: an administrator sets
// ALLOW_CONNECTIONS false on the database (maintenance) and ends its
// sessions. New connections get FATAL 55000, "not currently accepting
// connections": a state that passes, like a server starting up (57P03),
// so it is retried, and the write goes through once connections are
// allowed again.
func TestDatabaseNotAcceptingConnectionsIsRetried(t *testing.T) {
	t.Parallel()
	dsn, name := testenv.Database(t)
	db := openDSN(t, dsn, Options{}, true)
	admin := testenv.DatabaseURL(t)
	ident := pgx.Identifier{name}.Sanitize()
	testenv.Exec(t, admin, "ALTER DATABASE "+ident+" ALLOW_CONNECTIONS false")
	testenv.Exec(t, admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '"+name+"'")
	orders := genOrders(t, 91, 5)
	offsets := []Offset{{Topic: "t", Partition: 0, Expected: -1, Next: 5}}
	// Until the pool has dropped the sessions that were ended, and a new
	// connection meets the refusal.
	var err error
	for deadline := time.Now().Add(time.Minute); ; {
		_, err = db.WriteBatch(t.Context(), "g", orders, offsets, nil)
		var pgErr *pgconn.PgError
		if err == nil || errors.As(err, &pgErr) && pgErr.Code == "55000" || time.Now().After(deadline) {
			break
		}
	}
	if err == nil || !IsRetryable(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	// At start it is waited for, as a server starting up is, not refused
	// at once like a wrong password.
	_, err = Open(t.Context(), config.Postgres{DatabaseURL: dsn, ConnectTimeout: time.Second}, Options{}, testenv.Logger(t))
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("Open: %v, want ErrUnreachable after waiting", err)
	}
	testenv.Exec(t, admin, "ALTER DATABASE "+ident+" ALLOW_CONNECTIONS true")
	if res, err := db.WriteBatch(t.Context(), "g", orders, offsets, nil); err != nil || res.Inserted != 5 {
		t.Fatalf("once allowed again: %+v, %v", res, err)
	}
}
