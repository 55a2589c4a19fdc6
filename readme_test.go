package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// The README tells a user which Go builds foodpipe; go.mod's go line is what
// the go command enforces. A bump of one without the other leaves the README
// wrong, so every Go version the README states must be the go line.

func TestReadmeGoVersion(t *testing.T) {
	orig := readFiles(t, "README.md", "go.mod")
	for _, p := range readmeGoProblems(orig) {
		t.Error(p)
	}
	for _, tt := range []struct {
		name, file, old, new string
		all                  bool // replace every occurrence, not exactly one
		want                 string
	}{
		{"go.mod raised", "go.mod", "\ngo 1.26.8\n", "\ngo 1.27.0\n", false, "README.md states Go 1.26.8"},
		{"README behind", "README.md", "Go 1.26.8 or newer", "Go 1.25 or newer", true, "README.md states Go 1.25"},
		{"one README line behind", "README.md", "Go 1.26.8 or newer (the `go` line", "Go 1.26.7 or newer (the `go` line",
			false, "README.md states Go 1.26.7"},
		{"README states none", "README.md", "Go 1.26.8 or newer", "a recent Go", true, "README.md states no Go version"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"README.md": orig["README.md"], "go.mod": orig["go.mod"]}
			n := strings.Count(files[tt.file], tt.old)
			if n == 0 || (!tt.all && n != 1) {
				t.Fatalf("%s contains %q %d times; update this test", tt.file, tt.old, n)
			}
			files[tt.file] = strings.ReplaceAll(files[tt.file], tt.old, tt.new)
			checkCaught(t, readmeGoProblems(files), tt.want)
		})
	}
}

// readmeGo is a Go version stated in prose: "Go 1.26.8", "Go 1.26".
var readmeGo = regexp.MustCompile(`\bGo (\d+\.\d+(?:\.\d+)?)\b`)

func readmeGoProblems(files map[string]string) []string {
	m := goDirective.FindStringSubmatch(files["go.mod"])
	if m == nil {
		return []string{"go.mod has no go line"}
	}
	stated := readmeGo.FindAllStringSubmatch(files["README.md"], -1)
	if len(stated) == 0 {
		return []string{"README.md states no Go version; it should say Go " + m[1] + " or newer"}
	}
	var problems []string
	for _, s := range stated {
		if s[1] != m[1] {
			problems = append(problems, fmt.Sprintf("README.md states Go %s, go.mod's go line is %s", s[1], m[1]))
		}
	}
	return problems
}
