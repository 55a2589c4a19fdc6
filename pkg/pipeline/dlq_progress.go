package pipeline

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/foodpipe/foodpipe/pkg/kafka"
)

// How far dlq replay got: each class's group commits, in the dead-letter
// topic, the next offset not yet replayed. A letter that failed (its source
// topic refuses it) holds its partition's offset back while the letters
// sent beside it were acknowledged; those are listed in the commit's
// metadata, so that the next run, which starts at the failed letter, does
// not send them again.

// aheadSet lists, by partition, the offsets of letters replayed past their
// group's committed offset.
type aheadSet map[int32]map[int64]bool

func (a aheadSet) add(partition int32, offset int64) {
	if a[partition] == nil {
		a[partition] = map[int64]bool{}
	}
	a[partition][offset] = true
}

// aheadPrefix starts the metadata of a replay group's commit that lists
// letters replayed past it: "foodpipe-replayed:105-230,232".
const aheadPrefix = "foodpipe-replayed:"

// maxAheadMetadata keeps the metadata within Kafka's default
// offset.metadata.max.bytes (4096).
const maxAheadMetadata = 4000

// loadProgress reads each class's committed offsets and the letters its
// metadata lists as replayed past them.
func loadProgress(ctx context.Context, admin *kafka.Admin, topic string, groups map[string]string) (map[string]map[int32]int64, aheadSet, error) {
	done, ahead := map[string]map[int32]int64{}, aheadSet{}
	for c, g := range groups {
		pos, err := admin.CommittedPositions(ctx, g, topic)
		if err != nil {
			return nil, nil, err
		}
		done[c] = map[int32]int64{}
		for p, o := range pos {
			done[c][p] = o.Next
			for _, off := range parseAhead(o.Metadata) {
				if off >= o.Next {
					ahead.add(p, off)
				}
			}
		}
	}
	return done, ahead, nil
}

// settle returns how far a batch got in each partition: past the batch,
// or to its first letter that was not acknowledged. The acknowledged
// letters past that point join ahead.
func settle(batchNext map[int32]int64, todo []kafka.Letter, acked []bool, ahead aheadSet) map[int32]int64 {
	next := maps.Clone(batchNext)
	for i, l := range todo {
		if !acked[i] && l.Offset < next[l.Partition] {
			next[l.Partition] = l.Offset
		}
	}
	for i, l := range todo {
		if acked[i] && l.Offset >= next[l.Partition] {
			ahead.add(l.Partition, l.Offset)
		}
	}
	return next
}

// commitReplayed records next for every class's group, never moving one
// back, with the letters of ahead past it in the metadata.
func commitReplayed(ctx context.Context, log *slog.Logger, admin *kafka.Admin, topic string, groups map[string]string,
	done map[string]map[int32]int64, ahead aheadSet, next map[int32]int64) error {
	for c, g := range groups {
		pos := map[int32]kafka.Position{}
		for p, n := range next {
			n = max(n, done[c][p])
			meta, left := encodeAhead(ahead[p], n)
			if left > 0 {
				log.Warn("too many dead letters replayed past a failed one to record: the next run sends them again",
					"group", g, "partition", p, "not_recorded", left)
			}
			pos[p] = kafka.Position{Next: n, Metadata: meta}
		}
		if err := admin.CommitPositions(ctx, g, topic, pos); err != nil {
			return err
		}
		if done[c] == nil {
			done[c] = map[int32]int64{}
		}
		for p, o := range pos {
			done[c][p] = o.Next
		}
	}
	return nil
}

// encodeAhead writes the offsets of set from next on as ranges, as many as
// fit maxAheadMetadata, and says how many did not fit.
func encodeAhead(set map[int64]bool, next int64) (string, int) {
	var offs []int64
	for o := range set {
		if o >= next {
			offs = append(offs, o)
		}
	}
	if len(offs) == 0 {
		return "", 0
	}
	slices.Sort(offs)
	var b strings.Builder
	b.WriteString(aheadPrefix)
	for i := 0; i < len(offs); {
		j := i
		for j+1 < len(offs) && offs[j+1] == offs[j]+1 {
			j++
		}
		r := strconv.FormatInt(offs[i], 10)
		if j > i {
			r += "-" + strconv.FormatInt(offs[j], 10)
		}
		if b.Len()+len(r)+1 > maxAheadMetadata {
			return strings.TrimSuffix(b.String(), ","), len(offs) - i
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(r)
		i = j + 1
	}
	return b.String(), 0
}

// parseAhead reads encodeAhead's ranges; metadata it did not write gives
// none.
func parseAhead(meta string) []int64 {
	rest, ok := strings.CutPrefix(meta, aheadPrefix)
	if !ok || rest == "" {
		return nil
	}
	var out []int64
	for _, r := range strings.Split(rest, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err := strconv.ParseInt(lo, 10, 64)
		if err != nil {
			return nil
		}
		b := a
		if isRange {
			if b, err = strconv.ParseInt(hi, 10, 64); err != nil || b < a || b-a > 1<<20 {
				return nil
			}
		}
		for o := a; o <= b; o++ {
			out = append(out, o)
		}
	}
	return out
}
