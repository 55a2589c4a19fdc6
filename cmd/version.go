package cmd

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/foodpipe/foodpipe/pkg/config"
)

// buildInfo is what a foodpipe binary knows about its own build; `version`
// prints it and `--version` prints the same line.
type buildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"` // the commit's date, RFC 3339 UTC
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

func newVersionCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the version of foodpipe",
		Long: `Print the version, the commit it was built from, the commit's date, and the Go
version and platform of the build. --version prints the same line.`,
		Example: `  foodpipe version
  foodpipe version --output json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := app.load(c)
			if err == nil {
				return runVersion(app.Stdout, app.build(), e.cfg.Output)
			}
			// The version is what a user checks first when something is
			// wrong, a broken config file included: answer with --output
			// alone.
			output, _ := c.Flags().GetString("output")
			if output != "text" && output != "json" {
				return err
			}
			fmt.Fprintf(app.Stderr, "foodpipe: configuration ignored: %s\n", oneLine(err.Error()))
			return runVersion(app.Stdout, app.build(), output)
		},
	}
	config.AddFlags(c.Flags(), "output")
	return c
}

func runVersion(w io.Writer, b buildInfo, output string) error {
	return writeResult(w, output, b, func(w io.Writer) error {
		_, err := fmt.Fprintln(w, b.line())
		return err
	})
}

// line is the one-line form: foodpipe 1.2.3 (commit 0a1b…, date 2026-…, go1.26.8, linux/amd64).
// A fact the build did not record is left out rather than shown empty.
func (b buildInfo) line() string {
	var facts []string
	if b.Commit != "" {
		facts = append(facts, "commit "+b.Commit)
	}
	if b.Date != "" {
		facts = append(facts, "date "+b.Date)
	}
	facts = append(facts, b.Go, b.OS+"/"+b.Arch)
	return fmt.Sprintf("foodpipe %s (%s)", b.Version, strings.Join(facts, ", "))
}

// build returns the facts of this binary's build.
func (a *App) build() buildInfo {
	bi, _ := debug.ReadBuildInfo()
	return newBuildInfo(a.Version, a.Commit, a.Date, bi)
}

// newBuildInfo prefers what the release build linked in (-ldflags "-X
// main.version=… -X main.commit=… -X main.date=…"). A plain go build or go
// install links nothing, so the rest comes from what Go recorded: the module
// version (go install …@v1.2.3), else "dev", and the VCS revision and its
// commit time when the build ran in a clone. bi may be nil.
func newBuildInfo(version, commit, date string, bi *debug.BuildInfo) buildInfo {
	b := buildInfo{Version: version, Commit: commit, Date: date,
		Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if bi == nil {
		if b.Version == "" {
			b.Version = "dev"
		}
		return b
	}
	if b.Version == "" {
		b.Version = "dev"
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			// Without the "v", as the release build writes it: 1.2.3.
			b.Version = strings.TrimPrefix(v, "v")
		}
	}
	var revision, modified, at string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		case "vcs.time":
			at = s.Value
		}
	}
	if b.Commit == "" && revision != "" {
		b.Commit = revision
		if modified == "true" {
			// Built from a work tree with uncommitted changes: the
			// commit alone does not describe this binary.
			b.Commit += "-dirty"
		}
	}
	if b.Date == "" {
		b.Date = at
	}
	return b
}
