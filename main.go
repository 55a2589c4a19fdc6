// Command foodpipe runs every role of a Kafka → PostgreSQL event pipeline
// for food orders. See README.md.
package main

import (
	"context"
	"embed"
	"io/fs"
	"os"
	"os/signal"
	"sync"
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
	hard := &cmd.HardStops{}
	ctx, stop := stopOnSignal(hard)
	defer stop()
	// A write to a closed stdout (foodpipe demo | head -1) fails with EPIPE
	// instead of killing the process, so that it stops the way any failed
	// write stops it: what it started is stopped and removed.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)

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
		HardStops:  hard,
	}, os.Args[1:])
	stop()
	os.Exit(code)
}

// stopOnSignal returns a context that the first SIGINT, SIGTERM or SIGHUP
// cancels, starting a graceful stop. A second one ends the process at once,
// after the hard stops (what must not outlive it): it dies of that signal
// (or, where a signal cannot be raised, exits 128 + its number). SIGHUP
// (the terminal closed, or a supervisor's reload) is a stop like the
// others: without a handler it would kill the process with no summary and
// no final commit.
func stopOnSignal(hard *cmd.HardStops) (context.Context, func()) {
	stopping := []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, stopping...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-done:
			return
		}
		select {
		case sig := <-sigs:
			signal.Reset(stopping...) // a third signal does not wait for the hard stops
			hard.Run()
			raise(sig) // dies of it, as with no handler at all
			code := 128 + int(syscall.SIGTERM)
			if s, ok := sig.(syscall.Signal); ok {
				code = 128 + int(s)
			}
			os.Exit(code)
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(done)
			cancel()
		})
	}
}
