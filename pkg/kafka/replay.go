package kafka

import (
	"context"
	"errors"
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
	// clients holds one producer per source topic, each sized to its
	// topic's max.message.bytes.
	clients map[string]*kgo.Client
}

// NewReplayer returns a Replayer; it connects on the first Replay.
func NewReplayer(cluster Cluster) *Replayer {
	return &Replayer{cluster: cluster, log: cluster.Logger, clients: map[string]*kgo.Client{}}
}

// Close closes the producers.
func (r *Replayer) Close() {
	for _, cl := range r.clients {
		cl.Close()
	}
}

// Replay produces letters to their source topics and waits for every
// acknowledgement; the error names the letters that were not acknowledged.
// Letters must have a source topic and a value (a marker has none).
func (r *Replayer) Replay(ctx context.Context, letters []Letter) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, l := range letters {
		cl, err := r.client(ctx, l.SourceTopic)
		if err != nil {
			wg.Wait()
			return err
		}
		rec := &kgo.Record{Key: l.Key, Value: l.Value}
		for _, h := range l.Original() {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		wg.Add(1)
		cl.Produce(ctx, rec, func(rec *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("replay dead letter %d@%d to %s: %w", l.Partition, l.Offset, l.SourceTopic, err))
				mu.Unlock()
				return
			}
			r.log.Debug("dead letter replayed", "class", l.Class, "dlq_partition", l.Partition, "dlq_offset", l.Offset,
				"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// client returns the producer of topic, connecting it the first time.
func (r *Replayer) client(ctx context.Context, topic string) (*kgo.Client, error) {
	if cl, ok := r.clients[topic]; ok {
		return cl, nil
	}
	limit, err := r.cluster.maxMessageBytes(ctx, topic)
	if err != nil {
		return nil, err
	}
	cl, err := r.cluster.newClient(ctx,
		kgo.DefaultProduceTopic(topic),
		// Keyed records are placed by murmur2(key), as foodpipe produce and
		// the Java client place them: a replayed order lands where its
		// customer's orders are produced today.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		// A record the topic accepted once fits it again; a batch must fit
		// the topic's limit too, or the broker refuses all of it.
		kgo.ProducerBatchMaxBytes(int32(limit)),
		// Every replay waits for its acknowledgements: no linger.
		kgo.ProducerLinger(0),
		// Fail in bounded time rather than hang on a broker that is gone;
		// nothing is committed for a batch that failed.
		kgo.RecordDeliveryTimeout(30*time.Second),
		// Never disabled: acks=all and idempotence are franz-go's defaults.
	)
	if err != nil {
		return nil, err
	}
	r.clients[topic] = cl
	return cl, nil
}
