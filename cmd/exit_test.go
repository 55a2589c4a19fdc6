package cmd

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestInterruptedBeforeAResult: a command stopped by the first signal
// before it had anything to report exits 0 (a graceful stop), and says on
// stderr that it stopped without a result: a script must not take its
// empty stdout for one.
func TestInterruptedBeforeAResult(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", home)
	t.Setenv("FOODPIPE_CONFIG", "")
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the signal came
	var out, errOut bytes.Buffer
	app := &App{Stdout: &out, Stderr: &errOut}
	code := Execute(ctx, app, []string{"bench", "produce", "--brokers", "127.0.0.1:9", "--records", "10"})
	if code != ExitOK || out.Len() != 0 || !strings.Contains(errOut.String(), "foodpipe: bench produce stopped by a signal before it had a result") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 0, nothing, and a line saying it stopped without a result", code, out.String(), errOut.String())
	}
}

// TestCompletion: the flags that take one of a few values complete them
// (not file names), --pg-bin completes directories, and an unknown shell
// is a usage error, like an unknown command.
func TestCompletion(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	complete := func(args ...string) string {
		var out, errOut bytes.Buffer
		if code := Execute(t.Context(), &App{Stdout: &out, Stderr: &errOut}, append([]string{"__complete"}, args...)); code != ExitOK {
			t.Fatalf("__complete %v: exit %d\n%s", args, code, errOut.String())
		}
		return out.String()
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--output", ""}, "text\njson\n:4\n"},
		{[]string{"consume", "--offset-out-of-range", ""}, "fail\nearliest\nlatest\n:4\n"},
		{[]string{"dlq", "replay", "--class", ""}, "decode\nvalidate\nstore\n:4\n"},
		{[]string{"produce", "--log-level", ""}, "debug\ninfo\nwarn\nerror\n:4\n"},
		{[]string{"demo", "--pg-bin", ""}, ":16\n"},
	} {
		if got := complete(tt.args...); got != tt.want {
			t.Errorf("__complete %v = %q, want %q", tt.args, got, tt.want)
		}
	}
	var out, errOut bytes.Buffer
	if code := Execute(t.Context(), &App{Stdout: &out, Stderr: &errOut}, []string{"completion", "tcsh"}); code != ExitUsage ||
		!strings.Contains(errOut.String(), `unknown command "tcsh"`) {
		t.Errorf("completion tcsh: exit %d, stderr %q; want 2 naming the shell", code, errOut.String())
	}
}
