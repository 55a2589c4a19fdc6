package pipeline

// The services a demo runs on: the in-process broker or the user's Kafka,
// embedded PostgreSQL or a schema of its own on the user's server, and
// what a hard stop leaves of them.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/store"
)

// kafka starts the in-process broker, or reaches the real cluster and
// names a topic of the demo's own there, and creates the topics.
func (d *Demo) kafka(ctx context.Context) error {
	k := d.opts.Kafka
	if d.opts.RealKafka {
		// A topic of its own: the demo's counts are of its own records, and
		// it never writes into a topic that holds real orders.
		k.Topic, k.DLQTopic = demoName(time.Now(), "-"), ""
		d.opts.Consume.Group = k.Topic
	} else {
		d.step("starting the in-process Kafka broker")
		addrs, stopBroker, err := kafka.StartLocalBroker()
		if err != nil {
			return err
		}
		d.undo = append(d.undo, stopBroker)
		k.Brokers = addrs
	}
	d.opts.Kafka = k
	d.res.Brokers = k.Brokers
	d.res.Explore.Brokers, d.res.Explore.Topic = k.Brokers, k.Topic
	d.res.DLQTopic = k.DLQ()
	d.cluster = kafka.Cluster{Config: k, ClientID: d.opts.ClientID, Logger: d.opts.Log, Metrics: d.opts.KafkaMetrics}
	var err error
	if d.admin, err = kafka.NewAdmin(ctx, d.cluster); err != nil {
		return err
	}
	d.undo = append(d.undo, d.admin.Close)
	specs := kafka.Specs(k, d.opts.Topics)
	if d.opts.RealKafka {
		d.undo = append(d.undo, d.leftBehind(fmt.Sprintf("topics %s and %s and group %s at %s",
			k.Topic, k.DLQ(), d.opts.Consume.Group, strings.Join(k.Brokers, ","))))
		d.undo = append(d.undo, func() {
			if d.opts.Keep {
				d.opts.Log.Info("kept the demo's topics and group", "topics", []string{k.Topic, k.DLQ()}, "group", d.opts.Consume.Group)
				return
			}
			if err := d.admin.DeleteTopics(context.WithoutCancel(ctx), k.Topic, k.DLQ()); err != nil {
				d.opts.Log.Warn("could not delete the demo's topics", "err", err)
			}
			if err := d.admin.DeleteGroup(context.WithoutCancel(ctx), d.opts.Consume.Group); err != nil {
				d.opts.Log.Warn("could not delete the demo's group", "err", err)
			}
		})
	}
	d.step("creating the topics " + k.Topic + " and " + k.DLQ())
	d.res.Topics, err = d.admin.EnsureTopics(ctx, specs, false)
	return err
}

// atHardStop registers f to run if the process ends at once; the returned
// func, for undo, unregisters it.
func (d *Demo) atHardStop(f func()) (remove func()) {
	if d.opts.AtHardStop == nil {
		return func() {}
	}
	return d.opts.AtHardStop(f)
}

// leftBehind says in the log, if the process ends at once, that what the
// demo made on a real service stays there: removing it would take longer
// than "at once". Unregistered by undo, which removes it (or keeps it).
func (d *Demo) leftBehind(what string) (remove func()) {
	return d.atHardStop(func() {
		d.opts.Log.Error("the demo ended at once and left its "+what+": remove them by hand", "left", what)
	})
}

// demoName is a name unique to this run: foodpipe-demo-<time>-<random>,
// with sep between the words.
func demoName(now time.Time, sep string) string { return uniqueName("demo", now, sep) }

// postgres starts the embedded server, or makes a schema of the demo's own
// on the user's.
func (d *Demo) postgres(ctx context.Context) (config.Postgres, string, error) {
	if d.opts.Postgres == nil {
		what := "embedded PostgreSQL " + string(store.EmbeddedVersion)
		step := "starting the " + what + " (the first run downloads it)"
		if bin := d.opts.Embedded.BinDir; bin != "" {
			what = "PostgreSQL from " + bin
			step = "starting " + what
		}
		d.step(step)
		e, err := store.StartEmbedded(ctx, d.opts.Embedded)
		if err != nil {
			return config.Postgres{}, "", err
		}
		// Unregistered only once Stop has stopped it: a second signal
		// during Stop still gets it shut down.
		d.undo = append(d.undo, d.atHardStop(e.Kill), e.Stop)
		d.res.Postgres, d.res.Downloaded = what+", data in "+e.DataDir+" (removed at exit)", e.Downloaded
		return config.Postgres{DatabaseURL: e.URL, ConnectTimeout: 30 * time.Second}, "", nil
	}
	pg := *d.opts.Postgres
	schema := demoName(time.Now(), "_")
	root, err := store.Open(ctx, pg, store.Options{AppName: "foodpipe demo", MaxConns: 1}, d.opts.Log)
	if err != nil {
		return pg, "", err
	}
	d.undo = append(d.undo, root.Close)
	if err := root.CreateSchema(ctx, schema); err != nil {
		return pg, "", err
	}
	d.undo = append(d.undo, d.leftBehind("schema "+schema+" at "+root.Addr()))
	d.undo = append(d.undo, func() {
		if d.opts.Keep {
			d.opts.Log.Info("kept the demo's schema", "schema", schema)
			return
		}
		if err := root.DropSchema(context.WithoutCancel(ctx), schema); err != nil {
			d.opts.Log.Warn("could not drop the demo's schema", "schema", schema, "err", err)
		}
	})
	d.res.Postgres = "PostgreSQL at " + root.Addr() + ", schema " + schema
	return pg, schema, nil
}
