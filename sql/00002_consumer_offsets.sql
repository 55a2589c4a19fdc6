-- Where each consumer group stands in each partition, written in the same
-- transaction as the rows it covers: this table, not Kafka's committed
-- offsets, is what makes the sink exactly once.

-- +goose Up
CREATE TABLE consumer_offsets (
    consumer_group TEXT        NOT NULL,
    topic          TEXT        NOT NULL,
    partition      INT         NOT NULL,
    next_offset    BIGINT      NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

-- +goose Down
DROP TABLE consumer_offsets;
