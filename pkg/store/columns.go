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

// columnsSQL lists the columns of a table of the search_path: name, type
// (pg_type.typname) and the type as written (varchar(255)).
const columnsSQL = `SELECT a.attname::text, t.typname::text, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped`

// column is a row of columnsSQL.
type column struct{ name, typ, shown string }

// columns lists the columns of table; missing is the error when there is
// no such table.
func (db *DB) columns(ctx context.Context, table string, missing error) (map[string]column, error) {
	rows, _ := db.pool.Query(ctx, columnsSQL, table)
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var c column
		return c, r.Scan(&c.name, &c.typ, &c.shown)
	})
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == undefinedTable:
		return nil, missing
	case err != nil:
		return nil, fmt.Errorf("read the columns of %s: %w", table, describe(err))
	}
	out := make(map[string]column, len(cols))
	for _, c := range cols {
		out[c.name] = c
	}
	return out, nil
}

// CheckColumns fails when a column a batch writes is missing from orders
// or of a type its binary encoding does not fit: items changed to text
// would store every order with jsonb's version byte in front, silently;
// or when consumer_offsets, or a column of it, is missing. The consumer
// checks at start; a column changed while it runs is not seen until the
// next start.
func (db *DB) CheckColumns(ctx context.Context) error {
	orders, err := db.columns(ctx, "orders", ErrNoOrdersTable)
	if err != nil {
		return err
	}
	for _, name := range strings.Split(orderColumns, ", ") {
		c, ok := orders[name]
		want := columnTypes[name]
		switch {
		case !ok:
			return fmt.Errorf("column %s of orders is missing, and foodpipe writes it: run foodpipe db migrate on a database "+
				"of its own, or add the column back", name)
		case !slices.Contains(want, c.typ):
			return fmt.Errorf("column %s of orders is %s, but foodpipe writes it as %s: change it back "+
				"(ALTER TABLE orders ALTER COLUMN %s TYPE %s) or store the orders in a table of their own",
				name, c.shown, strings.Join(want, " or "), name, want[0])
		}
	}
	offsets, err := db.columns(ctx, "consumer_offsets", ErrNoOffsetsTable)
	if err != nil {
		return err
	}
	for _, name := range offsetColumns {
		if _, ok := offsets[name]; !ok {
			return fmt.Errorf("column %s of consumer_offsets is missing, and foodpipe uses it: run foodpipe db migrate on a database "+
				"of its own, or add the column back", name)
		}
	}
	return nil
}
