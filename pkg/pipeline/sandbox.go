package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/order"
	"github.com/foodpipe/foodpipe/pkg/store"
)

// Sandbox is a bench run's own topic (with its dead-letter topic) and
// PostgreSQL schema, made the way topics init and db migrate make them and
// removed afterwards unless kept, so that a run never touches real data
// and two runs never see each other's.
type Sandbox struct {
	// Topic is the sandbox's orders topic; Schema its PostgreSQL schema.
	Topic  string
	Schema string
	Admin  *kafka.Admin
	// DB is a pool on the migrated schema; nil for a sandbox without one.
	DB      *store.DB
	cluster kafka.Cluster
	log     *slog.Logger
	undo    []func()
}

// SandboxOptions say what a sandbox holds.
type SandboxOptions struct {
	// Topics shapes the topics (partitions, replication, retention).
	Topics config.Topics
	// DeadLetters adds the dead-letter topic.
	DeadLetters bool
	// Postgres, when set, adds a schema there, migrated with Migrations.
	Postgres   *config.Postgres
	Migrations fs.FS
	// RawTable adds an empty table shaped like orders (indexes and all),
	// orders_raw, for RawCopy.
	RawTable bool
	// Keep leaves everything in place for inspection.
	Keep bool
}

// SandboxName is a name unique to this run: foodpipe-bench-<time>-<random>.
func SandboxName(now time.Time) string { return uniqueName("bench", now, "-") }

// uniqueName is foodpipe-<what>-<time>-<random>, with sep between the words.
func uniqueName(what string, now time.Time, sep string) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return strings.Join([]string{"foodpipe", what, now.UTC().Format("20060102" + sep + "150405"), hex.EncodeToString(b[:])}, sep)
}

// NewSandbox makes the sandbox named name. On an error, what was made is
// removed again.
func NewSandbox(ctx context.Context, cluster kafka.Cluster, name string, opts SandboxOptions) (_ *Sandbox, err error) {
	s := &Sandbox{Topic: name, cluster: cluster, log: cluster.Logger}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.Admin, err = kafka.NewAdmin(ctx, cluster); err != nil {
		return nil, err
	}
	s.undo = append(s.undo, s.Admin.Close)
	if err := s.topics(ctx, opts); err != nil {
		return nil, err
	}
	if opts.Postgres != nil {
		if err := s.schema(ctx, *opts.Postgres, opts); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Sandbox) topics(ctx context.Context, opts SandboxOptions) error {
	k := s.cluster.Config
	k.Topic, k.DLQTopic = s.Topic, ""
	specs := kafka.Specs(k, opts.Topics)
	if !opts.DeadLetters {
		specs = specs[:1]
	}
	names := make([]string, len(specs))
	for i, spec := range specs {
		names[i] = spec.Name
	}
	// Registered first: a topic half made is deleted too.
	s.undo = append(s.undo, func() {
		if opts.Keep {
			s.log.Info("kept bench topics", "topics", names)
			return
		}
		if err := s.Admin.DeleteTopics(context.WithoutCancel(ctx), names...); err != nil {
			s.log.Warn("could not delete bench topics", "topics", names, "err", err)
		}
		// The group of ConsumeOptions, left empty with Kafka's copy of
		// its offsets.
		if err := s.Admin.DeleteGroup(context.WithoutCancel(ctx), s.Topic); err != nil {
			s.log.Warn("could not delete the bench's group", "group", s.Topic, "err", err)
		}
	})
	_, err := s.Admin.EnsureTopics(ctx, specs, false)
	return err
}

func (s *Sandbox) schema(ctx context.Context, pg config.Postgres, opts SandboxOptions) error {
	s.Schema = strings.ReplaceAll(s.Topic, "-", "_")
	root, err := store.Open(ctx, pg, store.Options{AppName: "foodpipe bench", MaxConns: 1}, s.log)
	if err != nil {
		return err
	}
	s.undo = append(s.undo, root.Close)
	if err := root.CreateSchema(ctx, s.Schema); err != nil {
		return err
	}
	s.undo = append(s.undo, func() {
		if opts.Keep {
			s.log.Info("kept bench schema", "schema", s.Schema)
			return
		}
		if err := root.DropSchema(context.WithoutCancel(ctx), s.Schema); err != nil {
			s.log.Warn("could not drop bench schema", "schema", s.Schema, "err", err)
		}
	})
	if s.DB, err = store.Open(ctx, pg, store.Options{AppName: "foodpipe bench", Schema: s.Schema}, s.log); err != nil {
		return err
	}
	s.undo = append(s.undo, s.DB.Close)
	if _, err := s.DB.Migrate(ctx, opts.Migrations); err != nil {
		return err
	}
	if opts.RawTable {
		return s.DB.CreateOrdersLike(ctx, rawTable)
	}
	return nil
}

// rawTable is where RawCopy copies.
const rawTable = "orders_raw"

// Close removes what the sandbox made (unless Keep) and closes its clients.
func (s *Sandbox) Close() {
	for i := len(s.undo) - 1; i >= 0; i-- {
		s.undo[i]()
	}
	s.undo = nil
}

// Backlog produces n orders of Replayable(seed, start), as fast as the
// broker takes them.
func (s *Sandbox) Backlog(ctx context.Context, producer config.KafkaProducer, seed int64, start time.Time, n int64) error {
	gen, err := Replayable(seed, start)
	if err != nil {
		return err
	}
	_, err = ProduceOrders(ctx, s.cluster, producer, s.Topic, gen, ProduceOptions{Count: n, FlushTimeout: time.Minute})
	return err
}

// ConsumeOptions are opts aimed at the sandbox's topics, with a group of
// its own.
func (s *Sandbox) ConsumeOptions(opts Options) Options {
	opts.Topic, opts.DLQTopic, opts.Group = s.Topic, s.Topic+".dlq", s.Topic
	return opts
}

// Drain consumes, with the real consume path, until every record produced
// so far is stored.
func (s *Sandbox) Drain(ctx context.Context, opts Options) (Stats, error) {
	end, err := s.Admin.EndOffsets(ctx, s.Topic)
	if err != nil {
		return Stats{}, err
	}
	opts = s.ConsumeOptions(opts)
	opts.Until = CaughtUp(end)
	st, err := Consume(ctx, s.cluster, s.DB, opts)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return st, err
}

// ConsumeUntil consumes until stop is closed and then every record
// produced by then is stored.
func (s *Sandbox) ConsumeUntil(ctx context.Context, opts Options, stop <-chan struct{}) (Stats, error) {
	var end map[int32]int64
	opts = s.ConsumeOptions(opts)
	opts.Until = func(stored map[int32]int64) bool {
		select {
		case <-stop:
		default:
			return false
		}
		if end == nil {
			var err error
			if end, err = s.Admin.EndOffsets(ctx, s.Topic); err != nil {
				return false
			}
		}
		return CaughtUp(end)(stored)
	}
	return Consume(ctx, s.cluster, s.DB, opts)
}

// RawCopy copies the n orders of Replayable(seed, start) into the
// sandbox's orders_raw (SandboxOptions.RawTable), with one COPY and no
// Kafka: the ceiling the sink is compared with.
func (s *Sandbox) RawCopy(ctx context.Context, seed int64, start time.Time, n int64) (int64, error) {
	gen, err := Replayable(seed, start)
	if err != nil {
		return 0, err
	}
	var o order.Order
	i := int64(0)
	return s.DB.RawCopyFunc(ctx, rawTable, func() *order.Order {
		if i == n {
			return nil
		}
		i++
		gen.Next(&o)
		return &o
	})
}
