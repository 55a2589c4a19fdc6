-- The GIN index on items keeps a pending list of 256 kB instead of
-- PostgreSQL's 4 MB default. With fastupdate (on by default) new index
-- entries go to the pending list, and the insert that pushes the list past
-- gin_pending_list_limit merges all of it into the index inside its own
-- transaction: at 10,000 orders/s that made one COPY in twenty a 30-50 ms
-- stall, most of the 99th percentile of the latency to the commit. A
-- smaller list is merged more often in smaller pieces: p99 to the commit
-- about 20 ms instead of 51-57 ms, at the same ingest rate within the
-- runs' noise (docs/benchmarks.md). 64 kB (the minimum) cut the ingest by
-- a quarter; fastupdate = off made the median and the tail worse.
--
-- Changing the option takes an ACCESS EXCLUSIVE lock on the index for a
-- moment (a catalog update, nothing is rebuilt): it waits for the batch in
-- hand and holds the next one that long. The lock_timeout makes the
-- migration fail, and leave nothing changed, rather than queue writers
-- behind a long query on orders; run it again then.

-- +goose Up
SET LOCAL lock_timeout = '10s';
ALTER INDEX orders_items_path_idx SET (gin_pending_list_limit = 256);

-- +goose Down
SET LOCAL lock_timeout = '10s';
ALTER INDEX orders_items_path_idx RESET (gin_pending_list_limit);
