package cmd

import (
	"context"
	"errors"
	"flag"

	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/store"
)

// Exit codes of the CLI contract (SPEC "Commands").
const (
	ExitOK      = 0 // success, including a graceful stop on SIGINT/SIGTERM
	ExitFailure = 1 // runtime failure: a service unreachable, orders not delivered
	ExitUsage   = 2 // bad flag, bad value, unknown config key
)

// usageError marks an error the user fixes by changing the invocation.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usage(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

// exitCode maps the error a command returned to the process exit code.
// A command interrupted by the first SIGINT/SIGTERM before it had anything
// to report stops gracefully: that is success.
func exitCode(ctx context.Context, err error) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue), errors.Is(err, store.ErrBadURL), errors.Is(err, kafka.ErrSettingRefused),
		errors.Is(err, kafka.ErrBadSetting):
		// A database-url that does not parse is found when a command
		// opens the database, a TLS file that cannot serve when it makes a
		// Kafka client, a session timeout the broker refuses when the
		// consumer joins; either way the invocation is wrong.
		return ExitUsage
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return ExitOK
	}
	return ExitFailure
}
