package kafka

import (
	"strconv"
	"strings"
	"time"
)

// Letter is a dead letter read back from the dead-letter topic: where it
// is, the original record's key and value, and what the headers say about
// it. A field whose header is missing or malformed is left zero (-1 for
// the source partition and offset); Headers keeps every header as found.
type Letter struct {
	Partition int32
	Offset    int64
	Timestamp time.Time
	Key       []byte
	Value     []byte

	Class           string
	Reason          string
	SourceTopic     string
	SourcePartition int32
	SourceOffset    int64
	SourceTimestamp time.Time
	Group           string
	FailedAt        time.Time
	// Truncated marks a marker: the original was too large to dead-letter
	// whole, so Value is empty and OriginalSize and OriginalSHA256
	// describe it.
	Truncated      bool
	OriginalSize   int64
	OriginalSHA256 string

	Headers []Header
}

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

// headerPrefix starts every header foodpipe adds to a dead letter.
const headerPrefix = "foodpipe-"

// LetterOf reads a record of the dead-letter topic as a dead letter.
func LetterOf(r Record) Letter {
	l := Letter{Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value,
		SourcePartition: -1, SourceOffset: -1}
	if r.raw == nil {
		return l
	}
	for _, h := range r.raw.Headers {
		l.Headers = append(l.Headers, Header{Key: h.Key, Value: h.Value})
		v := string(h.Value)
		switch h.Key {
		case HeaderClass:
			l.Class = v
		case HeaderReason:
			l.Reason = v
		case HeaderSourceTopic:
			l.SourceTopic = v
		case HeaderSourcePartition:
			if n, err := strconv.ParseInt(v, 10, 32); err == nil {
				l.SourcePartition = int32(n)
			}
		case HeaderSourceOffset:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				l.SourceOffset = n
			}
		case HeaderSourceTimestamp:
			l.SourceTimestamp, _ = time.Parse(time.RFC3339Nano, v)
		case HeaderGroup:
			l.Group = v
		case HeaderFailedAt:
			l.FailedAt, _ = time.Parse(time.RFC3339Nano, v)
		case HeaderTruncated:
			l.Truncated = v == "true"
		case HeaderOriginalSize:
			l.OriginalSize, _ = strconv.ParseInt(v, 10, 64)
		case HeaderOriginalSHA256:
			l.OriginalSHA256 = v
		}
	}
	return l
}

// Original returns the headers the original record carried: all but
// foodpipe's own.
func (l Letter) Original() []Header {
	var out []Header
	for _, h := range l.Headers {
		if !strings.HasPrefix(h.Key, headerPrefix) {
			out = append(out, h)
		}
	}
	return out
}
