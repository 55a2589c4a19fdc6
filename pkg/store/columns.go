package store

// The columns a batch writes, checked against the table: COPY's binary
// format carries no type, so a column of another type would take bytes
// encoded for the type of the migrations.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// columnTypes are the types, by pg_type.typname, each column a batch writes
// may have: the binary encoding of a value is the same for all the types
// listed for its column (varchar and text share it; a numeric's precision,
// a varchar's length are checked by the server on each value).
var columnTypes = map[string][]string{
	"order_id":       {"varchar", "text"},
	"customer_id":    {"varchar", "text"},
	"customer_name":  {"varchar", "text"},
	"customer_email": {"varchar", "text"},
	"items":          {"jsonb"},
	"total_amount":   {"numeric"},
	"status":         {"varchar", "text"},
	"created_at":     {"timestamptz"},
}

// offsetColumns are the columns of consumer_offsets foodpipe reads and
// writes (their values go as parameters, typed by the server).
var offsetColumns = []string{"consumer_group", "topic", "partition", "next_offset", "topic_id"}

// ErrNoOrdersTable: there is no table orders on the search_path.
var ErrNoOrdersTable = errors.New("table orders does not exist")

// ErrNoOffsetsTable: there is no table consumer_offsets on the search_path.
var ErrNoOffsetsTable = errors.New("table consumer_offsets does not exist")

// undefinedTable is SQLSTATE 42P01.
const undefinedTable = "42P01"

const columnTypesSQL = `SELECT a.attname, t.typname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = 'orders'::regclass AND a.attnum > 0 AND NOT a.attisdropped`

const offsetColumnsSQL = `SELECT a.attname::text FROM pg_attribute a
WHERE a.attrelid = 'consumer_offsets'::regclass AND a.attnum > 0 AND NOT a.attisdropped`

// CheckColumns fails when a column a batch writes is missing from orders
// or of a type its binary encoding does not fit: items changed to text
// would store every order with jsonb's version byte in front, silently;
// or when consumer_offsets, or a column of it, is missing. The consumer
// checks at start; a column changed while it runs is not seen until the
// next start.
func (db *DB) CheckColumns(ctx context.Context) error {
	if err := db.checkOrderColumns(ctx); err != nil {
		return err
	}
	return db.checkOffsetColumns(ctx)
}

func (db *DB) checkOffsetColumns(ctx context.Context) error {
	rows, err := db.pool.Query(ctx, offsetColumnsSQL)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == undefinedTable {
		return ErrNoOffsetsTable
	}
	if err != nil {
		return fmt.Errorf("read the columns of consumer_offsets: %w", describe(err))
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("read the columns of consumer_offsets: %w", describe(err))
	}
	for _, name := range offsetColumns {
		if !slices.Contains(found, name) {
			return fmt.Errorf("column %s of consumer_offsets is missing, and foodpipe uses it: run foodpipe db migrate on a database "+
				"of its own, or add the column back", name)
		}
	}
	return nil
}

func (db *DB) checkOrderColumns(ctx context.Context) error {
	rows, err := db.pool.Query(ctx, columnTypesSQL)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == undefinedTable {
		return ErrNoOrdersTable
	}
	if err != nil {
		return fmt.Errorf("read the columns of orders: %w", describe(err))
	}
	defer rows.Close()
	found := map[string]bool{}
	for rows.Next() {
		var name, typ, shown string
		if err := rows.Scan(&name, &typ, &shown); err != nil {
			return fmt.Errorf("read the columns of orders: %w", describe(err))
		}
		want, written := columnTypes[name]
		if !written {
			continue
		}
		found[name] = true
		if !slices.Contains(want, typ) {
			return fmt.Errorf("column %s of orders is %s, but foodpipe writes it as %s: change it back "+
				"(ALTER TABLE orders ALTER COLUMN %s TYPE %s) or store the orders in a table of their own",
				name, shown, strings.Join(want, " or "), name, want[0])
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the columns of orders: %w", describe(err))
	}
	for _, name := range strings.Split(orderColumns, ", ") {
		if !found[name] {
			return fmt.Errorf("column %s of orders is missing, and foodpipe writes it: run foodpipe db migrate on a database "+
				"of its own, or add the column back", name)
		}
	}
	return nil
}
