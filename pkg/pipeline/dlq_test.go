package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/order"
)

// TestPickCopies: a dead letter whose source record (coordinates and
// bytes) was picked before in the run is a copy; the same coordinates with
// other bytes (the topic was created again) or a letter that does not name
// its source offset are not.
func TestPickCopies(t *testing.T) {
	letter := func(dlqOffset int64, srcPartition int32, srcOffset int64, value string) kafka.Letter {
		return kafka.Letter{Partition: 0, Offset: dlqOffset, Class: "store", SourceTopic: "orders",
			SourcePartition: srcPartition, SourceOffset: srcOffset, Key: []byte("CUST-00001"), Value: []byte(value)}
	}
	letters := []struct {
		l    kafka.Letter
		want bool
	}{
		{letter(0, 1, 7, "a"), true},
		{letter(1, 1, 7, "a"), false},  // a crash copy
		{letter(2, 1, 7, "b"), true},   // offset 7 of the topic created again
		{letter(3, 2, 7, "a"), true},   // another partition
		{letter(4, -1, -1, "c"), true}, // no source offset: never a copy
		{letter(5, -1, -1, "c"), true},
		{letter(6, 1, 7, "b"), false},
	}
	p := picker{topic: "orders.dlq", classes: order.Classes, done: map[string]map[int32]int64{}, seen: map[origin]struct{}{},
		seed: maphash.MakeSeed()}
	st := ReplayStats{Skipped: map[string]int64{}}
	for _, c := range letters {
		if got := p.pick(&st, c.l); got != c.want {
			t.Errorf("dead letter %d (source %d@%d, %q): picked %v, want %v", c.l.Offset, c.l.SourcePartition,
				c.l.SourceOffset, c.l.Value, got, c.want)
		}
	}
	if st.Read != 7 || st.Skipped[SkipCopy] != 2 {
		t.Errorf("read %d, skipped %v; want 7 read, 2 copies", st.Read, st.Skipped)
	}
}

// TestAheadMetadata: the letters replayed past a failed one survive the
// round trip through a commit's metadata as ranges, from the committed
// offset on; what does not fit Kafka's metadata limit is counted, and
// metadata foodpipe did not write lists nothing.
func TestAheadMetadata(t *testing.T) {
	set := map[int64]bool{3: true, 5: true, 6: true, 7: true, 9: true}
	meta, left := encodeAhead(set, 5)
	if meta != "foodpipe-replayed:5-7,9" || left != 0 {
		t.Errorf("encodeAhead = %q, %d; want the ranges from 5 on", meta, left)
	}
	if got := parseAhead(meta); !slices.Equal(got, []int64{5, 6, 7, 9}) {
		t.Errorf("parseAhead(%q) = %v", meta, got)
	}
	if meta, left := encodeAhead(set, 10); meta != "" || left != 0 {
		t.Errorf("nothing past the offset: %q, %d", meta, left)
	}
	many := map[int64]bool{}
	for i := range int64(3000) {
		many[1_000_000+2*i] = true // no two adjacent: one range each
	}
	meta, left = encodeAhead(many, 0)
	kept := parseAhead(meta)
	if len(meta) > maxAheadMetadata || left == 0 || len(kept)+left != 3000 || kept[0] != 1_000_000 {
		t.Errorf("3000 scattered offsets: %d bytes, %d kept, %d left", len(meta), len(kept), left)
	}
	for _, bad := range []string{"", "consumer metadata", "foodpipe-replayed:x", "foodpipe-replayed:9-3", "foodpipe-replayed:0-99999999"} {
		if got := parseAhead(bad); got != nil {
			t.Errorf("parseAhead(%q) = %v, want nothing", bad, got)
		}
	}
}

// TestPickClasses: a letter of a class not selected is another class's; one
// with no class header, or one foodpipe does not write, can be replayed by
// no run, and says so; a letter listed as replayed past its group's offset
// (a failed run's) counts as replayed before.
func TestPickClasses(t *testing.T) {
	p := picker{topic: "orders.dlq", classes: []string{"store"}, done: map[string]map[int32]int64{"store": {0: 10}},
		ahead: aheadSet{0: {12: true}}, seen: map[origin]struct{}{}, seed: maphash.MakeSeed()}
	st := ReplayStats{Skipped: map[string]int64{}}
	for i, c := range []struct {
		class  string
		offset int64
		want   bool
	}{{"store", 9, false}, {"store", 10, true}, {"decode", 11, false}, {"", 12, false}, {"weird", 13, false}, {"store", 12, false}, {"store", 14, true}} {
		l := kafka.Letter{Offset: c.offset, Class: c.class, SourceTopic: "orders", SourcePartition: 0, SourceOffset: int64(i),
			Value: []byte{byte(i)}}
		if got := p.pick(&st, l); got != c.want {
			t.Errorf("letter %+v: picked %v, want %v", c, got, c.want)
		}
	}
	if st.OtherClasses != 1 || st.Skipped[SkipNoClass] != 2 || st.Earlier != 2 {
		t.Errorf("stats %+v: want 1 of another class, 2 of no known class, 2 replayed before", st)
	}
}

// TestReplayStoppedBySignal: a stop (the first SIGINT) during a replay
// finishes the batch in hand, records it and returns the stats of a run
// that stopped, without an error: what it says it replayed is what the
// source topic received, and the next run replays the rest, once.
func TestReplayStoppedBySignal(t *testing.T) {
	t.Parallel()
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders", "orders.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	cluster := kafka.Cluster{Config: config.Kafka{Brokers: fake.ListenAddrs(), ConnectTimeout: 5 * time.Second},
		ClientID: "foodpipe-test", Logger: testenv.Logger(t)}
	const letters = 300 // of 100 kB: many fetches
	cl, err := kgo.NewClient(kgo.SeedBrokers(fake.ListenAddrs()...), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	for i := range letters {
		r := &kgo.Record{Topic: "orders.dlq", Key: fmt.Appendf(nil, "CUST-%05d", i%7), Value: bytes.Repeat([]byte{'x'}, 100_000),
			Headers: []kgo.RecordHeader{{Key: kafka.HeaderClass, Value: []byte("store")},
				{Key: kafka.HeaderSourceTopic, Value: []byte("orders")}}}
		if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	ctx, stop := context.WithCancel(t.Context())
	var once sync.Once
	fake.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		fake.KeepControl()
		once.Do(stop) // the signal comes while the first batch is sent
		return nil, nil, false
	})
	sent := func() (n int64) {
		for _, end := range testenv.EndOffsetsAt(t, fake.ListenAddrs(), "orders") {
			n += end
		}
		return n
	}
	opts := ReplayOptions{Topic: "orders.dlq", GroupPrefix: "replay"}
	st, err := Replay(ctx, cluster, opts)
	if err != nil || st.Stopped != StoppedSignal || st.Replayed == 0 || st.Replayed >= letters || st.Replayed != sent() {
		t.Fatalf("stopped replay: %+v, err %v; want a part replayed, all of it sent, stopped by signal (sent %d)", st, err, sent())
	}
	first := st.Replayed
	st, err = Replay(t.Context(), cluster, opts)
	if err != nil || st.Stopped != StoppedEnd || st.Replayed != letters-first || sent() != letters {
		t.Errorf("second replay: %+v, err %v; want the other %d, each letter sent once (sent %d)", st, err, letters-first, sent())
	}
}
