// Package cmd wires foodpipe's commands: flags, help text, output formats
// and exit codes. The work itself happens in pkg/.
package cmd

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/foodpipe/foodpipe/pkg/config"
)

// App is what main hands to Execute: the facts of the build, the embedded
// migrations and the process's standard streams.
type App struct {
	Version    string // set by -ldflags, like Commit and Date; empty ones fall back to Go's build info
	Commit     string
	Date       string
	Migrations fs.FS
	Stdout     io.Writer
	Stderr     io.Writer
	// HardStops, when set, are run by main on a second signal, before the
	// process ends at once.
	HardStops *HardStops
}

// globalKeys are the settings every command understands (SPEC "Commands").
var globalKeys = []string{
	"brokers", "topic", "database-url", "log-level", "log-format",
	"kafka-tls", "kafka-ca-file", "kafka-cert-file", "kafka-key-file",
	"kafka-sasl-mechanism", "kafka-username", "kafka-password",
	"kafka-timeout", "db-timeout",
}

// Execute runs the command line args and returns the process exit code.
// Errors are printed once, as one line, to stderr.
func Execute(ctx context.Context, app *App, args []string) int {
	root := newRootCmd(app)
	root.SetArgs(args)
	c, err := root.ExecuteContextC(ctx)
	code := exitCode(ctx, err)
	switch {
	case err != nil && code != ExitOK:
		fmt.Fprintf(app.Stderr, "foodpipe: %s\n", oneLine(err.Error()))
	case err != nil:
		// A graceful stop, but with nothing on stdout: say so, so that no
		// one takes the empty output for a result.
		fmt.Fprintf(app.Stderr, "foodpipe: %s stopped by a signal before it had a result\n",
			strings.TrimPrefix(c.CommandPath(), root.Name()+" "))
	}
	return code
}

// Command returns foodpipe's command tree without running it, for programs
// that read the tree: internal/gendocs writes the man pages and shell
// completions of a release from it.
func Command(app *App) *cobra.Command { return newRootCmd(app) }

func newRootCmd(app *App) *cobra.Command {
	root := &cobra.Command{
		Use:   "foodpipe",
		Short: "A Kafka → PostgreSQL event pipeline for food orders",
		Long: `foodpipe generates food orders and produces them to Kafka, consumes them in a
consumer group and stores them in PostgreSQL exactly once, and measures itself.

  foodpipe demo                                  all of it in one process, nothing to install
  foodpipe topics init && foodpipe db migrate    set up Kafka and PostgreSQL
  foodpipe produce --rate 100                    produce mock orders
  foodpipe consume                               store them in PostgreSQL

Every flag can also be set as FOODPIPE_<FLAG> in the environment or as a key of
the YAML config file (--config, ./foodpipe.yaml, $XDG_CONFIG_HOME/foodpipe/config.yaml).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// --version prints the very line `foodpipe version` prints, so the two
	// can never disagree.
	build := app.build()
	root.Version = build.Version
	root.SetVersionTemplate(build.line() + "\n")
	root.SetOut(app.Stdout)
	root.SetErr(app.Stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage(err) })
	groupCmd(root)

	pf := root.PersistentFlags()
	pf.String("config", "", "config file (default ./foodpipe.yaml, then foodpipe/config.yaml in the user config dir, $XDG_CONFIG_HOME or ~/.config); env FOODPIPE_CONFIG")
	config.AddFlags(pf, globalKeys...)
	addProfileFlags(root)

	root.AddCommand(
		newVersionCmd(app),
		newConfigCmd(app),
		newTopicsCmd(app),
		newDBCmd(app),
		newProduceCmd(app),
		newConsumeCmd(app),
		newLagCmd(app),
		newDLQCmd(app),
		newBenchCmd(app),
		newDemoCmd(app),
	)
	root.InitDefaultCompletionCmd()
	if c, _, err := root.Find([]string{"completion"}); err == nil && c != root {
		groupCmd(c) // completion tcsh: an unknown shell is a usage error
	}
	completeValues(root)
	return root
}

// completeValues makes shell completion offer the values of the flags that
// take one of a few (config.Choices), and directories for --pg-bin, in
// every command that has them.
func completeValues(c *cobra.Command) {
	c.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if values, ok := config.Choices[f.Name]; ok {
			_ = c.RegisterFlagCompletionFunc(f.Name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
		}
		if f.Name == "pg-bin" {
			_ = c.MarkFlagDirname(f.Name)
		}
	})
	for _, sub := range c.Commands() {
		completeValues(sub)
	}
}

// groupCmd makes a command that only holds subcommands print its help when
// called bare, and reject an unknown subcommand as a usage error.
func groupCmd(c *cobra.Command) {
	c.Args = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usage(fmt.Errorf("unknown command %q for %q", args[0], c.CommandPath()))
		}
		return nil
	}
	c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
}

// noArgs rejects positional arguments as a usage error.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usage(fmt.Errorf("%s takes no arguments, got %q", c.CommandPath(), strings.Join(args, " ")))
	}
	return nil
}

// oneLine prints an error of several lines (YAML's, a library's) on one,
// whole: its cause is often on the last line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
