package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/foodpipe/foodpipe/pkg/config"
)

// Delivery is the outcome of one record: acknowledged by the broker (Err is
// nil, Partition and Offset set) or failed.
type Delivery struct {
	Key, Value []byte
	Partition  int32
	Offset     int64
	// SentAt is when Send handed the record to the client; Acked − SentAt is
	// the record's produce latency as kafka-producer-perf-test measures it.
	SentAt time.Time
	Err    error
}

// Producer sends records to one topic with bounded memory and reports
// every delivery to a callback. It is safe for one sending goroutine.
type Producer struct {
	cl      *kgo.Client
	topic   string
	headers []kgo.RecordHeader
	// inflight holds one token per record sent and not yet delivered: Send
	// waits on it, so memory stays bounded and the wait can be interrupted.
	inflight   chan struct{}
	onDelivery func(Delivery)
	// deliveryCtx outlives the caller's context: a record already handed to
	// the client is delivered (or times out) even after a stop was asked.
	deliveryCtx context.Context
	promise     func(*kgo.Record, error)
}

// ProducerOptions says where a Producer sends and what it tells about it.
type ProducerOptions struct {
	Topic string
	// Headers are added to every record.
	Headers map[string]string
	// OnDelivery is called once per record, serially, from the client's
	// delivery goroutine; it must be quick and must not call Send.
	OnDelivery func(Delivery)
}

// NewProducer connects a producer, failing fast when Kafka is unreachable
// or the topic does not exist.
func NewProducer(ctx context.Context, cluster Cluster, cfg config.KafkaProducer, opts ProducerOptions) (*Producer, error) {
	kopts, err := producerOptions(cfg, opts.Topic)
	if err != nil {
		return nil, err
	}
	cl, err := cluster.newClientAs(ctx, "producer", kopts...)
	if err != nil {
		return nil, err
	}
	// Records for a topic that does not exist fail only after franz-go's
	// metadata retries, one error per order: say it once, at start.
	if err := (&Admin{adm: kadm.NewClient(cl)}).CheckTopics(ctx, opts.Topic); err != nil {
		cl.Close()
		return nil, err
	}
	p := &Producer{
		cl:          cl,
		topic:       opts.Topic,
		inflight:    make(chan struct{}, cfg.MaxBufferedRecords),
		onDelivery:  opts.OnDelivery,
		deliveryCtx: context.WithoutCancel(ctx),
	}
	for k, v := range opts.Headers {
		p.headers = append(p.headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	// One promise for all records: a closure per record would cost an
	// allocation on the hot path.
	p.promise = func(r *kgo.Record, err error) {
		if p.onDelivery != nil {
			sentAt := r.Timestamp
			if sc, ok := r.Context.(*sentContext); ok {
				sentAt = sc.at
			}
			p.onDelivery(Delivery{Key: r.Key, Value: r.Value, Partition: r.Partition, Offset: r.Offset, SentAt: sentAt, Err: err})
		}
		<-p.inflight
	}
	return p, nil
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
	select {
	case p.inflight <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	e := &envelope{ctx: sentContext{Context: p.deliveryCtx, at: time.Now()}}
	e.rec = kgo.Record{Key: key, Value: value, Headers: p.headers, Timestamp: e.ctx.at, Context: &e.ctx}
	p.cl.Produce(p.deliveryCtx, &e.rec, p.promise)
	return nil
}

// envelope allocates a record and its send time together: one allocation
// per record. franz-go truncates Record.Timestamp to milliseconds, too
// coarse for latency, so the exact send time rides in the record's
// Context, which franz-go hands back untouched in the promise.
type envelope struct {
	rec kgo.Record
	ctx sentContext
}

// sentContext is the delivery context plus the moment Send was called.
type sentContext struct {
	context.Context
	at time.Time
}

// Flush waits until every record sent is delivered, or ctx ends.
func (p *Producer) Flush(ctx context.Context) error {
	return p.cl.Flush(ctx)
}

// Buffered is the number of records sent and not yet delivered.
func (p *Producer) Buffered() int { return len(p.inflight) }

// Close fails whatever is still buffered, waits (briefly) until those
// failures are reported, and closes the connections.
func (p *Producer) Close() {
	p.cl.Close()
	deadline := time.Now().Add(5 * time.Second)
	for len(p.inflight) > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}
