package store

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkIndexCost measures what each index of the schema costs the
// ingest: a raw COPY of the same rows (FOODPIPE_BENCH_ROWS, default
// 200,000) into tables shaped like orders with the primary key and one
// variant of secondary indexes each, in one run:
//
//	go test -run x -bench IndexCost -benchtime 1x -count 3 ./pkg/store
//
// The primary key is in every variant: order_id is what makes a
// re-produced order land once, never optional.
func BenchmarkIndexCost(b *testing.B) {
	db := openMigrated(b, Options{})
	orders := benchOrders(b)
	const created = "CREATE INDEX ON %s (created_at)"
	const customer = "CREATE INDEX ON %s (customer_id, created_at)"
	const ginOps = "CREATE INDEX ON %s USING GIN (items)"
	const ginPathOps = "CREATE INDEX ON %s USING GIN (items jsonb_path_ops)"
	const ginPathOpsSmallList = ginPathOps + " WITH (gin_pending_list_limit = 256)"
	variants := []struct {
		name    string
		indexes []string
	}{
		{"pk only", nil},
		{"pk+created_at", []string{created}},
		{"pk+customer_id,created_at", []string{customer}},
		{"pk+gin jsonb_ops", []string{ginOps}},
		{"pk+gin jsonb_path_ops", []string{ginPathOps}},
		{"all, gin jsonb_ops (until migration 4)", []string{created, customer, ginOps}},
		{"all, gin jsonb_path_ops (migration 4)", []string{created, customer, ginPathOps}},
		{"all, gin jsonb_path_ops, 256 kB pending list (migration 5)", []string{created, customer, ginPathOpsSmallList}},
	}
	for i, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			table := fmt.Sprintf("orders_variant_%d", i)
			ddl := []string{"DROP TABLE IF EXISTS " + table,
				"CREATE TABLE " + table + " (LIKE orders INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
				"ALTER TABLE " + table + " ADD PRIMARY KEY (order_id)"}
			for _, ix := range v.indexes {
				ddl = append(ddl, fmt.Sprintf(ix, table))
			}
			for _, s := range ddl {
				if _, err := db.pool.Exec(b.Context(), s); err != nil {
					b.Fatalf("%s: %v", s, err)
				}
			}
			var elapsed time.Duration
			for range b.N {
				b.StopTimer()
				truncate(b, db, table)
				b.StartTimer()
				start := time.Now()
				drainRawCopy(b, db, table, orders, len(orders))
				mergePending(b, db, table)
				elapsed += time.Since(start)
			}
			b.ReportMetric(float64(b.N*len(orders))/elapsed.Seconds(), "rows/s")
			var size int64
			if err := db.pool.QueryRow(b.Context(), "SELECT pg_indexes_size($1::regclass)", table).Scan(&size); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(size)/float64(len(orders)), "index_bytes/row")
		})
	}
}

// mergePending merges what a GIN index of table still keeps in its pending
// list into the index, so that each variant is timed with all its rows
// indexed: the merge would otherwise fall after the timer, favouring the
// larger pending lists.
func mergePending(b *testing.B, db *DB, table string) {
	b.Helper()
	const q = `SELECT gin_clean_pending_list(i.indexrelid) FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
		WHERE i.indrelid = $1::regclass AND a.amname = 'gin'`
	if _, err := db.pool.Exec(b.Context(), q, table); err != nil {
		b.Fatal(err)
	}
}
