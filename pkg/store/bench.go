package store

// What the benchmarks need besides the sink: a baseline table, a raw
// COPY, row counts and latencies read back. Not on the consumer's path.

import (
	"context"
	"fmt"
	"time"

	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// CreateOrdersLike creates an empty table name with the same columns,
// defaults, constraints and indexes as orders, so the bench can compare
// RawCopy into it with WriteBatch into orders in one run.
func (db *DB) CreateOrdersLike(ctx context.Context, name string) error {
	if _, err := db.pool.Exec(ctx, "CREATE TABLE "+pgx.Identifier{name}.Sanitize()+" (LIKE orders INCLUDING ALL)"); err != nil {
		return fmt.Errorf("create table %s like orders: %w", name, describe(err))
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

// CommitLatencies calls each with the commit time of every row's
// transaction (pg_xact_commit_timestamp of its xmin) − created_at: the
// end-to-end latency to the moment the row became visible to readers. It
// needs track_commit_timestamp = on; ok is false (and each is not called)
// when the server keeps no commit times.
func (db *DB) CommitLatencies(ctx context.Context, each func(time.Duration)) (ok bool, err error) {
	var on string
	if err := db.pool.QueryRow(ctx, "SHOW track_commit_timestamp").Scan(&on); err != nil {
		return false, fmt.Errorf("read commit latencies: %w", describe(err))
	}
	if on != "on" {
		return false, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT (extract(epoch FROM pg_xact_commit_timestamp(xmin) - created_at) * 1000000)::bigint
		FROM orders WHERE pg_xact_commit_timestamp(xmin) IS NOT NULL`)
	if err != nil {
		return false, fmt.Errorf("read commit latencies: %w", describe(err))
	}
	defer rows.Close()
	var us int64
	for rows.Next() {
		if err := rows.Scan(&us); err != nil {
			return false, fmt.Errorf("read commit latencies: %w", describe(err))
		}
		each(time.Duration(us) * time.Microsecond)
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("read commit latencies: %w", describe(err))
	}
	return true, nil
}
