package store

// WriteBatch against what an operator may add to the orders table:
// triggers that refuse or drop rows, a unique index, a NOT NULL column, a
// deferred constraint. A row's fault is rejected alone; a schema mistake
// fails the batch whole.

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// TestWriteBatchRejectsTriggerExceptions: a trigger the operator added
// refuses some orders (RAISE EXCEPTION, P0001; a failed ASSERT, P0004).
// Like a CHECK constraint, that is the row's fault: the refused orders are
// rejected with the trigger's message, the others stored, the offsets
// advanced — one order never halts the batch.
func TestWriteBatchRejectsTriggerExceptions(t *testing.T) {
	t.Parallel()
	db := openMigrated(t, Options{})
	ctx := t.Context()
	if _, err := db.pool.Exec(ctx, `
CREATE FUNCTION refuse_blocked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.customer_name = 'Blocked Customer' THEN
		RAISE EXCEPTION 'customer % is blocked', NEW.customer_id;
	END IF;
	ASSERT NEW.customer_name <> 'Asserted Customer', 'asserted customers are refused';
	RETURN NEW;
END $$;
CREATE TRIGGER refuse_blocked BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION refuse_blocked();`); err != nil {
		t.Fatal(err)
	}
	orders := genOrders(t, 21, 40)
	want := map[int]string{3: "P0001", 17: "P0004", 18: "P0001", 39: "P0004"}
	for i, code := range want {
		orders[i].CustomerName = map[string]string{"P0001": "Blocked Customer", "P0004": "Asserted Customer"}[code]
	}
	res, err := db.WriteBatch(ctx, "g", orders, []Offset{{Topic: "t", Partition: 0, Expected: -1, Next: 40}}, nil)
	if err != nil {
		t.Fatalf("a trigger refusing 4 orders of 40 failed the batch: %v", err)
	}
	if len(res.Rejected) != len(want) || res.Inserted != len(orders)-len(want) {
		t.Fatalf("result %+v, want orders %v rejected and the other %d stored", res, want, len(orders)-len(want))
	}
	for _, r := range res.Rejected {
		code, ok := want[r.Index]
		if !ok || !strings.Contains(r.Reason, code) ||
			!strings.Contains(r.Reason, map[string]string{"P0001": "is blocked", "P0004": "asserted customers are refused"}[code]) {
			t.Errorf("rejected %d: %q; want orders %v with the trigger's message and SQLSTATE", r.Index, r.Reason, want)
		}
	}
	if got := storedCount(t, db); got != int64(len(orders)-len(want)) {
		t.Errorf("stored %d rows, want %d", got, len(orders)-len(want))
	}
	if got := loadOffsets(t, db, "g", "t"); got[0] != 40 {
		t.Errorf("offsets = %v, want partition 0 at 40", got)
	}
}

// TestWriteBatchRejectsOtherUniqueViolations: a unique index the operator
// added besides the primary key (one order per e-mail address) refuses
// the orders that break it, against a stored row or within the batch.
// They are rejected, naming the index; a duplicate order_id is still a
// duplicate; everything else is stored.
func TestWriteBatchRejectsOtherUniqueViolations(t *testing.T) {
	t.Parallel()
	db := openMigrated(t, Options{})
	ctx := t.Context()
	if _, err := db.pool.Exec(ctx, `CREATE UNIQUE INDEX one_order_per_email ON orders (customer_email)`); err != nil {
		t.Fatal(err)
	}
	stored := genOrders(t, 31, 2)
	if _, err := db.WriteBatch(ctx, "g", stored, nil, nil); err != nil {
		t.Fatal(err)
	}
	orders := genOrders(t, 32, 30)
	for i, o := range orders {
		o.CustomerEmail = fmt.Sprintf("customer-%d@example.com", i)
	}
	orders[4].CustomerEmail = stored[0].CustomerEmail   // taken by a stored order
	orders[12].CustomerEmail = orders[11].CustomerEmail // taken earlier in the batch
	orders[20] = stored[1]                              // a duplicate order
	res, err := db.WriteBatch(ctx, "g", orders, []Offset{{Topic: "t", Partition: 0, Expected: -1, Next: 30}}, nil)
	if err != nil {
		t.Fatalf("a unique index refusing 2 orders of 30 failed the batch: %v", err)
	}
	var rejected []int
	for _, r := range res.Rejected {
		rejected = append(rejected, r.Index)
		if !strings.Contains(r.Reason, "one_order_per_email") || !strings.Contains(r.Reason, "23505") {
			t.Errorf("rejected %d: %q; want the index's name and SQLSTATE", r.Index, r.Reason)
		}
	}
	if !reflect.DeepEqual(rejected, []int{4, 12}) || res.Inserted != 27 || res.Duplicates != 1 {
		t.Fatalf("result %+v, want orders 4 and 12 rejected, 27 stored, 1 duplicate", res)
	}
	if got := storedCount(t, db); got != 2+27 {
		t.Errorf("stored %d rows, want %d", got, 2+27)
	}
	if got := loadOffsets(t, db, "g", "t"); got[0] != 30 {
		t.Errorf("offsets = %v, want partition 0 at 30", got)
	}
}

// TestWriteBatchColumnAddedNotNull: a NOT NULL column without a default
// that the operator added to orders refuses every order, whatever it
// holds: a schema mistake, not content. The batch fails whole (nothing
// stored, nothing rejected, offsets unmoved), the error is not retryable,
// and it says what to change.
func TestWriteBatchColumnAddedNotNull(t *testing.T) {
	t.Parallel()
	db := openMigrated(t, Options{})
	ctx := t.Context()
	if _, err := db.pool.Exec(ctx, `ALTER TABLE orders ADD COLUMN region text NOT NULL`); err != nil {
		t.Fatal(err)
	}
	res, err := db.WriteBatch(ctx, "g", genOrders(t, 41, 20), []Offset{{Topic: "t", Partition: 0, Expected: -1, Next: 20}}, nil)
	if err == nil || IsRetryable(err) || len(res.Rejected) != 0 {
		t.Fatalf("WriteBatch: result %+v, error %v; want a permanent error and no order rejected", res, err)
	}
	if msg := describe(err).Error(); !strings.Contains(msg, `column "region"`) || !strings.Contains(msg, "SET DEFAULT") ||
		strings.Contains(msg, "Failing row") {
		t.Errorf("error %q: want the column named and the fix, not the order", msg)
	}
	if got := storedCount(t, db); got != 0 {
		t.Errorf("stored %d rows, want none", got)
	}
	if got := loadOffsets(t, db, "g", "t"); len(got) != 0 {
		t.Errorf("offsets = %v, want none stored", got)
	}
}

// TestWriteBatchCountsRowsATriggerDropped: a BEFORE INSERT trigger that
// returns NULL makes PostgreSQL skip a row without an error. Such orders
// are counted as Dropped — neither stored nor duplicates — on the COPY
// path and on the staging path (a batch with a duplicate), so that the
// counts add up to the batch and say where each order went. A trigger
// that stores the row in a table inheriting from orders (partitioning as
// it was done before PostgreSQL 10) and returns NULL stored it: it counts
// as inserted on both paths, not as a duplicate.
func TestWriteBatchCountsRowsATriggerDropped(t *testing.T) {
	t.Parallel()
	db := openMigrated(t, Options{})
	ctx := t.Context()
	stored := genOrders(t, 51, 1)
	if _, err := db.WriteBatch(ctx, "g", stored, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, `
CREATE FUNCTION drop_test_orders() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.customer_name = 'Test Customer' THEN RETURN NULL; END IF;
	IF NEW.customer_name = 'Archived Customer' THEN INSERT INTO orders_archive VALUES (NEW.*); RETURN NULL; END IF;
	RETURN NEW;
END $$;
CREATE TABLE orders_archive () INHERITS (orders);
CREATE TRIGGER drop_test_orders BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION drop_test_orders();`); err != nil {
		t.Fatal(err)
	}
	for _, withDuplicate := range []bool{false, true} {
		orders := genOrders(t, 52+map[bool]uint64{false: 0, true: 1}[withDuplicate], 30)
		orders[5].CustomerName, orders[6].CustomerName = "Test Customer", "Test Customer"
		orders[9].CustomerName = "Archived Customer"
		wantDup := 0
		if withDuplicate {
			orders[20], wantDup = stored[0], 1
			orders[25] = orders[24] // a repeat within the batch is a duplicate too
			wantDup++
		}
		before := storedCount(t, db)
		res, err := db.WriteBatch(ctx, "g", orders, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(res.Dropped, []int{5, 6}) || res.Duplicates != wantDup || res.Inserted != 28-wantDup ||
			len(res.Rejected) != 0 {
			t.Errorf("with a duplicate %v: result %+v, want orders 5 and 6 dropped, %d duplicates, %d inserted",
				withDuplicate, res, wantDup, 28-wantDup)
		}
		if got := storedCount(t, db) - before; got != int64(res.Inserted) {
			t.Errorf("with a duplicate %v: %d rows more, %d inserted", withDuplicate, got, res.Inserted)
		}
	}
}

// TestWriteBatchRejectsDeferredConstraintViolations: a constraint the
// operator declared DEFERRABLE INITIALLY DEFERRED is checked at COMMIT,
// where no savepoint can isolate the row: the whole batch failed, on every
// restart. The transaction makes constraints immediate, so the refused
// orders are rejected one by one like any other.
func TestWriteBatchRejectsDeferredConstraintViolations(t *testing.T) {
	t.Parallel()
	db := openMigrated(t, Options{})
	ctx := t.Context()
	orders := genOrders(t, 61, 30)
	known := map[string]bool{}
	for i, o := range orders {
		if i != 7 && i != 21 {
			known[o.CustomerID] = true
		}
	}
	delete(known, orders[7].CustomerID)
	delete(known, orders[21].CustomerID)
	if _, err := db.pool.Exec(ctx, `CREATE TABLE customers (customer_id varchar(50) PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	for id := range known {
		if _, err := db.pool.Exec(ctx, `INSERT INTO customers VALUES ($1)`, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.pool.Exec(ctx, `ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id)
		REFERENCES customers DEFERRABLE INITIALLY DEFERRED`); err != nil {
		t.Fatal(err)
	}
	var want []int
	for i, o := range orders {
		if !known[o.CustomerID] {
			want = append(want, i)
		}
	}
	res, err := db.WriteBatch(ctx, "g", orders, []Offset{{Topic: "t", Partition: 0, Expected: -1, Next: 30}}, nil)
	if err != nil {
		t.Fatalf("a deferred foreign key refusing %d orders failed the batch: %v", len(want), err)
	}
	var got []int
	for _, r := range res.Rejected {
		got = append(got, r.Index)
		if !strings.Contains(r.Reason, "orders_customer_fk") || !strings.Contains(r.Reason, "23503") {
			t.Errorf("rejected %d: %q", r.Index, r.Reason)
		}
	}
	if !reflect.DeepEqual(got, want) || res.Inserted != len(orders)-len(want) {
		t.Errorf("result %+v, want orders %v rejected and the rest stored", res, want)
	}
	if n := storedCount(t, db); n != int64(len(orders)-len(want)) {
		t.Errorf("%d rows stored, want %d", n, len(orders)-len(want))
	}
}
