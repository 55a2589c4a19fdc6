package store

// WriteBatch: one transaction that stores a batch of orders with the
// offsets it covers.

import (
	"context"
	"errors"
	"fmt"

	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// WriteResult says what WriteBatch did with each order of the batch:
// Inserted + Duplicates + len(Dropped) + len(Rejected) == len(orders).
type WriteResult struct {
	// Inserted counts the rows stored by this batch.
	Inserted int
	// Duplicates counts the orders skipped because their order_id was
	// already stored, or appears earlier in the same batch.
	Duplicates int
	// Dropped lists, by ascending index in orders, the orders PostgreSQL
	// skipped without an error and without storing them: a BEFORE INSERT
	// trigger returning NULL or a rule on orders that the operator added.
	// Not stored, not rejected.
	Dropped []int
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
	stagingTable     = "pg_temp.foodpipe_orders_staging"
	createStagingSQL = "CREATE TEMP TABLE IF NOT EXISTS foodpipe_orders_staging (LIKE orders INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
	copyStagingSQL   = "COPY " + stagingTable + " (" + orderColumns + ") FROM STDIN (FORMAT binary)"
	// newInStagingSQL counts the distinct order_ids staged that orders does
	// not hold yet: the rest of the staged rows are duplicates, so that a
	// row the INSERT skipped but orders holds after it (a trigger stored it
	// in a table inheriting from orders) counts as stored, not a duplicate.
	newInStagingSQL = "SELECT count(DISTINCT s.order_id) FROM " + stagingTable + " s\n" +
		"WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = s.order_id)"
	moveFromStagingSQL = "WITH moved AS (DELETE FROM " + stagingTable + " RETURNING " + orderColumns + ")\n" +
		"INSERT INTO orders (" + orderColumns + ") SELECT " + orderColumns + " FROM moved\n" +
		"ON CONFLICT (order_id) DO NOTHING"
	// missingSQL lists (1-based) the order_ids of an attempt that orders does
	// not hold after it: the rows a trigger or rule dropped. A statement of
	// its own, so that its snapshot sees a concurrent writer's commit that
	// ON CONFLICT waited for.
	// beginSQL starts a batch's transaction, in one round trip. READ
	// COMMITTED whatever the database's default: the offset check relies
	// on it (see updateOffsetSQL). Constraints the operator declared
	// DEFERRABLE INITIALLY DEFERRED are checked at each statement instead
	// of at COMMIT, where no savepoint could isolate the refused row and
	// the whole batch would fail on every retry.
	beginSQL   = "BEGIN ISOLATION LEVEL READ COMMITTED; SET CONSTRAINTS ALL IMMEDIATE"
	missingSQL = "SELECT b.i FROM unnest($1::text[]) WITH ORDINALITY AS b(id, i)\n" +
		"WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = b.id) ORDER BY b.i"

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
// order_id's (the total_amount check, a constraint or unique index the
// operator added), program limits on a value (class 54) and an operator's
// trigger raising an exception (P0001, P0004) — are isolated and reported
// in Rejected, not stored; the rest of the batch and the offsets still
// commit. Orders a trigger or rule skipped without an error are counted as
// Dropped. Any other
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
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{BeginQuery: beginSQL})
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
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) && (IsRetryable(err) || ctx.Err() != nil) {
			// No answer from the server, or none waited for: the commit
			// may have landed.
			return w.res, w.attempts, fmt.Errorf("store orders: commit: %w: %w", ErrCommitUnknown, describe(err))
		}
		return WriteResult{}, w.attempts, fmt.Errorf("store orders: commit: %w", describe(err))
	}
	if w.attempts > 1 {
		db.log.Debug("batch took the slow path", "group", group, "orders", len(orders), "attempts", w.attempts,
			"duplicates", w.res.Duplicates, "rejected", len(w.res.Rejected))
	}
	return w.res, w.attempts, nil
}
