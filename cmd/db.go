package cmd

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/store"
)

func newDBCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "db",
		Short: "Manage foodpipe's PostgreSQL schema",
	}
	groupCmd(c)
	c.AddCommand(newDBMigrateCmd(app), newDBStatusCmd(app))
	return c
}

type dbOptions struct {
	pg         config.Postgres
	migrations fs.FS
	output     string
	log        *slog.Logger
}

func newDBMigrateCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the embedded SQL migrations",
		Long: `Apply every pending migration embedded in the binary, under a PostgreSQL
advisory lock: running it again, or from several processes at once, is harmless.
Each migration runs in its own transaction, except one that builds an index
CONCURRENTLY (so that running consumers keep writing), which cannot.`,
		Example: `  foodpipe db migrate --database-url postgres://foodpipe@localhost:5432/foodpipe
  PGHOST=db PGUSER=foodpipe PGDATABASE=foodpipe foodpipe db migrate`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			opts, err := app.dbOptions(c)
			if err != nil {
				return err
			}
			return runDB(c.Context(), app.Stdout, opts, (*store.DB).Migrate)
		},
	}
	config.AddFlags(c.Flags(), "output")
	return c
}

func newDBStatusCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:     "status",
		Short:   "Show which migrations are applied",
		Example: "  foodpipe db status --output json",
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			opts, err := app.dbOptions(c)
			if err != nil {
				return err
			}
			return runDB(c.Context(), app.Stdout, opts, (*store.DB).MigrationStatus)
		},
	}
	config.AddFlags(c.Flags(), "output")
	return c
}

func (a *App) dbOptions(c *cobra.Command) (dbOptions, error) {
	e, err := a.load(c)
	if err != nil {
		return dbOptions{}, err
	}
	return dbOptionsFrom(a, e), nil
}

func dbOptionsFrom(app *App, e *env) dbOptions {
	return dbOptions{pg: e.cfg.Postgres, migrations: app.Migrations, output: e.cfg.Output, log: e.log}
}

func runDB(ctx context.Context, out io.Writer, opts dbOptions,
	do func(*store.DB, context.Context, fs.FS) ([]store.Migration, error)) error {
	db, err := store.Open(ctx, opts.pg, store.Options{AppName: "foodpipe db"}, opts.log)
	if err != nil {
		return err
	}
	defer db.Close()
	ms, err := do(db, ctx, opts.migrations)
	if err != nil {
		return err
	}
	if err := writeResult(out, opts.output, ms, func(w io.Writer) error { return printMigrations(w, ms) }); err != nil {
		return err
	}
	for _, m := range ms {
		if !m.Applied {
			return nil // pending: db migrate creates what is missing
		}
	}
	// Every migration is recorded as applied; the tables may still have
	// been dropped or altered by hand since.
	return checkColumns(ctx, db)
}

// checkColumns checks the tables of a migrated schema, which may have been
// dropped or altered by hand since.
func checkColumns(ctx context.Context, db *store.DB) error {
	if err := db.CheckColumns(ctx); err != nil {
		return fmt.Errorf("the migrations are recorded as applied (goose_db_version), but %w: it was changed by hand "+
			"after they ran; restore it, or migrate a schema of its own", err)
	}
	return nil
}

func printMigrations(w io.Writer, ms []store.Migration) error {
	tw := table(w)
	fmt.Fprintln(tw, "VERSION\tFILE\tSTATE\tAPPLIED AT")
	for _, m := range ms {
		state, at := "pending", "-"
		if m.Applied {
			state, at = "applied", m.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		if m.Ran {
			state = "applied now"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", m.Version, m.File, state, at)
	}
	return tw.Flush()
}
