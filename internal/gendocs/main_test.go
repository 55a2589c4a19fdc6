package main

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

func TestGenerate(t *testing.T) {
	out := t.TempDir()
	if err := run(out, "1.2.3", "2026-11-27T13:27:42Z"); err != nil {
		t.Fatal(err)
	}

	// One man page per command a user can run, named as man(1) finds it.
	var want []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		want = append(want, strings.ReplaceAll(c.CommandPath(), " ", "-")+".1.gz")
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() && !sub.IsAdditionalHelpTopicCommand() {
				walk(sub)
			}
		}
	}
	walk(root("1.2.3"))
	slices.Sort(want)
	for _, page := range []string{"foodpipe.1.gz", "foodpipe-produce.1.gz", "foodpipe-consume.1.gz",
		"foodpipe-topics-init.1.gz", "foodpipe-db-migrate.1.gz", "foodpipe-version.1.gz", "foodpipe-completion-bash.1.gz"} {
		if !slices.Contains(want, page) {
			t.Errorf("the command tree has no %s; the walk above is wrong", page)
		}
	}
	got := names(t, filepath.Join(out, "manpages"))
	if !slices.Equal(got, want) {
		t.Errorf("man pages:\n got %v\nwant %v", got, want)
	}
	for _, page := range got {
		text := gunzip(t, filepath.Join(out, "manpages", page))
		title := strings.ToUpper(strings.TrimSuffix(page, ".1.gz"))
		if !strings.HasPrefix(text, `.nh`+"\n"+`.TH "`+title+`" "1" "Nov 2026" "foodpipe 1.2.3" "foodpipe manual"`) {
			t.Errorf("%s: unexpected header:\n%.200s", page, text)
		}
		if strings.Contains(text, "Auto generated") {
			t.Errorf("%s carries a generation date; pages must be reproducible", page)
		}
	}
	if text := gunzip(t, filepath.Join(out, "manpages", "foodpipe-produce.1.gz")); !strings.Contains(text, `\fB--rate\fP`) {
		t.Errorf("foodpipe-produce.1 does not document --rate:\n%s", text)
	}

	// The three completion scripts, each recognisable by its shell.
	completions := map[string]string{
		"foodpipe.bash": "complete -o default -F __start_foodpipe foodpipe",
		"foodpipe.zsh":  "#compdef foodpipe",
		"foodpipe.fish": "complete -c foodpipe",
	}
	var wantScripts []string
	for file, marker := range completions {
		wantScripts = append(wantScripts, file)
		b, err := os.ReadFile(filepath.Join(out, "completions", file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), marker) {
			t.Errorf("%s lacks %q", file, marker)
		}
	}
	slices.Sort(wantScripts)
	if got := names(t, filepath.Join(out, "completions")); !slices.Equal(got, wantScripts) {
		t.Errorf("completions: got %v, want %v", got, wantScripts)
	}
}

func TestGenerateIsReproducible(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	when := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for _, dir := range []string{a, b} {
		if err := generate(root("1.2.3"), dir, "1.2.3", when); err != nil {
			t.Fatal(err)
		}
	}
	for _, sub := range []string{"manpages", "completions"} {
		for _, name := range names(t, filepath.Join(a, sub)) {
			x, _ := os.ReadFile(filepath.Join(a, sub, name))
			y, _ := os.ReadFile(filepath.Join(b, sub, name))
			if string(x) != string(y) {
				t.Errorf("%s/%s differs between two runs", sub, name)
			}
		}
	}
}

func TestRunRejectsABadDate(t *testing.T) {
	err := run(t.TempDir(), "1.2.3", "yesterday")
	if err == nil || !strings.Contains(err.Error(), `invalid -date "yesterday"`) {
		t.Errorf("got %v", err)
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

func gunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(b)
}
