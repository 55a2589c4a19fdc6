-- The Kafka id of the topic whose offset a row stores. Kafka gives every
-- topic a new id when it is created, so a topic deleted and created again
-- under the same name is recognised: its old offsets are not applied to the
-- new partitions (which would silently skip their first records). NULL for
-- rows written before this migration or by a cluster without topic ids.

-- +goose Up
ALTER TABLE consumer_offsets ADD COLUMN topic_id TEXT;

-- +goose Down
ALTER TABLE consumer_offsets DROP COLUMN topic_id;
