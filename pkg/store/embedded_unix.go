//go:build unix

package store

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// reapStale stops and removes the embedded servers of earlier runs whose
// foodpipe process is gone without stopping them (killed, or dead of a
// SIGPIPE on a closed stdout): pg_ctl runs the server detached, so nothing
// else would ever stop it. Runs of other users, and of processes still
// alive, are left alone.
func reapStale(log *slog.Logger) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), embeddedDirPrefix+"*"))
	for _, dir := range dirs {
		owner, err := readPID(filepath.Join(dir, ownerFile))
		if err != nil || alive(owner) {
			continue
		}
		if !quitServer(dir, 5*time.Second) {
			continue // not ours to stop
		}
		if err := os.RemoveAll(dir); err == nil {
			log.Info("removed the embedded PostgreSQL of an earlier demo that did not stop it", "dir", dir)
		}
	}
}

// quitServer stops the server of an embedded dir, if it runs, with
// PostgreSQL's immediate shutdown (SIGQUIT; the data is throwaway), and
// waits up to wait for it to go. It reports false when the server could
// not be signalled (another user's).
func quitServer(dir string, wait time.Duration) bool {
	pg, err := readPID(filepath.Join(dir, "data", "postmaster.pid"))
	if err != nil || !alive(pg) {
		return true
	}
	if err := syscall.Kill(pg, syscall.SIGQUIT); err != nil {
		return false
	}
	for deadline := time.Now().Add(wait); alive(pg) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// writeOwner records this process as the owner of an embedded server's dir.
func writeOwner(dir string) error {
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

// readPID reads the number on the first line of a pid file.
func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}

// alive reports whether a process with this pid exists (ours or not).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
