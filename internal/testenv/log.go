package testenv

import (
	"log/slog"
	"os"
	"sync"
	"testing"
)

// Logger returns a logger that writes through t.Log, so a test's logs show
// only when it fails or runs with -v. FOODPIPE_TEST_LOG=debug shows more.
// Lines logged after the test ended (by a client still closing) are dropped:
// t.Log would panic.
func Logger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("FOODPIPE_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	w := &tWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type tWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(p[:len(p)-1]))
	}
	return len(p), nil
}
