package store

// The rows of a batch: the COPY fast path, the staging slow path for
// duplicates, and the savepoint split that isolates refused rows.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// batchWriter stores the rows of one WriteBatch inside its transaction.
//
// The fast path copies the whole batch straight into orders with binary
// COPY, the fastest way into PostgreSQL, inside a savepoint. If the COPY
// hits an order_id that exists (unique violation), the savepoint is rolled
// back and the rows go through the slow path: COPY into a temporary staging
// table, then INSERT … SELECT … ON CONFLICT (order_id) DO NOTHING. If either
// path hits a content error (a unique index other than order_id's counts),
// the range is rolled back and split — around the row the server named in
// its error context when it did (COPY reports "line N"), else in halves —
// and each part is tried again in its own savepoint, until the refused
// rows stand alone and are rejected. Every
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
	n, fresh, err := w.attempt(ctx, lo, hi, viaStaging)
	if err == nil {
		return w.accepted(ctx, lo, hi, int(n), fresh)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return fmt.Errorf("store orders: %s %d rows: %w", attemptName(viaStaging), hi-lo, describe(err))
	}
	// A unique violation in the COPY may be an order_id stored before: the
	// staging path skips those. One there (ON CONFLICT (order_id) DO
	// NOTHING) is of another unique index, one the operator added: the
	// row's content, like a CHECK constraint.
	duplicate := pgErr.Code == uniqueViolation && !viaStaging
	content := isContentError(pgErr) || pgErr.Code == uniqueViolation && viaStaging
	if !duplicate && !content {
		return fmt.Errorf("store orders: %s %d rows: %w", attemptName(viaStaging), hi-lo, describe(err))
	}
	if _, err := w.tx.Exec(ctx, rollbackToSQL); err != nil {
		return fmt.Errorf("store orders: rollback to savepoint: %w", describe(err))
	}
	if duplicate {
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

// accepted counts an attempt that stored n rows of orders[lo:hi] and
// releases its savepoint. fresh is the number of distinct order_ids of the
// range orders did not hold before a staging attempt, -1 for a COPY.
func (w *batchWriter) accepted(ctx context.Context, lo, hi, n int, fresh int64) error {
	w.res.Inserted += n
	if skipped := hi - lo - n; skipped > 0 {
		missing, err := w.missing(ctx, lo, hi)
		if err != nil {
			return err
		}
		// A trigger that rewrites order_id leaves the original missing
		// though its row was stored.
		missing = missing[:min(len(missing), skipped)]
		w.res.Dropped = append(w.res.Dropped, missing...)
		// A COPY fails on a duplicate rather than skip it; the staging
		// INSERT skips the rows of order_ids stored before and the repeats
		// of one within the range. A skipped row neither of those nor
		// missing was stored by a trigger, in a table that inherits from
		// orders, say.
		dups := 0
		if fresh >= 0 {
			dups = min(hi-lo-int(fresh), skipped-len(missing))
		}
		w.res.Duplicates += dups
		w.res.Inserted += skipped - len(missing) - dups
	}
	if lo == 0 && hi == len(w.orders) {
		return nil // the whole batch in one go: the commit releases it
	}
	if _, err := w.tx.Exec(ctx, releaseSQL); err != nil {
		return fmt.Errorf("store orders: release savepoint: %w", describe(err))
	}
	return nil
}

// attempt stores orders[lo:hi] by one path and returns the rows inserted
// and, on the staging path, the distinct order_ids orders did not hold
// before (-1 for a COPY).
func (w *batchWriter) attempt(ctx context.Context, lo, hi int, viaStaging bool) (n, fresh int64, err error) {
	w.attempts++
	w.src.reset(w.orders[lo:hi])
	if !viaStaging {
		tag, err := w.pg.CopyFrom(ctx, &w.src, copyOrdersSQL)
		return tag.RowsAffected(), -1, err
	}
	if _, err := w.pg.CopyFrom(ctx, &w.src, copyStagingSQL); err != nil {
		return 0, 0, err
	}
	if err := w.tx.QueryRow(ctx, newInStagingSQL).Scan(&fresh); err != nil {
		return 0, 0, err
	}
	tag, err := w.tx.Exec(ctx, moveFromStagingSQL)
	return tag.RowsAffected(), fresh, err
}

// missing lists, by index in w.orders, the orders of orders[lo:hi] that
// orders does not hold after an attempt that skipped some: a trigger (or,
// on the staging path, a rule) dropped them.
func (w *batchWriter) missing(ctx context.Context, lo, hi int) ([]int, error) {
	ids := make([]string, hi-lo)
	for i, o := range w.orders[lo:hi] {
		ids[i] = o.OrderID
	}
	rows, err := w.tx.Query(ctx, missingSQL, ids)
	if err != nil {
		return nil, fmt.Errorf("store orders: find dropped rows: %w", describe(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (int, error) {
		var i int64
		err := r.Scan(&i)
		return lo + int(i) - 1, err
	})
	if err != nil {
		return nil, fmt.Errorf("store orders: find dropped rows: %w", describe(err))
	}
	return out, nil
}

func attemptName(viaStaging bool) string {
	if viaStaging {
		return "insert via staging"
	}
	return "copy"
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
