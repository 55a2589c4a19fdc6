// Command foodpipe runs every role of a Kafka → PostgreSQL event pipeline
// for food orders. See README.md.
package main

import (
	"context"
	"embed"
	"io/fs"
	"os"
	"os/signal"
	"syscall"

	"github.com/foodpipe/foodpipe/cmd"
)

// The release build (.goreleaser.yaml) sets these at link time:
// -ldflags "-X main.version=1.2.3 -X main.commit=<sha> -X main.date=<RFC 3339>".
// Left empty, foodpipe falls back to what Go recorded in the binary.
var version, commit, date string

//go:embed sql/*.sql
var migrations embed.FS

func main() {
	// The first SIGINT/SIGTERM/SIGHUP cancels ctx and starts a graceful
	// stop; stop() then restores the default handlers, so a second signal
	// ends the process at once. SIGHUP (the terminal closed, or a
	// supervisor's reload) is a stop like the others: without a handler it
	// would kill the process with no summary and no final commit.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		<-ctx.Done()
		stop()
	}()

	sqlFiles, err := fs.Sub(migrations, "sql")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	code := cmd.Execute(ctx, &cmd.App{
		Version:    version,
		Commit:     commit,
		Date:       date,
		Migrations: sqlFiles,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
	}, os.Args[1:])
	stop()
	os.Exit(code)
}
