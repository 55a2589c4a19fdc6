package cmd

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
)

func newTopicsCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "topics",
		Short: "Manage foodpipe's Kafka topics",
	}
	groupCmd(c)
	c.AddCommand(newTopicsInitCmd(app))
	return c
}

type topicsInitOptions struct {
	cluster       kafka.Cluster
	specs         []kafka.TopicSpec
	addPartitions bool
	output        string
}

func newTopicsInitCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "init",
		Short: "Create or check the orders topic and its dead-letter topic",
		Long: `Create the orders topic and its dead-letter topic (<topic>.dlq) if they are
missing, and check them if they exist. A topic that differs from what was asked
is reported key by key and the command exits 1. Partitions are only ever added,
with --add-partitions, never removed.`,
		Example: `  foodpipe topics init
  foodpipe topics init --brokers kafka1:9092,kafka2:9092 --replication-factor 3
  foodpipe topics init --partitions 6 --add-partitions --output json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := app.load(c)
			if err != nil {
				return err
			}
			return runTopicsInit(c.Context(), app.Stdout, topicsInitOptionsFrom(app, e))
		},
	}
	config.AddFlags(c.Flags(), "partitions", "replication-factor", "retention", "dlq-topic", "dlq-retention", "add-partitions", "output")
	return c
}

func topicsInitOptionsFrom(app *App, e *env) topicsInitOptions {
	return topicsInitOptions{
		cluster:       app.kafkaCluster(e),
		specs:         kafka.Specs(e.cfg.Kafka, e.cfg.Topics),
		addPartitions: e.cfg.Topics.AddPartitions,
		output:        e.cfg.Output,
	}
}

func runTopicsInit(ctx context.Context, out io.Writer, opts topicsInitOptions) error {
	admin, err := kafka.NewAdmin(ctx, opts.cluster)
	if err != nil {
		return err
	}
	defer admin.Close()
	// Topics created before a failure are listed all the same.
	results, err := admin.EnsureTopics(ctx, opts.specs, opts.addPartitions)
	if err == nil || len(results) > 0 {
		if werr := writeResult(out, opts.output, results, func(w io.Writer) error {
			return printTopics(w, results)
		}); werr != nil {
			return werr
		}
	}
	if err != nil {
		return err
	}
	var differ []string
	for _, r := range results {
		if r.Status == kafka.StatusDiffers {
			differ = append(differ, r.Topic)
		}
	}
	if len(differ) > 0 {
		return fmt.Errorf("%s not as configured: see the differences above", strings.Join(differ, " and "))
	}
	return nil
}

func printTopics(w io.Writer, results []kafka.TopicResult) error {
	tw := table(w)
	fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tREPLICAS\tCONFIGS\tSTATUS")
	for _, r := range results {
		var configs []string
		for _, k := range slices.Sorted(maps.Keys(r.Configs)) {
			configs = append(configs, k+"="+r.Configs[k])
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", r.Topic, r.Partitions, r.ReplicationFactor, strings.Join(configs, ","), r.Status)
		for _, d := range r.Differences {
			fmt.Fprintf(tw, "  %s\t\t\t\twant %s, got %s\n", d.Key, d.Want, d.Got)
		}
	}
	return tw.Flush()
}
