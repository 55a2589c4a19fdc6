package cmd

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// execute runs foodpipe with args against in-memory streams, with no config
// file and no FOODPIPE_OUTPUT from the developer's environment in the way.
func execute(t *testing.T, app *App, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", home)
	t.Setenv("FOODPIPE_CONFIG", "")
	t.Setenv("FOODPIPE_OUTPUT", "")
	var out, errOut bytes.Buffer
	app.Stdout, app.Stderr = &out, &errOut
	code = Execute(t.Context(), app, args)
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	app := func() *App {
		return &App{Version: "1.2.3", Commit: "0123456789abcdef0123456789abcdef01234567", Date: "2026-11-27T13:27:42Z"}
	}
	platform := runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH
	wantLine := "foodpipe 1.2.3 (commit 0123456789abcdef0123456789abcdef01234567, date 2026-11-27T13:27:42Z, " + platform + ")\n"

	tests := []struct {
		name string
		args []string
		code int
		want string // stdout, or for a usage error a part of stderr
	}{
		{"version", []string{"version"}, ExitOK, wantLine},
		{"--version", []string{"--version"}, ExitOK, wantLine},
		{"output text", []string{"version", "--output", "text"}, ExitOK, wantLine},
		{"bad output", []string{"version", "--output", "yaml"}, ExitUsage, "output"},
		{"stray argument", []string{"version", "now"}, ExitUsage, "takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := execute(t, app(), tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if code == ExitOK && stdout != tt.want {
				t.Errorf("stdout:\n got %q\nwant %q", stdout, tt.want)
			}
			if code != ExitOK && !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not mention %q", stderr, tt.want)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		code, stdout, stderr := execute(t, app(), "version", "--output", "json")
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var got map[string]string
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, stdout)
		}
		want := map[string]string{
			"version": "1.2.3", "commit": "0123456789abcdef0123456789abcdef01234567", "date": "2026-11-27T13:27:42Z",
			"go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
		}
		if len(got) != len(want) {
			t.Errorf("keys: got %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: got %q, want %q", k, got[k], v)
			}
		}
	})
}

func TestNewBuildInfo(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	tests := []struct {
		name                  string
		version, commit, date string
		bi                    *debug.BuildInfo
		want                  [3]string // version, commit, date
	}{
		{"linked wins", "1.2.3", "abc", "2026-01-02T03:04:05Z",
			&debug.BuildInfo{Main: debug.Module{Version: "v9.9.9"}, Settings: vcs("vcs.revision", "def", "vcs.time", "2020-01-01T00:00:00Z")},
			[3]string{"1.2.3", "abc", "2026-01-02T03:04:05Z"}},
		{"go install of a version", "", "", "",
			&debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}},
			[3]string{"1.4.0", "", ""}},
		{"go build in a clone", "", "", "",
			&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("vcs.revision", "def", "vcs.time", "2026-11-27T10:00:00Z", "vcs.modified", "false")},
			[3]string{"dev", "def", "2026-11-27T10:00:00Z"}},
		{"uncommitted changes", "", "", "",
			&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("vcs.revision", "def", "vcs.modified", "true")},
			[3]string{"dev", "def-dirty", ""}},
		{"nothing recorded", "", "", "", nil, [3]string{"dev", "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBuildInfo(tt.version, tt.commit, tt.date, tt.bi)
			if got := [3]string{b.Version, b.Commit, b.Date}; got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if b.Go != runtime.Version() || b.OS != runtime.GOOS || b.Arch != runtime.GOARCH {
				t.Errorf("platform: got %s %s/%s", b.Go, b.OS, b.Arch)
			}
		})
	}
}

// TestVersionDespiteABrokenConfig: version answers even when the config
// file it would read is broken — it is what a user checks first when
// something is wrong — and says on stderr that it ignored the file.
func TestVersionDespiteABrokenConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "foodpipe.yaml"), []byte("topic: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	app := &App{Version: "1.2.3"}
	code, stdout, stderr := execute(t, app, "version", "--output", "json")
	var b buildInfo
	if err := json.Unmarshal([]byte(stdout), &b); err != nil || code != ExitOK || b.Version != "1.2.3" {
		t.Errorf("exit %d, stdout %q (%v); want the version as JSON", code, stdout, err)
	}
	if !strings.Contains(stderr, "foodpipe.yaml") || !strings.Contains(stderr, "ignored") {
		t.Errorf("stderr %q: want a line saying the broken config file was ignored", stderr)
	}
}
