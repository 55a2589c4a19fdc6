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
	ctx, stop := stopOnSignal()
	defer stop()

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

// stopOnSignal returns a context that the first SIGINT, SIGTERM or SIGHUP
// cancels, starting a graceful stop. The default handlers are back before
// it is cancelled, so that once anything sees the stop, a second signal
// ends the process at once. SIGHUP (the terminal closed, or a supervisor's
// reload) is a stop like the others: without a handler it would kill the
// process with no summary and no final commit.
func stopOnSignal() (context.Context, func()) {
	stopping := []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, stopping...)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-sigs:
			signal.Reset(stopping...)
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		cancel()
	}
}
