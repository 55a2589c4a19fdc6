-- The orders table of the SPEC. Money is NUMERIC(10,2), exact; both
-- timestamps carry their zone. order_id is the primary key, which is what
-- makes a re-produced order land once (inserts skip existing ids).

-- +goose Up
CREATE TABLE orders (
    order_id       VARCHAR(50)   PRIMARY KEY,
    customer_id    VARCHAR(50)   NOT NULL,
    customer_name  VARCHAR(100)  NOT NULL,
    customer_email VARCHAR(100)  NOT NULL,
    items          JSONB         NOT NULL,
    total_amount   NUMERIC(10,2) NOT NULL CHECK (total_amount > 0),
    status         VARCHAR(20)   NOT NULL,
    created_at     TIMESTAMPTZ   NOT NULL,
    processed_at   TIMESTAMPTZ   NOT NULL DEFAULT now()
);

-- Time-range scans ("orders of the last hour").
CREATE INDEX orders_created_at_idx ON orders (created_at);
-- A customer's orders by time; also serves lookups by customer_id alone,
-- so no separate customer_id index (every index slows ingestion).
CREATE INDEX orders_customer_id_created_at_idx ON orders (customer_id, created_at);
-- Containment queries on items: items @> '[{"item_id": "ITEM-003"}]'.
CREATE INDEX orders_items_idx ON orders USING GIN (items);

-- +goose Down
DROP TABLE orders;
