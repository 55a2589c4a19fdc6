package store

// The questions the demo answers from the orders table once the pipeline
// stopped: plain SQL on what the consumers stored. Not on the consumer's
// path.

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/foodpipe/foodpipe/pkg/order"
)

// StatusCount is how many orders have one status, and their value.
type StatusCount struct {
	Status  string      `json:"status"`
	Orders  int64       `json:"orders"`
	Revenue order.Cents `json:"revenue_cents"`
}

// ItemSales is what one menu item sold, summed over the items arrays.
type ItemSales struct {
	ItemID   string      `json:"item_id"`
	Name     string      `json:"name"`
	Quantity int64       `json:"quantity"`
	Orders   int64       `json:"orders"`
	Revenue  order.Cents `json:"revenue_cents"`
}

// HourRevenue is the orders created in one hour (UTC) and their value.
type HourRevenue struct {
	Hour    time.Time   `json:"hour"`
	Orders  int64       `json:"orders"`
	Revenue order.Cents `json:"revenue_cents"`
}

// OrdersByStatus counts the stored orders per status, most first.
func (db *DB) OrdersByStatus(ctx context.Context) ([]StatusCount, error) {
	rows, err := db.pool.Query(ctx, `SELECT status, count(*), (sum(total_amount) * 100)::bigint
		FROM orders GROUP BY status ORDER BY count(*) DESC, status`)
	if err != nil {
		return nil, fmt.Errorf("orders by status: %w", describe(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (s StatusCount, err error) {
		err = r.Scan(&s.Status, &s.Orders, &s.Revenue)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("orders by status: %w", describe(err))
	}
	return out, nil
}

// TopItems returns the n best-selling items by quantity, read from the
// items jsonb of every order (the GIN index does not serve a full scan; a
// scan is what this is).
func (db *DB) TopItems(ctx context.Context, n int) ([]ItemSales, error) {
	rows, err := db.pool.Query(ctx, `SELECT i->>'item_id', min(i->>'name'), sum((i->>'quantity')::bigint), count(*),
			(sum((i->>'subtotal')::numeric) * 100)::bigint
		FROM orders, jsonb_array_elements(items) AS i
		GROUP BY 1 ORDER BY 3 DESC, 1 LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("top items: %w", describe(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (s ItemSales, err error) {
		err = r.Scan(&s.ItemID, &s.Name, &s.Quantity, &s.Orders, &s.Revenue)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("top items: %w", describe(err))
	}
	return out, nil
}

// RevenueByHour sums the stored orders per hour of created_at, in UTC,
// oldest first.
func (db *DB) RevenueByHour(ctx context.Context) ([]HourRevenue, error) {
	rows, err := db.pool.Query(ctx, `SELECT date_trunc('hour', created_at AT TIME ZONE 'UTC'), count(*),
			(sum(total_amount) * 100)::bigint
		FROM orders GROUP BY 1 ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("revenue by hour: %w", describe(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (h HourRevenue, err error) {
		err = r.Scan(&h.Hour, &h.Orders, &h.Revenue)
		h.Hour = time.Date(h.Hour.Year(), h.Hour.Month(), h.Hour.Day(), h.Hour.Hour(), 0, 0, 0, time.UTC)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("revenue by hour: %w", describe(err))
	}
	return out, nil
}
