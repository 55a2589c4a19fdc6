package kafka

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
)

// localSegmentBytes is the segment size of the local broker. It holds every
// record in memory and frees them a whole segment at a time, so DeleteBefore
// returns memory in steps of this size instead of kfake's default 100 MiB.
const localSegmentBytes = 1 << 20

// StartLocalBroker starts an in-process, in-memory Kafka-protocol broker
// (franz-go's kfake) on a free port of 127.0.0.1 and returns its address
// and the func that stops it. It has no topics until they are created, like
// a fresh cluster with auto-creation off: foodpipe creates its own with
// Admin.EnsureTopics, as topics init does on a real one.
func StartLocalBroker() (addrs []string, stop func(), err error) {
	c, err := kfake.NewCluster(
		// One broker: the demo shows partitions and groups, not replication.
		kfake.NumBrokers(1),
		kfake.ClusterID("foodpipe-demo"),
		kfake.BrokerConfigs(map[string]string{"log.segment.bytes": strconv.Itoa(localSegmentBytes)}),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("start the in-process Kafka broker: %w", err)
	}
	return c.ListenAddrs(), c.Close, nil
}

// DeleteBefore deletes the records of topic below the given offset of each
// partition (Kafka's DeleteRecords): the partition's start offset moves up
// to it. The demo calls it with the offsets stored in PostgreSQL, so its
// in-memory broker holds only what is not stored yet.
func (a *Admin) DeleteBefore(ctx context.Context, topic string, offsets map[int32]int64) error {
	var os kadm.Offsets
	for p, o := range offsets {
		if o > 0 {
			os.Add(kadm.Offset{Topic: topic, Partition: p, At: o, LeaderEpoch: -1})
		}
	}
	resp, err := a.adm.DeleteRecords(ctx, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("delete records of %s: %w", topic, err)
	}
	return nil
}

// StartOffsets returns the first offset each partition of topic holds: 0
// until records are deleted (by retention or DeleteBefore).
func (a *Admin) StartOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	out, err := listOffsets(ctx, a.adm.ListStartOffsets, topic)
	if err != nil {
		return nil, fmt.Errorf("start offsets of %s: %w", topic, err)
	}
	return out, nil
}
