package kafka

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DeadLetter is a record that cannot be stored, and why.
type DeadLetter struct {
	Record Record
	Class  string // order.ClassDecode, order.ClassValidate or order.ClassStore
	Reason string // one line
}

// Dead-letter headers (SPEC "Topics"), plus the marker's.
const (
	HeaderClass           = "foodpipe-error-class"
	HeaderReason          = "foodpipe-error"
	HeaderSourceTopic     = "foodpipe-source-topic"
	HeaderSourcePartition = "foodpipe-source-partition"
	HeaderSourceOffset    = "foodpipe-source-offset"
	HeaderSourceTimestamp = "foodpipe-source-timestamp"
	HeaderGroup           = "foodpipe-group"
	HeaderFailedAt        = "foodpipe-failed-at"
	// A marker stands for a record too large for the dead-letter topic: it
	// carries no value, and these headers describe the original.
	HeaderTruncated      = "foodpipe-truncated"
	HeaderOriginalSize   = "foodpipe-original-size"
	HeaderOriginalSHA256 = "foodpipe-original-sha256"
)

// DeadLetterWriter produces dead letters and waits for their
// acknowledgement. Any record the source topic accepted can be
// dead-lettered: one too large for the dead-letter topic, with the headers
// added, is replaced by a marker (no value; its size and SHA-256 in
// headers; the source coordinates as always).
type DeadLetterWriter struct {
	cl       *kgo.Client
	topic    string
	group    string
	maxBytes int // the largest record batch the dead-letter topic takes
	now      func() time.Time
	log      *slog.Logger
}

// ErrTopicMissing marks a topic that does not exist.
var ErrTopicMissing = errors.New("topic does not exist")

// NewDeadLetterWriter connects the dead-letter producer of group. It fails at
// once, naming the fix, when the dead-letter topic does not exist: with
// auto-creation off, every dead letter would otherwise wait forever and hold
// up the good orders behind it.
func NewDeadLetterWriter(ctx context.Context, cluster Cluster, topic, group string) (*DeadLetterWriter, error) {
	limit, err := cluster.maxMessageBytes(ctx, topic)
	if err == nil {
		err = checkBatchRoom(topic, limit)
	}
	if err != nil {
		return nil, err
	}
	cl, err := cluster.newClientAs(ctx, "dead_letters",
		kgo.DefaultProduceTopic(topic),
		// The whole dead-letter topic's limit: a large bad record keeps its
		// bytes whenever the topic can hold it.
		kgo.ProducerBatchMaxBytes(int32(limit)),
		// Dead letters are few and each write waits for them: no linger.
		kgo.ProducerLinger(0),
		// A write that cannot be acknowledged fails in bounded time, so the
		// consumer logs it and retries with backoff instead of hanging.
		kgo.RecordDeliveryTimeout(30*time.Second),
		// Never disabled: acks=all and idempotence are franz-go's defaults.
	)
	if err != nil {
		return nil, err
	}
	return &DeadLetterWriter{cl: cl, topic: topic, group: group, maxBytes: limit, now: time.Now, log: cluster.Logger}, nil
}

// maxMessageBytes reads the effective max.message.bytes of a topic with a
// client of its own; it fails, naming the fix, when the topic does not
// exist.
func (c Cluster) maxMessageBytes(ctx context.Context, topic string) (int, error) {
	cl, err := c.newClient(ctx)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	return maxMessageBytes(ctx, kadm.NewClient(cl), topic)
}

// maxMessageBytes reads the effective max.message.bytes of a topic.
func maxMessageBytes(ctx context.Context, adm *kadm.Client, topic string) (int, error) {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err == nil && len(rcs) > 0 {
		err = rcs[0].Err
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return 0, fmt.Errorf("%w: %s: run foodpipe topics init", ErrTopicMissing, topic)
	}
	if err != nil {
		return 0, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	for _, c := range rcs[0].Configs {
		if c.Key == "max.message.bytes" {
			n, err := strconv.Atoi(c.MaybeValue())
			if err != nil {
				return 0, fmt.Errorf("topic %s: max.message.bytes %q: %w", topic, c.MaybeValue(), err)
			}
			return n, nil
		}
	}
	return 1048588, nil // Kafka's default
}

// Close closes the producer.
func (w *DeadLetterWriter) Close() { w.cl.Close() }

// Write produces dead letters and waits for every acknowledgement. acked is
// called with the index of each letter the broker acknowledged (possibly
// before an error for another one): the caller does not send those again.
func (w *DeadLetterWriter) Write(ctx context.Context, dead []DeadLetter, acked func(i int)) error {
	if len(dead) == 0 {
		return nil
	}
	failedAt := w.now().UTC().Format(time.RFC3339Nano)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i, d := range dead {
		rec := w.record(d, failedAt)
		wg.Add(1)
		var promise func(*kgo.Record, error)
		promise = func(r *kgo.Record, err error) {
			if errors.Is(err, kerr.MessageTooLarge) && r.Value != nil {
				// The broker's limit is lower than the topic said: send
				// the marker instead.
				w.cl.Produce(ctx, w.marker(d, failedAt), promise)
				return
			}
			defer wg.Done()
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("dead-letter %s/%d@%d to %s: %w", d.Record.topic(), d.Record.Partition, d.Record.Offset, w.topic, err))
				mu.Unlock()
				return
			}
			mu.Lock()
			acked(i)
			mu.Unlock()
			w.log.Warn("record dead-lettered", "class", d.Class, "topic", d.Record.topic(), "partition", d.Record.Partition,
				"offset", d.Record.Offset, "err", d.Reason, "truncated", r.Value == nil && d.Record.Value != nil,
				"dlq_partition", r.Partition, "dlq_offset", r.Offset)
		}
		w.cl.Produce(ctx, rec, promise)
	}
	wg.Wait()
	err := errors.Join(errs...)
	if errors.Is(err, kerr.UnknownTopicOrPartition) && topicGone(ctx, w.cl, w.topic) {
		return fmt.Errorf("%w: %s (deleted while consuming): run foodpipe topics init", ErrTopicMissing, w.topic)
	}
	return err
}

// record is the dead letter of d: the original key, value and headers,
// untouched, plus foodpipe's headers; or its marker when that would not fit.
func (w *DeadLetterWriter) record(d DeadLetter, failedAt string) *kgo.Record {
	rec := &kgo.Record{Key: d.Record.Key, Value: d.Record.Value,
		Headers: append(slices.Clip(d.Record.headers()), w.headers(d, failedAt)...)}
	if recordSize(rec) > w.maxBytes {
		return w.marker(d, failedAt)
	}
	return rec
}

// marker stands for a record too large to dead-letter whole: no value, the
// key and original headers only when small, and the original's size and
// digest, so that it can be found and compared in the source topic.
func (w *DeadLetterWriter) marker(d DeadLetter, failedAt string) *kgo.Record {
	sum := sha256.Sum256(d.Record.Value)
	h := w.headers(d, failedAt)
	h = append(h,
		kgo.RecordHeader{Key: HeaderTruncated, Value: []byte("true")},
		kgo.RecordHeader{Key: HeaderOriginalSize, Value: strconv.AppendInt(nil, int64(len(d.Record.Value)), 10)},
		kgo.RecordHeader{Key: HeaderOriginalSHA256, Value: []byte(hex.EncodeToString(sum[:]))},
	)
	m := &kgo.Record{Headers: h}
	if len(d.Record.Key) <= 1024 {
		m.Key = d.Record.Key
	}
	if orig := d.Record.headers(); headersSize(orig) <= w.maxBytes/4 {
		m.Headers = append(slices.Clip(orig), m.Headers...)
	}
	return m
}

func (w *DeadLetterWriter) headers(d DeadLetter, failedAt string) []kgo.RecordHeader {
	r := d.Record
	return []kgo.RecordHeader{
		{Key: HeaderClass, Value: []byte(d.Class)},
		{Key: HeaderReason, Value: []byte(d.Reason)},
		{Key: HeaderSourceTopic, Value: []byte(r.topic())},
		{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
		{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
		{Key: HeaderSourceTimestamp, Value: []byte(r.Timestamp.UTC().Format(time.RFC3339Nano))},
		{Key: HeaderGroup, Value: []byte(w.group)},
		{Key: HeaderFailedAt, Value: []byte(failedAt)},
	}
}

func (r Record) topic() string {
	if r.raw == nil {
		return ""
	}
	return r.raw.Topic
}

func (r Record) headers() []kgo.RecordHeader {
	if r.raw == nil {
		return nil
	}
	return r.raw.Headers
}

// recordSize bounds from above what one record costs in a batch of its
// own, before compression: the v2 batch header (61 bytes), the record's
// varint fields (at most 5 or 10 bytes each) and its bytes.
func recordSize(r *kgo.Record) int {
	return 61 + 5 + 1 + 10 + 5 + 5 + len(r.Key) + 5 + len(r.Value) + 5 + headersSize(r.Headers)
}

func headersSize(hs []kgo.RecordHeader) int {
	n := 0
	for _, h := range hs {
		n += 5 + len(h.Key) + 5 + len(h.Value)
	}
	return n
}
