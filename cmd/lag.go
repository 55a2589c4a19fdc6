package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/pipeline"
	"github.com/foodpipe/foodpipe/pkg/store"
)

type lagOptions struct {
	cluster    kafka.Cluster
	pg         config.Postgres
	migrations fs.FS
	topic      string
	group      string
	maxLag     int64 // -1: no limit
	output     string
	log        *slog.Logger
}

func newLagCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "lag",
		Short: "Show how far a consumer group is behind, partition by partition",
		Long: `Show, for every partition of the topic, the next offset the group stored in
PostgreSQL (what consume resumes from), the offset it committed in Kafka (a copy,
written after each database commit, for standard lag tools), the partition's end
offset, and the lag: the records still to store, end − stored. A partition with
nothing stored lags from its first record, where consume would start it.

With --max-lag N the command exits 1, after printing the table, when any partition
lags more than N records or is blocked: its stored offset lies outside the
partition (records deleted by retention, the topic created again), so consume
cannot resume it without --offset-out-of-range. For alerts and scripts.`,
		Example: `  foodpipe lag
  foodpipe lag --group orders --output json
  foodpipe lag --max-lag 10000 || page-someone`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := app.load(c)
			if err != nil {
				return err
			}
			return runLag(c.Context(), app.Stdout, lagOptionsFrom(app, e))
		},
	}
	config.AddFlags(c.Flags(), "group", "max-lag", "output")
	return c
}

func lagOptionsFrom(app *App, e *env) lagOptions {
	return lagOptions{
		cluster:    app.kafkaCluster(e),
		pg:         e.cfg.Postgres,
		migrations: app.Migrations,
		topic:      e.cfg.Kafka.Topic,
		group:      e.cfg.Consume.Group,
		maxLag:     e.cfg.Lag.MaxLag,
		output:     e.cfg.Output,
		log:        e.log,
	}
}

func runLag(ctx context.Context, out io.Writer, opts lagOptions) error {
	admin, err := kafka.NewAdmin(ctx, opts.cluster)
	if err != nil {
		return err
	}
	defer admin.Close()
	db, err := store.Open(ctx, opts.pg, store.Options{AppName: "foodpipe lag"}, opts.log)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.CheckMigrated(ctx, opts.migrations); err != nil {
		return err
	}
	rep, err := pipeline.Lag(ctx, admin, db, opts.topic, opts.group)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(rep.Partitions, func(r pipeline.LagRow) bool { return r.Stored != nil }) {
		warnUnknownGroup(ctx, db, opts)
	}
	if err := writeResult(out, opts.output, rep, func(w io.Writer) error { return printLag(w, rep) }); err != nil {
		return err
	}
	if opts.maxLag < 0 {
		return nil
	}
	return overMaxLag(rep.Over(opts.maxLag), opts)
}

// overMaxLag is the one line of a lag check that failed: the partitions
// lagging more than --max-lag, and those consume cannot resume.
func overMaxLag(over []pipeline.LagRow, opts lagOptions) error {
	if len(over) == 0 {
		return nil
	}
	var lagging, blocked []string
	for _, r := range over {
		if r.Blocked {
			blocked = append(blocked, fmt.Sprint(r.Partition))
		} else {
			lagging = append(lagging, fmt.Sprintf("partition %d lags %d", r.Partition, r.Lag))
		}
	}
	var parts []string
	if len(lagging) > 0 {
		parts = append(parts, fmt.Sprintf("is more than --max-lag %d records behind in %s: %s",
			opts.maxLag, opts.topic, strings.Join(lagging, ", ")))
	}
	if len(blocked) > 0 {
		parts = append(parts, fmt.Sprintf("cannot resume in %s: consume cannot resume partition %s (see the note)",
			opts.topic, strings.Join(blocked, ", ")))
	}
	return errors.New("group " + opts.group + " " + strings.Join(parts, "; and "))
}

// warnUnknownGroup says that the group stored nothing for the topic, and
// which groups did: a misspelt --group otherwise just shows a full lag.
func warnUnknownGroup(ctx context.Context, db *store.DB, opts lagOptions) {
	groups, err := db.Groups(ctx, opts.topic)
	if err != nil {
		return // the table stands without the hint
	}
	opts.log.Warn("this group has stored nothing for this topic: is its name right?",
		"group", opts.group, "topic", opts.topic, "groups_with_offsets", strings.Join(groups, ","))
}

func printLag(w io.Writer, r pipeline.LagReport) error {
	tw := table(w)
	fmt.Fprintf(tw, "topic %s, group %s\n", r.Topic, r.Group)
	fmt.Fprint(tw, "PARTITION\tSTORED\tCOMMITTED\tEND\tLAG")
	notes := slices.ContainsFunc(r.Partitions, func(p pipeline.LagRow) bool { return p.Note != "" })
	if notes {
		fmt.Fprint(tw, "\tNOTE")
	}
	fmt.Fprintln(tw)
	for _, p := range r.Partitions {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d", p.Partition, offsetOrDash(p.Stored), offsetOrDash(p.Committed), p.End, p.Lag)
		if notes {
			fmt.Fprintf(tw, "\t%s", p.Note)
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintf(tw, "total\t\t\t\t%d\n", r.Total)
	return tw.Flush()
}

func offsetOrDash(o *int64) string {
	if o == nil {
		return "-"
	}
	return strconv.FormatInt(*o, 10)
}
