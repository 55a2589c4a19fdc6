package pipeline

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/store"
)

// OffsetStore is where a group's stored offsets are read: *store.DB.
type OffsetStore interface {
	LoadOffsets(ctx context.Context, group, topic string) (map[int32]store.StoredOffset, error)
}

// LagRow is how far a group is behind in one partition.
type LagRow struct {
	Partition int32 `json:"partition"`
	// Stored is the next offset stored in PostgreSQL, the one that counts;
	// nil when the group stored nothing for the partition.
	Stored *int64 `json:"stored"`
	// Committed is Kafka's copy, committed after each database commit;
	// nil when there is none.
	Committed *int64 `json:"committed"`
	Start     int64  `json:"start"`
	End       int64  `json:"end"`
	// Lag is the records the group has still to store: End − Stored, or
	// End − Start when nothing usable is stored (consume then reads the
	// partition from its first record).
	Lag int64 `json:"lag"`
	// Note explains a lag not counted from Stored.
	Note string `json:"note,omitempty"`
	// Blocked: consume refuses to resume from Stored (see Note) unless told
	// by --offset-out-of-range, whatever Lag says.
	Blocked bool `json:"blocked"`
}

// LagReport is the lag of a group in a topic.
type LagReport struct {
	Topic      string   `json:"topic"`
	Group      string   `json:"group"`
	Partitions []LagRow `json:"partitions"`
	Total      int64    `json:"total_lag"`
}

// Lag joins what group stored in PostgreSQL for topic, what it committed in
// Kafka and where the partitions end, partition by partition.
func Lag(ctx context.Context, admin *kafka.Admin, db OffsetStore, topic, group string) (LagReport, error) {
	bounds, err := admin.Bounds(ctx, topic)
	if err != nil {
		return LagReport{}, err
	}
	id, err := admin.TopicID(ctx, topic)
	if err != nil {
		return LagReport{}, err
	}
	committed, err := admin.CommittedOffsets(ctx, group, topic)
	if err != nil {
		return LagReport{}, err
	}
	stored, err := db.LoadOffsets(ctx, group, topic)
	if err != nil {
		return LagReport{}, err
	}
	r := LagReport{Topic: topic, Group: group, Partitions: lagRows(bounds, committed, stored, id)}
	for _, row := range r.Partitions {
		r.Total += row.Lag
	}
	return r, nil
}

// lagRows computes one row per partition of bounds, in partition order.
func lagRows(bounds map[int32]kafka.Bounds, committed map[int32]int64, stored map[int32]store.StoredOffset, topicID string) []LagRow {
	rows := make([]LagRow, 0, len(bounds))
	for _, p := range slices.Sorted(maps.Keys(bounds)) {
		b := bounds[p]
		row := LagRow{Partition: p, Start: b.Start, End: b.End}
		if c, ok := committed[p]; ok {
			row.Committed = &c
		}
		s, ok := stored[p]
		if ok {
			row.Stored = &s.Next
		}
		switch {
		case !ok:
			row.Lag = b.End - b.Start
			row.Note = "nothing stored: counted from the partition's first record"
		case s.TopicID != "" && topicID != "" && s.TopicID != topicID:
			row.Lag = b.End - b.Start
			row.Note = fmt.Sprintf("stored for an earlier topic of this name (id %s, now %s): consume refuses it unless --offset-out-of-range", s.TopicID, topicID)
			row.Blocked = true
		case s.Next < 0:
			row.Lag = b.End - b.Start
			row.Note = "stored offset is negative (set by hand?): consume refuses it unless --offset-out-of-range"
			row.Blocked = true
		case s.Next < b.Start:
			row.Lag = b.End - b.Start
			row.Note = fmt.Sprintf("%d records deleted by retention before they were stored: consume refuses it unless --offset-out-of-range", b.Start-s.Next)
			row.Blocked = true
		case s.Next > b.End:
			row.Lag = b.End - b.Start
			row.Note = "stored offset past the end (topic deleted and created again?): consume refuses it unless --offset-out-of-range"
			row.Blocked = true
		default:
			row.Lag = b.End - s.Next
		}
		rows = append(rows, row)
	}
	return rows
}

// Over returns the rows that lag more than limit records, and those consume
// cannot resume (which may lag 0), worst first.
func (r LagReport) Over(limit int64) []LagRow {
	var over []LagRow
	for _, row := range r.Partitions {
		if row.Lag > limit || row.Blocked {
			over = append(over, row)
		}
	}
	slices.SortStableFunc(over, func(a, b LagRow) int { return cmp.Compare(b.Lag, a.Lag) })
	return over
}
