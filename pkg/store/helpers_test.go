package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/order"
)

// openMigrated opens a pool on a fresh, migrated schema of the test
// database.
func openMigrated(tb testing.TB, opts Options) *DB {
	tb.Helper()
	dsn, _ := testenv.Schema(tb)
	return openDSN(tb, dsn, opts, true)
}

// openDSN opens another pool, e.g. a second consumer on the same schema.
func openDSN(tb testing.TB, dsn string, opts Options, migrate bool) *DB {
	tb.Helper()
	db, err := Open(tb.Context(), config.Postgres{DatabaseURL: dsn, ConnectTimeout: 20 * time.Second}, opts, testenv.Logger(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(db.Close)
	if migrate {
		if _, err := db.Migrate(tb.Context(), migrations); err != nil {
			tb.Fatal(err)
		}
	}
	return db
}

// genOrders returns n distinct generated orders (RawItems nil), created a
// little more than a millisecond apart with nanoseconds truncated, as the
// generator stamps them.
func genOrders(tb testing.TB, seed uint64, n int) []*order.Order {
	tb.Helper()
	t0 := time.Date(2026, 11, 27, 13, 27, 42, 123456789, time.UTC)
	g, err := order.NewGenerator(order.GeneratorConfig{
		Seed: seed,
		Now: func() time.Time {
			t0 = t0.Add(1234567 * time.Nanosecond)
			return t0
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]*order.Order, n)
	for i := range out {
		out[i] = new(order.Order)
		g.Next(out[i])
	}
	return out
}

// decoded decodes a wire record, failing the test if it is not valid.
func decoded(tb testing.TB, record string) *order.Order {
	tb.Helper()
	o := new(order.Order)
	if err := order.DecodeAndValidate([]byte(record), o); err != nil {
		tb.Fatal(err)
	}
	return o
}

// storedCount counts the rows of orders.
func storedCount(tb testing.TB, db *DB) int64 {
	tb.Helper()
	n, err := db.CountOrders(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// loadOffsets is LoadOffsets that fails the test on error, with the next
// offsets only.
func loadOffsets(tb testing.TB, db *DB, group, topic string) map[int32]int64 {
	tb.Helper()
	got, err := db.LoadOffsets(tb.Context(), group, topic)
	if err != nil {
		tb.Fatal(err)
	}
	out := make(map[int32]int64, len(got))
	for p, s := range got {
		out[p] = s.Next
	}
	return out
}

func mapString(m map[int32]int64) string { return fmt.Sprint(m) }

// changed is a copy of o with other content under the same order_id.
func changed(o *order.Order) *order.Order {
	c := *o
	c.CustomerName = "Someone Else"
	return &c
}
