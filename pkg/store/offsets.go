package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Offset advances one partition's stored position in a WriteBatch: the
// batch covers the records [Expected, Next) of the partition.
type Offset struct {
	Topic     string
	Partition int32
	// Expected is the next_offset the caller believes is stored now, as
	// LoadOffsets returned it or the previous WriteBatch set it; -1 means
	// the caller believes there is no row yet (a partition never stored).
	Expected int64
	// Next is the next_offset stored by this batch: the offset of the first
	// record the batch does not cover. Next == Expected (no progress) is
	// allowed and still checked, see WriteBatch.
	Next int64
	// TopicID is the Kafka id of the topic the offsets belong to, stored
	// with them; empty leaves the stored id as it is.
	TopicID string
}

// String says what an offset update does, for logs: topic/partition:from→to
// (from -1: no row yet).
func (o Offset) String() string {
	return o.Topic + "/" + strconv.Itoa(int(o.Partition)) + ":" + strconv.FormatInt(o.Expected, 10) + "→" + strconv.FormatInt(o.Next, 10)
}

// StoredOffset is where a group stands in a partition, as LoadOffsets reads
// it.
type StoredOffset struct {
	Next    int64
	TopicID string // empty when unknown
}

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// String formats the partition the way Kafka tools do: topic/partition.
func (tp TopicPartition) String() string {
	return tp.Topic + "/" + strconv.Itoa(int(tp.Partition))
}

// FencedError is returned by WriteBatch when the stored next_offset of some
// partitions is not the Offset's Expected: another consumer owns the
// partition now and has moved it, or this caller's idea of it is stale (for
// example a previous commit whose outcome was unknown did succeed). Nothing
// of the batch was stored, neither rows nor offsets. The caller drops the
// work of the listed partitions, reloads their offsets with LoadOffsets and
// may retry the other partitions' work.
type FencedError struct {
	// Partitions lists every partition whose check failed, sorted by topic
	// and partition.
	Partitions []TopicPartition
	// Locked says the check could not even run: another transaction held
	// the partitions' offset rows for longer than the lock timeout (a
	// consumer stalled in the middle of a batch). Treat it as fencing for
	// these partitions only, and try them again later.
	Locked bool
}

// Error says which partitions were fenced, in one line.
func (e *FencedError) Error() string {
	names := make([]string, len(e.Partitions))
	for i, tp := range e.Partitions {
		names[i] = tp.String()
	}
	if e.Locked {
		return "store orders: fenced: the stored offset of " + strings.Join(names, ", ") +
			" is locked by another transaction (a stalled consumer?) for longer than the lock timeout; nothing of the batch was stored"
	}
	return "store orders: fenced: stored offset is not the expected one for " + strings.Join(names, ", ") +
		" (another consumer moved it); nothing of the batch was stored"
}

// The compare-and-set statements of WriteBatch, one per partition.
//
// A partition with a stored row moves only if next_offset is still the
// expected value. In READ COMMITTED (the default isolation, kept on
// purpose) an UPDATE that finds the row locked by a concurrent writer waits
// for it, then re-evaluates its WHERE on the row that writer committed, so
// of two writers with the same Expected exactly one updates a row and the
// other sees 0 rows: fenced, with no serialization error to retry. A plain
// UPDATE rather than INSERT … ON CONFLICT DO UPDATE … WHERE: the upsert
// would create a missing row for a caller that expected one, and a missing
// row (deleted by an operator to reset the group) must fence such a caller
// as well, since its stored offset is not the one the caller expected.
const updateOffsetSQL = `UPDATE consumer_offsets SET next_offset = $4, topic_id = coalesce($6, topic_id), updated_at = now()
WHERE consumer_group = $1 AND topic = $2 AND partition = $3 AND next_offset = $5`

// A partition without a row (Expected == -1) is created only if nobody
// created it meanwhile: a concurrent inserter waits on the first one's
// uncommitted key, then does nothing (0 rows, fenced) if it committed.
const insertOffsetSQL = `INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset, topic_id)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT (consumer_group, topic, partition) DO NOTHING`

// lockNotAvailable is lock_timeout expiring (SQLSTATE 55P03).
const lockNotAvailable = "55P03"

// checkOffsets rejects offsets no correct caller passes; they are bugs,
// reported before anything is sent to the database.
func checkOffsets(offsets []Offset) error {
	return checkOffsetsMoving(offsets, false)
}

// checkOffsetsMoving is checkOffsets; backwards allows Next < Expected.
func checkOffsetsMoving(offsets []Offset, backwards bool) error {
	seen := make(map[TopicPartition]bool, len(offsets))
	for _, o := range offsets {
		tp := TopicPartition{o.Topic, o.Partition}
		switch {
		case o.Topic == "":
			return fmt.Errorf("store orders: offset for partition %d has no topic", o.Partition)
		case o.Partition < 0:
			return fmt.Errorf("store orders: offset for %s: negative partition", tp)
		case o.Expected < -1:
			return fmt.Errorf("store orders: offset for %s: expected %d, want -1 (no row) or an offset", tp, o.Expected)
		case o.Next < 0 || o.Next < o.Expected && !backwards:
			return fmt.Errorf("store orders: offset for %s: next %d before expected %d", tp, o.Next, o.Expected)
		case seen[tp]:
			return fmt.Errorf("store orders: offset for %s given twice", tp)
		}
		seen[tp] = true
	}
	return nil
}

// casOffsets runs the compare-and-set of every offset in one round trip and
// returns the partitions whose check failed. The offsets are applied in
// topic and partition order, so two writers that share several partitions
// lock their rows in the same order and cannot deadlock on them.
func casOffsets(ctx context.Context, tx pgx.Tx, group string, offsets []Offset) ([]TopicPartition, error) {
	if len(offsets) == 0 {
		return nil, nil
	}
	sorted := slices.Clone(offsets)
	slices.SortFunc(sorted, func(a, b Offset) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	b := &pgx.Batch{}
	for _, o := range sorted {
		queueOffset(b, group, o)
	}
	br := tx.SendBatch(ctx, b)
	var fenced []TopicPartition
	for _, o := range sorted {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			tp := TopicPartition{o.Topic, o.Partition}
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == lockNotAvailable {
				// Waiting longer would stall every partition of the batch
				// behind one stalled writer: fence this one instead.
				return nil, &FencedError{Partitions: []TopicPartition{tp}, Locked: true}
			}
			return nil, fmt.Errorf("store orders: offset of %s: %w", tp, describe(err))
		}
		if tag.RowsAffected() != 1 {
			fenced = append(fenced, TopicPartition{o.Topic, o.Partition})
		}
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("store orders: offsets: %w", describe(err))
	}
	return fenced, nil
}

func queueOffset(b *pgx.Batch, group string, o Offset) {
	var id any // NULL: keep (update) or unknown (insert)
	if o.TopicID != "" {
		id = o.TopicID
	}
	if o.Expected == -1 {
		b.Queue(insertOffsetSQL, group, o.Topic, o.Partition, o.Next, id)
	} else {
		b.Queue(updateOffsetSQL, group, o.Topic, o.Partition, o.Next, o.Expected, id)
	}
}

// MoveOffset sets one partition's stored offset from o.Expected (-1: no
// row) to o.Next, forwards or backwards, with no rows: an explicit reset,
// such as the consumer's --offset-out-of-range policy applied to a topic
// created again. Like WriteBatch it is a compare-and-set: if the stored
// offset is not o.Expected, nothing changes and the error is a *FencedError.
func (db *DB) MoveOffset(ctx context.Context, group string, o Offset) error {
	if err := checkOffsetsMoving([]Offset{o}, true); err != nil {
		return err
	}
	b := &pgx.Batch{}
	queueOffset(b, group, o)
	br := db.pool.SendBatch(ctx, b)
	tag, err := br.Exec()
	// Close releases the pooled connection (and reports a late error).
	err = errors.Join(err, br.Close())
	tp := TopicPartition{o.Topic, o.Partition}
	if err != nil {
		return fmt.Errorf("move offset of %s: %w", tp, describe(err))
	}
	if tag.RowsAffected() != 1 {
		return &FencedError{Partitions: []TopicPartition{tp}}
	}
	return nil
}

// Groups lists the consumer groups that stored offsets for topic, sorted.
func (db *DB) Groups(ctx context.Context, topic string) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT DISTINCT consumer_group FROM consumer_offsets WHERE topic = $1 ORDER BY 1`, topic)
	if err != nil {
		return nil, fmt.Errorf("list groups of topic %s: %w", topic, describe(err))
	}
	groups, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list groups of topic %s: %w", topic, describe(err))
	}
	return groups, nil
}

// LoadOffsets returns where group stands in every partition of topic it has
// stored, keyed by partition. A partition missing from the map has no row:
// pass Expected -1 for its first batch.
func (db *DB) LoadOffsets(ctx context.Context, group, topic string) (map[int32]StoredOffset, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT partition, next_offset, coalesce(topic_id, '') FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2`, group, topic)
	if err != nil {
		return nil, fmt.Errorf("load offsets of group %s, topic %s: %w", group, topic, describe(err))
	}
	out := map[int32]StoredOffset{}
	var p int32
	var s StoredOffset
	_, err = pgx.ForEachRow(rows, []any{&p, &s.Next, &s.TopicID}, func() error {
		out[p] = s
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load offsets of group %s, topic %s: %w", group, topic, describe(err))
	}
	return out, nil
}
