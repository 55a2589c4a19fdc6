package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/foodpipe/foodpipe/pkg/order"
)

// WriteResult says what WriteBatch did with each order of the batch:
// Inserted + Duplicates + len(Rejected) == len(orders).
type WriteResult struct {
	// Inserted counts the rows stored by this batch.
	Inserted int
	// Duplicates counts the orders skipped because their order_id was
	// already stored, or appears earlier in the same batch.
	Duplicates int
	// Rejected lists, by ascending Index, the orders PostgreSQL refused for
	// their content. They are not stored. Their offsets are passed by the
	// same commit, so the caller dead-letters them (error class "store") in
	// WriteBatch's beforeCommit, which receives this same list.
	Rejected []Rejected
}

// Rejected is one order PostgreSQL refused for its content.
type Rejected struct {
	// Index is the position of the order in WriteBatch's orders.
	Index int
	// Reason is one line naming the column when PostgreSQL said which, the
	// server's message and its SQLSTATE, fit for a dead-letter header.
	Reason string
}

// orderColumns are the columns a batch writes, in the order the COPY rows
// carry them. processed_at is left to its column default, now(): the start
// of the batch's transaction, the moment the consumer began storing the
// batch. The bench measures end-to-end latency as processed_at − created_at,
// which therefore includes the time orders wait in Kafka and in the
// consumer's batch but not the write and commit of the batch itself
// (bounded by one WriteBatch call, which the sink bench measures on its
// own). clock_timestamp() would stamp each row as it is inserted, but a
// COPY cannot evaluate an expression per row: it would mean sending the
// consumer's clock in the row, or giving up COPY for INSERT … SELECT, the
// slower path; and one processed_at per transaction also shows which
// orders were committed together.
const orderColumns = "order_id, customer_id, customer_name, customer_email, items, total_amount, status, created_at"

// numOrderColumns is the field count of every COPY row.
const numOrderColumns = 8

const (
	copyOrdersSQL = "COPY orders (" + orderColumns + ") FROM STDIN (FORMAT binary)"

	// The slow path's staging table: a temporary table shaped like orders
	// (types, NOT NULL and defaults; no CHECK, no indexes), private to the
	// connection, created once per connection and emptied at every commit.
	stagingTable       = "pg_temp.foodpipe_orders_staging"
	createStagingSQL   = "CREATE TEMP TABLE IF NOT EXISTS foodpipe_orders_staging (LIKE orders INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
	copyStagingSQL     = "COPY " + stagingTable + " (" + orderColumns + ") FROM STDIN (FORMAT binary)"
	moveFromStagingSQL = "WITH moved AS (DELETE FROM " + stagingTable + " RETURNING " + orderColumns + ")\n" +
		"INSERT INTO orders (" + orderColumns + ") SELECT " + orderColumns + " FROM moved\n" +
		"ON CONFLICT (order_id) DO NOTHING"

	savepointSQL = "SAVEPOINT foodpipe_rows"
	releaseSQL   = "RELEASE SAVEPOINT foodpipe_rows"
	// Rolled back, the savepoint still exists; releasing it too leaves the
	// transaction at its top level, so every attempt's savepoint is a child
	// of the transaction and never nests in a previous attempt's.
	rollbackToSQL = "ROLLBACK TO SAVEPOINT foodpipe_rows; RELEASE SAVEPOINT foodpipe_rows"
)

// WriteBatch stores a batch of orders and advances the group's stored
// offsets in one transaction: either all of it commits, or nothing does.
//
// Offsets first: each Offset is a compare-and-set of the partition's stored
// next_offset from Expected to Next, done before any row is written. A
// writer that lost its partition fails at once without copying its rows,
// and the winner of the check holds the row lock of the partition's offset
// until it commits, so two writers of one partition are serialised and an
// older batch can never commit over a newer one. If any partition fails the
// check, the transaction is rolled back and the error is a *FencedError
// listing them. An Offset with Next == Expected is still checked and
// written (same value, new updated_at): it confirms ownership at no cost
// and keeps one rule for every offset.
//
// Rows: orders whose order_id is already stored, or repeated within the
// batch, are skipped and counted as Duplicates (the first occurrence in the
// batch wins). Orders PostgreSQL refuses for their content — class 22 data
// exceptions (a value too long or out of range, invalid JSON or UTF-8, a
// NUL, a time out of range), class 23 integrity violations other than
// unique violations (the total_amount check, NOT NULL) and program limits
// on a value (class 54) — are isolated and reported in Rejected, not
// stored; the rest of the batch and the offsets still commit. Any other
// error rolls the whole transaction back and is returned wrapped as "store
// orders: …": use IsRetryable to tell a database that is unavailable (retry
// the batch with backoff) from a bug. After a retryable error the outcome
// of the commit may be unknown; the offset check makes retrying the same
// batch safe (if it had committed, the retry is fenced).
//
// beforeCommit, when not nil, is called once the rows are written and
// before the commit, with the rejected orders (possibly none): the SPEC
// passes a refused record's offset only after it is in the dead-letter
// topic, so this is where the caller produces the dead letters and waits
// for their acknowledgement. If it returns an error, nothing is committed
// and WriteBatch returns that error wrapped. It is not called when the
// offsets are fenced or the rows fail. The transaction stays open while it
// runs, holding the partitions' offset rows.
//
// Items are stored from RawItems verbatim when it is set, otherwise from
// order.AppendItemsJSON. orders must not be nil. WriteBatch is safe for
// concurrent use; it holds one pooled connection for its duration.
func (db *DB) WriteBatch(ctx context.Context, group string, orders []*order.Order, offsets []Offset,
	beforeCommit func(rejected []Rejected) error) (WriteResult, error) {
	res, _, err := db.writeBatch(ctx, group, orders, offsets, beforeCommit)
	return res, err
}

// writeBatch is WriteBatch, also returning how many row attempts (COPY or
// staging insert, each in a savepoint) the batch needed: 1 unless some
// orders were duplicates or refused.
func (db *DB) writeBatch(ctx context.Context, group string, orders []*order.Order, offsets []Offset,
	beforeCommit func(rejected []Rejected) error) (WriteResult, int, error) {
	if err := checkOffsets(offsets); err != nil {
		return WriteResult{}, 0, err
	}
	for i, o := range orders {
		if o == nil {
			return WriteResult{}, 0, fmt.Errorf("store orders: order %d is nil", i)
		}
	}
	if len(orders) == 0 && len(offsets) == 0 {
		if beforeCommit != nil {
			if err := beforeCommit(nil); err != nil {
				return WriteResult{}, 0, fmt.Errorf("store orders: before commit: %w", err)
			}
		}
		return WriteResult{}, 0, nil
	}
	// The default isolation, READ COMMITTED, is what the offset check
	// relies on (see updateOffsetSQL).
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return WriteResult{}, 0, fmt.Errorf("store orders: begin: %w", describe(err))
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit

	fenced, err := casOffsets(ctx, tx, group, offsets)
	if err != nil {
		return WriteResult{}, 0, err
	}
	if len(fenced) > 0 {
		return WriteResult{}, 0, &FencedError{Partitions: fenced}
	}

	w := batchWriter{tx: tx, pg: tx.Conn().PgConn(), orders: orders}
	if err := w.write(ctx, 0, len(orders), false); err != nil {
		return WriteResult{}, w.attempts, err
	}
	if beforeCommit != nil {
		if err := beforeCommit(w.res.Rejected); err != nil {
			return WriteResult{}, w.attempts, fmt.Errorf("store orders: before commit: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return WriteResult{}, w.attempts, fmt.Errorf("store orders: commit: %w", describe(err))
	}
	if w.attempts > 1 {
		db.log.Debug("batch took the slow path", "group", group, "orders", len(orders), "attempts", w.attempts,
			"duplicates", w.res.Duplicates, "rejected", len(w.res.Rejected))
	}
	return w.res, w.attempts, nil
}

// batchWriter stores the rows of one WriteBatch inside its transaction.
//
// The fast path copies the whole batch straight into orders with binary
// COPY, the fastest way into PostgreSQL, inside a savepoint. If the COPY
// hits an order_id that exists (unique violation), the savepoint is rolled
// back and the rows go through the slow path: COPY into a temporary staging
// table, then INSERT … SELECT … ON CONFLICT (order_id) DO NOTHING. If either
// path hits a content error, the range is rolled back and split — around
// the row the server named in its error context when it did (COPY reports
// "line N"), else in halves — and each part is tried again in its own
// savepoint, until the refused rows stand alone and are rejected. Every
// attempt is verified by the server, so the split points are only a guess
// that saves attempts, never a reason to reject a row.
type batchWriter struct {
	tx       pgx.Tx
	pg       *pgconn.PgConn
	orders   []*order.Order
	src      copySource
	res      WriteResult
	staging  bool // the staging table exists in this transaction
	attempts int
}

func (w *batchWriter) write(ctx context.Context, lo, hi int, viaStaging bool) error {
	if lo >= hi {
		return nil
	}
	if viaStaging && !w.staging {
		// Created outside the attempt's savepoint, so that rolling an
		// attempt back does not drop it; IF NOT EXISTS because it outlives
		// the transaction on this pooled connection.
		if _, err := w.tx.Exec(ctx, createStagingSQL); err != nil {
			return fmt.Errorf("store orders: create staging table: %w", describe(err))
		}
		w.staging = true
	}
	if _, err := w.tx.Exec(ctx, savepointSQL); err != nil {
		return fmt.Errorf("store orders: savepoint: %w", describe(err))
	}
	n, err := w.attempt(ctx, lo, hi, viaStaging)
	if err == nil {
		w.res.Inserted += int(n)
		w.res.Duplicates += hi - lo - int(n)
		if lo == 0 && hi == len(w.orders) {
			return nil // the whole batch in one go: the commit releases it
		}
		if _, err := w.tx.Exec(ctx, releaseSQL); err != nil {
			return fmt.Errorf("store orders: release savepoint: %w", describe(err))
		}
		return nil
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || !(isContentError(pgErr.Code) || pgErr.Code == uniqueViolation && !viaStaging) {
		return fmt.Errorf("store orders: %s %d rows: %w", attemptName(viaStaging), hi-lo, describe(err))
	}
	if _, err := w.tx.Exec(ctx, rollbackToSQL); err != nil {
		return fmt.Errorf("store orders: rollback to savepoint: %w", describe(err))
	}
	if pgErr.Code == uniqueViolation {
		return w.write(ctx, lo, hi, true)
	}
	if hi-lo == 1 {
		w.res.Rejected = append(w.res.Rejected, Rejected{Index: lo, Reason: rejectReason(pgErr)})
		return nil
	}
	if k, ok := copyLine(pgErr.Where); ok && k < hi-lo {
		// Rows before k were accepted; row k was refused: try them apart.
		for _, r := range [3][2]int{{lo, lo + k}, {lo + k, lo + k + 1}, {lo + k + 1, hi}} {
			if err := w.write(ctx, r[0], r[1], viaStaging); err != nil {
				return err
			}
		}
		return nil
	}
	mid := lo + (hi-lo)/2
	if err := w.write(ctx, lo, mid, viaStaging); err != nil {
		return err
	}
	return w.write(ctx, mid, hi, viaStaging)
}

// attempt stores orders[lo:hi] by one path and returns the rows inserted.
func (w *batchWriter) attempt(ctx context.Context, lo, hi int, viaStaging bool) (int64, error) {
	w.attempts++
	w.src.reset(w.orders[lo:hi])
	if !viaStaging {
		tag, err := w.pg.CopyFrom(ctx, &w.src, copyOrdersSQL)
		return tag.RowsAffected(), err
	}
	if _, err := w.pg.CopyFrom(ctx, &w.src, copyStagingSQL); err != nil {
		return 0, err
	}
	tag, err := w.tx.Exec(ctx, moveFromStagingSQL)
	return tag.RowsAffected(), err
}

func attemptName(viaStaging bool) string {
	if viaStaging {
		return "insert via staging"
	}
	return "copy"
}

const uniqueViolation = "23505"

// isContentError reports whether a SQLSTATE means PostgreSQL refused a row
// for what it contains, so that the row, not the batch, is at fault.
func isContentError(code string) bool {
	switch {
	case code == "22P03" || code == "22P04":
		// Invalid binary representation or COPY format: the bytes this
		// package encodes are wrong for every row. A bug to report, not
		// thousands of orders to dead-letter.
		return false
	case strings.HasPrefix(code, "22"): // data exception
		return true
	case strings.HasPrefix(code, "23"): // integrity constraint violation
		return code != uniqueViolation
	case code == "54000" || code == "54001":
		// A value beyond a program limit: a jsonb too large, or nested too
		// deep for the parser's stack.
		return true
	}
	return false
}

// copyWhere finds the row and column a COPY error context names:
// `COPY orders, line 3, column customer_name: "…"`.
var copyWhere = regexp.MustCompile(`COPY [^,\n]+, line (\d+)(?:, column ([^:\s]+))?`)

// copyLine returns the 0-based row of the COPY that the server named.
func copyLine(where string) (int, bool) {
	m := copyWhere.FindStringSubmatch(where)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n < 1 {
		return 0, false
	}
	return n - 1, true
}

// maxReason bounds a rejection reason: it becomes a Kafka header.
const maxReason = 300

// rejectReason renders a content error as one line: the column if the
// server named it, the message, the SQLSTATE and a short detail. The row
// number of the error context is left out: it counts rows of one attempt,
// not of the batch.
func rejectReason(e *pgconn.PgError) string {
	var b strings.Builder
	if m := copyWhere.FindStringSubmatch(e.Where); m != nil && m[2] != "" {
		b.WriteString(m[2] + ": ")
	} else if e.ColumnName != "" {
		b.WriteString(e.ColumnName + ": ")
	}
	b.WriteString(e.Message + " (SQLSTATE " + e.Code + ")")
	// "Failing row contains (…)" repeats the whole order, items included.
	if e.Detail != "" && !strings.HasPrefix(e.Detail, "Failing row contains") {
		b.WriteString("; detail: " + e.Detail)
	}
	s := strings.Join(strings.Fields(b.String()), " ")
	if len(s) > maxReason {
		cut := maxReason - len("…")
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// describedError shows a database error with Describe (SQLSTATE, detail,
// hint) while keeping it in the chain for errors.As and IsRetryable.
type describedError struct{ err error }

func (e describedError) Error() string { return Describe(e.err) }
func (e describedError) Unwrap() error { return e.err }

func describe(err error) error { return describedError{err} }

// IsRetryable reports whether err from this package means the database is
// unavailable or too busy right now, so the same call may succeed later:
// a lost or refused connection, a timeout, the server shutting down or
// starting (SQLSTATE 08*, 57P0x, 57014), out of resources (53*), a
// serialization failure or deadlock (40*), a lock timeout (55P03), a server
// I/O error (58030), or a read-only server during a failover (25006). It is
// false for a *FencedError (reload offsets instead), for a canceled context
// (the caller asked to stop) and for anything else, which is a bug or a
// schema problem that retrying will not fix.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var fenced *FencedError
	if errors.As(err, &fenced) || errors.Is(err, context.Canceled) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		code := pgErr.Code
		switch {
		case strings.HasPrefix(code, "08"), // connection exception
			strings.HasPrefix(code, "53"), // insufficient resources
			strings.HasPrefix(code, "40"), // transaction rollback: serialization, deadlock
			strings.HasPrefix(code, "57P"),
			code == "57014", // query canceled: statement timeout, pg_cancel_backend
			code == "55P03", // lock not available
			code == "58030", // I/O error on the server
			code == "25006": // read-only transaction: a standby during failover
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err), pgconn.SafeToRetry(err),
		errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, ErrUnreachable):
		return true
	}
	return false
}

// CreateOrdersLike creates an empty table name with the same columns,
// defaults, constraints and indexes as orders, so the bench can compare
// RawCopy into it with WriteBatch into orders in one run.
func (db *DB) CreateOrdersLike(ctx context.Context, name string) error {
	if _, err := db.pool.Exec(ctx, "CREATE TABLE "+pgx.Identifier{name}.Sanitize()+" (LIKE orders INCLUDING ALL)"); err != nil {
		return fmt.Errorf("create table %s like orders: %s", name, Describe(err))
	}
	return nil
}

// RawCopy copies orders into table in one COPY, encoded exactly as
// WriteBatch encodes them, with no transaction of its own, no offsets and
// no duplicate or content handling: the baseline the sink bench compares
// WriteBatch with. It returns the number of rows copied.
func (db *DB) RawCopy(ctx context.Context, table string, orders []*order.Order) (int64, error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("raw copy into %s: %w", table, describe(err))
	}
	defer conn.Release()
	src := copySource{}
	src.reset(orders)
	return rawCopy(ctx, conn, table, &src)
}

// RawCopyFunc is RawCopy with the rows drawn from next until it returns
// nil, so a large baseline never holds its rows in memory.
func (db *DB) RawCopyFunc(ctx context.Context, table string, next func() *order.Order) (int64, error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("raw copy into %s: %w", table, describe(err))
	}
	defer conn.Release()
	src := copySource{pull: next}
	src.reset(nil)
	return rawCopy(ctx, conn, table, &src)
}

func rawCopy(ctx context.Context, conn *pgxpool.Conn, table string, src *copySource) (int64, error) {
	sql := "COPY " + pgx.Identifier{table}.Sanitize() + " (" + orderColumns + ") FROM STDIN (FORMAT binary)"
	tag, err := conn.Conn().PgConn().CopyFrom(ctx, src, sql)
	if err != nil {
		return 0, fmt.Errorf("raw copy into %s: %w", table, describe(err))
	}
	return tag.RowsAffected(), nil
}

// CountOrders returns the number of rows in orders.
func (db *DB) CountOrders(ctx context.Context) (int64, error) {
	var n int64
	if err := db.pool.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil {
		return 0, fmt.Errorf("count orders: %w", describe(err))
	}
	return n, nil
}

// copySource is an io.Reader of a binary COPY stream of orders, encoded
// straight from the Order fields into one reused buffer: no per-row
// allocation, no reflection, no []any boxing as pgx's CopyFrom would need.
// It holds at most one read's worth of bytes (pgconn reads 64 KiB at a
// time) plus one row.
type copySource struct {
	rows []*order.Order
	pull func() *order.Order // instead of rows, when set
	next int
	buf  []byte
	off  int
	done bool
}

// pgCopyHeader is the binary COPY signature, flags and header extension
// length (PostgreSQL docs, "Binary Format").
var pgCopyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

func (s *copySource) reset(rows []*order.Order) {
	s.rows, s.next, s.off, s.done = rows, 0, 0, false
	if s.buf == nil {
		s.buf = make([]byte, 0, 80<<10)
	}
	s.buf = append(s.buf[:0], pgCopyHeader...)
}

// Read fills p with the next bytes of the stream, encoding rows as needed.
func (s *copySource) Read(p []byte) (int, error) {
	if s.off > 0 {
		n := copy(s.buf, s.buf[s.off:])
		s.buf, s.off = s.buf[:n], 0
	}
	for len(s.buf) < len(p) && !s.done {
		if s.pull != nil {
			if o := s.pull(); o != nil {
				s.buf = appendCopyRow(s.buf, o)
				continue
			}
			s.pull = nil
			s.rows, s.next = nil, 0
		}
		if s.next < len(s.rows) {
			s.buf = appendCopyRow(s.buf, s.rows[s.next])
			s.next++
		} else {
			s.buf = binary.BigEndian.AppendUint16(s.buf, 0xffff) // trailer: field count -1
			s.done = true
		}
	}
	if len(s.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.buf)
	s.off = n
	return n, nil
}

// appendCopyRow appends one row of the binary COPY format: the field count,
// then each field as a 32-bit length and the type's binary form.
func appendCopyRow(b []byte, o *order.Order) []byte {
	b = binary.BigEndian.AppendUint16(b, numOrderColumns)
	b = appendText(b, o.OrderID)
	b = appendText(b, o.CustomerID)
	b = appendText(b, o.CustomerName)
	b = appendText(b, o.CustomerEmail)
	b = appendJSONB(b, o)
	b = appendNumericCents(b, o.TotalAmount)
	b = appendText(b, o.Status)
	return appendTimestamptz(b, o.CreatedAt)
}

// appendText: varchar's binary form is its text; the server checks the
// encoding (invalid UTF-8 and NUL are refused, SQLSTATE 22021) and the
// length.
func appendText(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// appendJSONB: jsonb's binary form is a version byte, 1, and the JSON text,
// which the server parses as it would the text form.
func appendJSONB(b []byte, o *order.Order) []byte {
	at := len(b)
	b = append(b, 0, 0, 0, 0, 1)
	if o.RawItems != nil {
		b = append(b, o.RawItems...)
	} else {
		b = order.AppendItemsJSON(b, o.Items)
	}
	binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return b
}

// Binary numeric: ndigits, weight, sign and display scale as int16, then
// ndigits base-10000 digits, most significant first; the value is
// Σ digit[i] × 10000^(weight−i).
const (
	numericPositive = 0x0000
	numericNegative = 0x4000
	centsScale      = 2
)

// appendNumericCents writes c/100 exactly, with scale 2, without big.Int:
// the integer part takes at most five base-10000 digits and the cents one
// more (cents × 100, as the two decimals are the first four of the
// fraction). Amounts beyond NUMERIC(10,2) are left for the server to refuse
// (SQLSTATE 22003), like every other content error.
func appendNumericCents(b []byte, c order.Cents) []byte {
	sign := uint16(numericPositive)
	u := uint64(c)
	if c < 0 {
		sign = numericNegative
		u = -u // exact for math.MinInt64 too, as uint64
	}
	units, frac := u/100, u%100
	var digits [6]uint16
	var rev [5]uint16
	ni := 0
	for x := units; x > 0; x /= 10000 {
		rev[ni] = uint16(x % 10000)
		ni++
	}
	n := 0
	for i := ni - 1; i >= 0; i-- {
		digits[n] = rev[i]
		n++
	}
	weight := ni - 1
	if frac != 0 {
		digits[n] = uint16(frac * 100)
		n++
	}
	for n > 0 && digits[n-1] == 0 { // the normal form has no trailing zero digits
		n--
	}
	if n == 0 { // zero: no digits, weight 0, positive
		weight, sign = 0, numericPositive
	}
	b = binary.BigEndian.AppendUint32(b, uint32(8+2*n))
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = binary.BigEndian.AppendUint16(b, uint16(int16(weight)))
	b = binary.BigEndian.AppendUint16(b, sign)
	b = binary.BigEndian.AppendUint16(b, centsScale)
	for _, d := range digits[:n] {
		b = binary.BigEndian.AppendUint16(b, d)
	}
	return b
}

// PostgreSQL counts timestamps in microseconds from 2000-01-01 00:00 UTC.
const pgEpochUnixMicros = 946_684_800 * 1_000_000

// Years outside what an int64 of microseconds from 2000 can hold without
// overflow are sent as a value the server refuses as out of range.
const (
	minTimestampYear = -4713
	maxTimestampYear = 294276
)

// appendTimestamptz writes t in microseconds since the PostgreSQL epoch,
// truncating nanoseconds (toward the past), as the column stores them.
func appendTimestamptz(b []byte, t time.Time) []byte {
	var us int64
	if y := t.Year(); y < minTimestampYear || y > maxTimestampYear {
		us = math.MaxInt64 - 1 // not ±infinity (MinInt64, MaxInt64): refused, SQLSTATE 22008
	} else {
		us = t.UnixMicro() - pgEpochUnixMicros
	}
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(us))
}

// Latencies calls each with processed_at − created_at of every row of
// orders: the end-to-end latency with the database as the witness.
func (db *DB) Latencies(ctx context.Context, each func(time.Duration)) error {
	rows, err := db.pool.Query(ctx, "SELECT (extract(epoch FROM processed_at - created_at) * 1000000)::bigint FROM orders")
	if err != nil {
		return fmt.Errorf("read latencies: %w", describe(err))
	}
	defer rows.Close()
	var us int64
	for rows.Next() {
		if err := rows.Scan(&us); err != nil {
			return fmt.Errorf("read latencies: %w", describe(err))
		}
		each(time.Duration(us) * time.Microsecond)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read latencies: %w", describe(err))
	}
	return nil
}
