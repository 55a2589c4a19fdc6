package cmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/foodpipe/foodpipe/pkg/bench"
	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/store"
)

func newBenchCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput and latency: produce, sink, end to end",
		Long: `Measure foodpipe on your Kafka and PostgreSQL. Every mode creates its own
uniquely named topic (and schema) and removes them afterwards unless --keep is
given, and prints the machine facts with the result.

  bench produce   producer throughput and ack latency, like kafka-producer-perf-test
  bench sink      drain a backlog into PostgreSQL, next to a raw COPY ceiling
  bench e2e       produce and consume at once; latency from created_at to the commit`,
	}
	groupCmd(c)
	c.AddCommand(newBenchProduceCmd(app), newBenchSinkCmd(app), newBenchE2ECmd(app))
	return c
}

// machine is the facts a bench result must be read with.
func machine(ctx context.Context, admin *kafka.Admin, db *store.DB) bench.Machine {
	m := bench.Facts()
	m.Kafka = admin.BrokerVersion(ctx)
	if db != nil {
		if v, err := db.ServerVersion(ctx); err == nil {
			m.Postgres = v
		}
	}
	return m
}

func printMachine(w io.Writer, m bench.Machine) {
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s, %s", m.CPUs, m.CPUModel, m.OS, m.Go)
	if m.Kafka != "" {
		fmt.Fprintf(w, ", Kafka %s", m.Kafka)
	}
	if m.Postgres != "" {
		fmt.Fprintf(w, ", PostgreSQL %s", m.Postgres)
	}
	fmt.Fprintln(w)
}

// phaseLog logs the step a bench is at.
func phaseLog(log *slog.Logger) func(string) { return func(s string) { log.Info(s) } }
