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
