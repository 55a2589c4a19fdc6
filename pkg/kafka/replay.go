package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Replayer sends dead letters back to their source topics: the original
// key, value and headers, without foodpipe's, placed by the key as foodpipe
// produce places orders. It is used from one goroutine.
type Replayer struct {
	cluster Cluster
	log     *slog.Logger
	// limits holds each source topic's max.message.bytes, and clients one
	// producer per source topic sized to it.
	limits  map[string]int
	clients map[string]*kgo.Client
}

// NewReplayer returns a Replayer; it connects on the first Replay.
func NewReplayer(cluster Cluster) *Replayer {
	return &Replayer{cluster: cluster, log: cluster.Logger, limits: map[string]int{}, clients: map[string]*kgo.Client{}}
}

// Close closes the producers.
func (r *Replayer) Close() {
	for _, cl := range r.clients {
		cl.Close()
	}
}

// Check looks up the source topic of every letter, sending nothing: the
// error names the first letter whose topic does not exist (ErrTopicMissing)
// or cannot be described. Replay checks first, so that a batch with such a
// letter sends nothing at all; a dry run checks alone.
func (r *Replayer) Check(ctx context.Context, letters []Letter) error {
	for _, l := range letters {
		if _, ok := r.limits[l.SourceTopic]; ok {
			continue
		}
		limit, err := r.cluster.maxMessageBytes(ctx, l.SourceTopic)
		if err != nil {
			return fmt.Errorf("replay dead letter %d@%d to %s: %w", l.Partition, l.Offset, l.SourceTopic, err)
		}
		r.limits[l.SourceTopic] = limit
	}
	return nil
}

// Replay produces letters to their source topics and waits for every
// acknowledgement. acked says which letters were acknowledged, and the
// error names the first (in letters' order) that was not: a letter fails
// alone (its topic refuses it as too large, say) while the others are
// sent. Letters must have a source topic and a value (a marker has none).
func (r *Replayer) Replay(ctx context.Context, letters []Letter) (acked []bool, err error) {
	acked = make([]bool, len(letters))
	if err := r.Check(ctx, letters); err != nil {
		return acked, err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs = make([]error, len(letters))
	)
	for i, l := range letters {
		cl, err := r.client(ctx, l.SourceTopic)
		if err != nil {
			wg.Wait()
			return acked, err
		}
		rec := &kgo.Record{Key: l.Key, Value: l.Value}
		for _, h := range l.Original() {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		wg.Add(1)
		cl.Produce(ctx, rec, func(rec *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[i] = fmt.Errorf("replay dead letter %d@%d to %s: %w", l.Partition, l.Offset, l.SourceTopic, err)
				return
			}
			acked[i] = true
			r.log.Debug("dead letter replayed", "class", l.Class, "dlq_partition", l.Partition, "dlq_offset", l.Offset,
				"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset)
		})
	}
	wg.Wait()
	return acked, firstOf(errs)
}

// firstOf returns the first error of errs, saying how many more there are.
func firstOf(errs []error) error {
	var first error
	more := 0
	for _, err := range errs {
		switch {
		case err == nil:
		case first == nil:
			first = err
		default:
			more++
		}
	}
	if more > 0 {
		return fmt.Errorf("%w (and %d more not acknowledged)", first, more)
	}
	return first
}

// client returns the producer of topic, connecting it the first time;
// Check has looked the topic up.
func (r *Replayer) client(ctx context.Context, topic string) (*kgo.Client, error) {
	if cl, ok := r.clients[topic]; ok {
		return cl, nil
	}
	cl, err := r.cluster.newClient(ctx,
		kgo.DefaultProduceTopic(topic),
		// Keyed records are placed by murmur2(key), as foodpipe produce and
		// the Java client place them: a replayed order lands where its
		// customer's orders are produced today.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		// A record the topic accepted once fits it again, unless its limit
		// was lowered since; a batch must fit the topic's limit too, or the
		// broker refuses all of it.
		kgo.ProducerBatchMaxBytes(int32(r.limits[topic])),
		// Every replay waits for its acknowledgements: no linger.
		kgo.ProducerLinger(0),
		// Fail in bounded time rather than hang on a broker that is gone;
		// only what was acknowledged counts as replayed.
		kgo.RecordDeliveryTimeout(30*time.Second),
		// Never disabled: acks=all and idempotence are franz-go's defaults.
	)
	if err != nil {
		return nil, err
	}
	r.clients[topic] = cl
	return cl, nil
}
