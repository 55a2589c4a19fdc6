//go:build !unix

package store

import (
	"log/slog"
	"time"
)

// reapStale does nothing where processes cannot be probed portably.
func reapStale(*slog.Logger) {}

func writeOwner(string) error { return nil }

// quitServer cannot signal the server here: the regular stop (pg_ctl) is
// all there is.
func quitServer(string, time.Duration) bool { return false }
