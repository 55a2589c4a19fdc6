package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/foodpipe/foodpipe/pkg/config"
)

// Delivery is the outcome of one record: acknowledged by the broker (Err is
// nil, Partition and Offset set) or failed.
type Delivery struct {
	Key, Value []byte
	Partition  int32
	Offset     int64
	// SentAt is when Send handed the record to the client and Latency the
	// time from then to this delivery: the record's produce latency as
	// kafka-producer-perf-test measures it. Both are zero unless
	// ProducerOptions.Latency asked for them.
	SentAt  time.Time
	Latency time.Duration
	Err     error
}

// Producer sends records to one topic with bounded memory and reports
// every delivery to a callback. It is safe for one sending goroutine.
type Producer struct {
	cl      *kgo.Client
	topic   string
	headers []kgo.RecordHeader
	// free holds the envelopes of delivered records for the next sends. At
	// most cap(free) envelopes are ever made, so a Send that finds none free
	// when all are made waits for a delivery: the free list is also the
	// bound on the records in flight, and the hot path allocates nothing.
	free chan *envelope
	made atomic.Int64
	// flushing is set while a flush started by a waiting Send runs.
	flushing atomic.Bool
	// deliveryCtx outlives the caller's context: a record already handed to
	// the client is delivered (or times out) even after a stop was asked.
	deliveryCtx context.Context
	onDelivery  func(Delivery)
	promise     func(*kgo.Record, error)
	// latency: measure each record's latency from base on the monotonic
	// clock, one clock read at each end (time.Now reads two clocks).
	latency bool
	base    time.Time
	// gone and checking: see ProducerOptions.TopicGone.
	gone     func(error)
	checking atomic.Bool
}

// ProducerOptions says where a Producer sends and what it tells about it.
type ProducerOptions struct {
	Topic string
	// Headers are added to every record.
	Headers map[string]string
	// OnDelivery is called once per record, serially, from the client's
	// delivery goroutine; it must be quick and must not call Send.
	OnDelivery func(Delivery)
	// Latency fills Delivery.SentAt and Latency, for benchmarks. The
	// records' timestamps are then the producer's start plus the monotonic
	// clock, exact over a bench's minutes; without it the client stamps
	// each record with the wall clock, as a long-running producer wants.
	Latency bool
	// TopicGone, if set, is called once, with an ErrTopicMissing error
	// naming the fix, when deliveries fail because the topic was deleted
	// (the cluster's metadata confirms it): every order sent after that
	// would fail too.
	TopicGone func(error)
}

// NewProducer connects a producer, failing fast when Kafka is unreachable
// or the topic does not exist.
func NewProducer(ctx context.Context, cluster Cluster, cfg config.KafkaProducer, opts ProducerOptions) (*Producer, error) {
	cl, err := connectProducer(ctx, cluster, cfg, opts.Topic)
	if err != nil {
		return nil, err
	}
	p := &Producer{
		cl:          cl,
		topic:       opts.Topic,
		free:        make(chan *envelope, cfg.MaxBufferedRecords),
		deliveryCtx: context.WithoutCancel(ctx),
		onDelivery:  opts.OnDelivery,
		latency:     opts.Latency,
		base:        time.Now(),
		gone:        opts.TopicGone,
	}
	for k, v := range opts.Headers {
		p.headers = append(p.headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	// One promise for all records: a closure per record would cost an
	// allocation on the hot path.
	p.promise = p.delivered
	return p, nil
}

// delivered reports one record's delivery and frees its envelope.
func (p *Producer) delivered(r *kgo.Record, err error) {
	e := r.Context.(*envelope)
	if p.onDelivery != nil {
		d := Delivery{Key: r.Key, Value: r.Value, Partition: r.Partition, Offset: r.Offset, Err: err}
		if p.latency {
			d.SentAt, d.Latency = p.base.Add(e.sent), time.Since(p.base)-e.sent
		}
		p.onDelivery(d)
	}
	if err != nil && p.gone != nil && errors.Is(err, kerr.UnknownTopicOrPartition) && p.checking.CompareAndSwap(false, true) {
		go p.checkGone()
	}
	p.free <- e // never blocks: at most cap(free) envelopes exist
}

// checkGone asks the cluster whether the topic still exists, after a
// delivery failed for want of it, and tells TopicGone when it does not.
// Until then, and after a false alarm, one check runs at a time.
func (p *Producer) checkGone() {
	if topicGone(p.deliveryCtx, p.cl, p.topic) {
		p.gone(fmt.Errorf("%w: %s (deleted while producing): run foodpipe topics init", ErrTopicMissing, p.topic))
		return // checking stays set: once is enough
	}
	p.checking.Store(false)
}

// ErrTopicTooSmall marks a topic whose max.message.bytes is below
// minBatchBytes, the smallest record batch franz-go will build.
var ErrTopicTooSmall = errors.New("record limit too small")

// ErrClosed is the error of a record still unacknowledged when its
// producer closed: sent or not, written or not, nobody knows.
var ErrClosed = kgo.ErrClientClosed

const minBatchBytes = 512

// checkBatchRoom fails with ErrTopicTooSmall, naming the fix, when a
// topic's max.message.bytes (limit) is below minBatchBytes.
func checkBatchRoom(topic string, limit int) error {
	if limit >= minBatchBytes {
		return nil
	}
	return fmt.Errorf("%w: %s has max.message.bytes=%d, below the smallest record batch (%d bytes): raise it "+
		"(kafka-configs --alter --entity-type topics --entity-name %s --add-config max.message.bytes=1048588)",
		ErrTopicTooSmall, topic, limit, minBatchBytes, topic)
}

// connectProducer connects the client of a Producer to topic, checked to
// exist and not to be compacted, with record batches no larger than the
// topic accepts: the broker refuses a whole batch over the topic's
// max.message.bytes, and franz-go then fails its records where the Java
// client would split the batch. A topic whose limit is below
// producer-batch-bytes gets a second client sized for it.
func connectProducer(ctx context.Context, cluster Cluster, cfg config.KafkaProducer, topic string) (*kgo.Client, error) {
	for {
		kopts, err := producerOptions(cfg, topic)
		if err != nil {
			return nil, err
		}
		cl, err := cluster.newClientAs(ctx, "producer", kopts...)
		if err != nil {
			return nil, err
		}
		// Records for a topic that does not exist fail only after franz-go's
		// metadata retries, one error per order: say it once, at start.
		adm := kadm.NewClient(cl)
		err = (&Admin{adm: adm}).CheckTopics(ctx, topic)
		limit := 0
		if err == nil {
			limit, err = maxMessageBytes(ctx, adm, topic)
		}
		if err == nil && limit >= cfg.BatchMaxBytes {
			return cl, nil
		}
		cl.Close()
		if err != nil {
			return nil, err
		}
		if err := checkBatchRoom(topic, limit); err != nil {
			return nil, err
		}
		cluster.Logger.Info("record batches sized to the topic's max.message.bytes",
			"topic", topic, "max_message_bytes", limit, "producer_batch_bytes", cfg.BatchMaxBytes)
		cfg.BatchMaxBytes = limit
	}
}

func producerOptions(cfg config.KafkaProducer, topic string) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(topic),
		// Keyed records are placed by murmur2(key), exactly as the Java
		// client does, so every Kafka tool agrees where a customer lives.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerLinger(cfg.Linger),
		kgo.ProducerBatchMaxBytes(int32(cfg.BatchMaxBytes)),
		// A record failing after this long is reported failed rather than
		// retried forever: the user learns within a known time.
		kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout),
		// The client buffers at most what Send lets through; one spare slot
		// so Produce itself never blocks (Send does the waiting).
		kgo.MaxBufferedRecords(cfg.MaxBufferedRecords + 1),
	}
	switch cfg.Acks {
	case "all":
		// acks=all is franz-go's default and idempotence is on by default:
		// no duplicates and per-partition order survive retries.
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "leader":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "none":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return nil, fmt.Errorf("unsupported acks %q", cfg.Acks)
	}
	codec, err := compression(cfg.Compression)
	if err != nil {
		return nil, err
	}
	return append(opts, kgo.ProducerBatchCompression(codec)), nil
}

func compression(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "none":
		return kgo.NoCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("unsupported compression %q", name)
}

// Send hands one record to the client. It waits while MaxBufferedRecords
// records are undelivered; ctx interrupts that wait (and only that wait:
// once sent, a record is delivered or fails on its own). The key and value
// must not change until the record's delivery is reported.
func (p *Producer) Send(ctx context.Context, key, value []byte) error {
	e, err := p.envelope(ctx)
	if err != nil {
		return err
	}
	e.rec = kgo.Record{Key: key, Value: value, Headers: p.headers, Context: e}
	if p.latency {
		e.sent = time.Since(p.base)
		e.rec.Timestamp = p.base.Add(e.sent)
	}
	p.cl.Produce(p.deliveryCtx, &e.rec, p.promise)
	return nil
}

// envelope takes a free envelope, makes one while fewer than the bound
// exist, or waits for a delivery to free one.
func (p *Producer) envelope(ctx context.Context) (*envelope, error) {
	select {
	case e := <-p.free:
		return e, nil
	default:
	}
	if p.made.Load() < int64(cap(p.free)) {
		p.made.Add(1) // only the sending goroutine makes envelopes
		return &envelope{Context: p.deliveryCtx}, nil
	}
	p.unlinger()
	select {
	case e := <-p.free:
		return e, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// unlinger sends what the client holds without waiting for its linger. Send
// calls it when every envelope is out: the records in flight would wait
// their linger for company that cannot come until one is delivered (with
// one in flight and a linger of a minute, a record a minute). franz-go
// stops lingering itself when its own buffer is full, which the spare slot
// keeps from happening, and the Java client sends at once when a send
// waits for memory. The flush runs in the background while Send waits.
func (p *Producer) unlinger() {
	if p.flushing.CompareAndSwap(false, true) {
		go func() {
			defer p.flushing.Store(false)
			_ = p.cl.Flush(p.deliveryCtx) // delivery failures are reported per record
		}()
	}
}

// envelope is a record with its send time, reused from one record to a
// later one once delivered. It is also the record's Context (the delivery
// context plus itself), which franz-go hands back untouched in the promise.
type envelope struct {
	context.Context
	rec  kgo.Record
	sent time.Duration // since the producer's base, with ProducerOptions.Latency
}

// Flush waits until every record sent is delivered, or ctx ends.
func (p *Producer) Flush(ctx context.Context) error {
	return p.cl.Flush(ctx)
}

// Buffered is the number of records sent and not yet delivered.
func (p *Producer) Buffered() int { return int(p.made.Load()) - len(p.free) }

// Close fails whatever is still buffered, waits (briefly) until those
// failures are reported, and closes the connections.
func (p *Producer) Close() {
	p.cl.Close()
	deadline := time.Now().Add(5 * time.Second)
	for p.Buffered() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}
