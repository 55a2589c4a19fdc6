package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"go.yaml.in/yaml/v3"
)

// There is no Docker engine where the tests run, so `docker build .` cannot
// be run here. These tests check what can be checked without one: the base
// images are pinned and agree with go.mod, the image runs foodpipe as a
// non-root user, the build stamps the variables main.go declares (as the
// release build does), and the build context that .dockerignore lets through
// holds every file `go build .` reads.

// distroless is the base of both images: Dockerfile (docker build .) and
// Dockerfile.release (goreleaser).
const distroless = "gcr.io/distroless/static-debian12:nonroot"

func TestDockerfiles(t *testing.T) {
	files := readFiles(t, "Dockerfile", "Dockerfile.release", ".goreleaser.yaml", "main.go", "go.mod")
	for _, p := range imageProblems(files) {
		t.Error(p)
	}
}

func TestDockerfileMutations(t *testing.T) {
	tests := []struct {
		name, file, old, new string
		want                 string
	}{
		{"unchanged", "Dockerfile", "", "", ""},
		{"builder latest", "Dockerfile", "golang:1.26.8 AS build", "golang:latest AS build", "not pinned"},
		{"builder not go.mod's Go", "Dockerfile", "golang:1.26.8 AS build", "golang:1.25.4 AS build", "want golang:1.26.8"},
		{"base without tag", "Dockerfile", "FROM " + distroless, "FROM gcr.io/distroless/static-debian12", "not pinned"},
		{"base latest", "Dockerfile", "FROM " + distroless, "FROM gcr.io/distroless/static-debian12:latest", "not pinned"},
		{"runs as root", "Dockerfile", "USER nonroot:nonroot", "USER root", "runs as root"},
		{"cgo", "Dockerfile", "CGO_ENABLED=0", "CGO_ENABLED=1", "CGO_ENABLED=0"},
		{"version not stamped", "Dockerfile", "-X main.version=$VERSION", "", "main.version"},
		{"stamps a variable main.go lacks", "main.go", "var version, commit, date string", "var version, commit string", "main.date"},
		{"release image elsewhere", "Dockerfile.release", "FROM " + distroless, "FROM alpine:3.20", "want " + distroless},
		{"release image runs a shell", "Dockerfile.release", `ENTRYPOINT ["/usr/local/bin/foodpipe"]`, `ENTRYPOINT /usr/local/bin/foodpipe`, "ENTRYPOINT"},
		{"goreleaser forgets the commit", ".goreleaser.yaml", "-X main.commit={{ .FullCommit }}", "", "main.commit"},
	}
	orig := readFiles(t, "Dockerfile", "Dockerfile.release", ".goreleaser.yaml", "main.go", "go.mod")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{}
			for k, v := range orig {
				files[k] = v
			}
			if tt.old != "" {
				if strings.Count(files[tt.file], tt.old) != 1 {
					t.Fatalf("%s does not contain %q exactly once; update this test", tt.file, tt.old)
				}
				files[tt.file] = strings.Replace(files[tt.file], tt.old, tt.new, 1)
			}
			checkCaught(t, imageProblems(files), tt.want)
		})
	}
}

func TestDockerContext(t *testing.T) {
	ignore, err := os.ReadFile(".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range contextProblems(t, string(ignore)) {
		t.Error(p)
	}
	for _, tt := range []struct{ name, add, want string }{
		{"migrations left out", "sql/\n", "sql/00001_orders.sql"},
		{"a package left out", "pkg/order/\n", "pkg/order/order.go"},
		{"go.sum left out", "go.sum\n", "go.sum"},
		{"everything let in", "!*\n", ".git"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkCaught(t, contextProblems(t, string(ignore)+tt.add), tt.want)
		})
	}
}

func checkCaught(t *testing.T, problems []string, want string) {
	t.Helper()
	if want == "" {
		for _, p := range problems {
			t.Error(p)
		}
		return
	}
	for _, p := range problems {
		if strings.Contains(p, want) {
			return
		}
	}
	t.Errorf("mutation not caught: no problem mentions %q; problems: %q", want, problems)
}

func readFiles(t *testing.T, names ...string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		files[n] = string(b)
	}
	return files
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct{ cmd, args string }

func parseDockerfile(text string) []instruction {
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// fromImage is the image of a FROM instruction: its first word that is not
// a flag such as --platform.
func fromImage(args string) string {
	for _, w := range strings.Fields(args) {
		if !strings.HasPrefix(w, "--") {
			return w
		}
	}
	return ""
}

var goDirective = regexp.MustCompile(`(?m)^go (\S+)$`)

// imageProblems checks Dockerfile, Dockerfile.release and the goreleaser
// build against each other and against main.go and go.mod (the goreleaser
// image section: release_image_test.go).
func imageProblems(files map[string]string) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	goVersion := ""
	if m := goDirective.FindStringSubmatch(files["go.mod"]); m != nil {
		goVersion = m[1]
	}
	linked, err := mainVars(files["main.go"])
	if err != nil {
		add("main.go: %v", err)
	}
	for _, name := range []string{"Dockerfile", "Dockerfile.release"} {
		var froms []string
		var user, entrypoint, run string
		for _, in := range parseDockerfile(files[name]) {
			switch in.cmd {
			case "FROM":
				froms = append(froms, fromImage(in.args))
			case "USER":
				user = in.args
			case "ENTRYPOINT":
				entrypoint = in.args
			case "RUN":
				run += in.args + "\n"
			}
		}
		for _, img := range froms {
			if m := tagged.FindStringSubmatch(img); m == nil || m[1] == ":latest" {
				add("%s: base image %q is not pinned to a tag", name, img)
			}
		}
		if len(froms) == 0 || froms[len(froms)-1] != distroless {
			add("%s: final image is %v, want %s", name, froms, distroless)
		}
		if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
			add("%s: the image runs as root (USER %q)", name, user)
		}
		if entrypoint != `["/usr/local/bin/foodpipe"]` {
			add("%s: ENTRYPOINT is %s, want the exec form [\"/usr/local/bin/foodpipe\"] (there is no shell)", name, entrypoint)
		}
		if name == "Dockerfile" {
			if len(froms) < 2 || froms[0] != "golang:"+goVersion {
				add("Dockerfile: build stage is %v, want golang:%s, the go line of go.mod", froms, goVersion)
			}
			for _, flag := range []string{"CGO_ENABLED=0", "-trimpath"} {
				if !strings.Contains(run, flag) {
					add("Dockerfile: go build lacks %s", flag)
				}
			}
			stampProblems(add, linked, "Dockerfile", run)
		}
	}

	var gr struct {
		Builds []struct {
			Env     []string `yaml:"env"`
			Flags   []string `yaml:"flags"`
			Ldflags []string `yaml:"ldflags"`
		} `yaml:"builds"`
	}
	if err := yaml.Unmarshal([]byte(files[".goreleaser.yaml"]), &gr); err != nil || len(gr.Builds) != 1 {
		add(".goreleaser.yaml: want one build: %v", err)
		return problems
	}
	b := gr.Builds[0]
	stampProblems(add, linked, ".goreleaser.yaml", strings.Join(b.Ldflags, " "))
	if !slices.Contains(b.Env, "CGO_ENABLED=0") || !slices.Contains(b.Flags, "-trimpath") {
		add(".goreleaser.yaml: the build lacks CGO_ENABLED=0 or -trimpath")
	}
	return problems
}

// stampProblems requires that a build's link flags (text) set version,
// commit and date, and that main.go declares each (linked).
func stampProblems(add func(string, ...any), linked map[string]bool, where, text string) {
	for _, v := range []string{"version", "commit", "date"} {
		if !strings.Contains(text, "-X main."+v+"=") {
			add("%s does not set main.%s at link time", where, v)
		} else if !linked[v] {
			add("%s sets main.%s, which main.go does not declare", where, v)
		}
	}
}

// mainVars returns the package-level variables main.go declares.
func mainVars(src string) (map[string]bool, error) {
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", src, 0)
	if err != nil {
		return nil, err
	}
	vars := map[string]bool{}
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.VAR {
			for _, s := range g.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					vars[n.Name] = true
				}
			}
		}
	}
	return vars, nil
}

// contextProblems applies the .dockerignore text as docker does to the files
// of this clone and reports every file `go build .` needs that would not be
// in the build context, and large or private things that would be.
func contextProblems(t *testing.T, dockerignore string) []string {
	t.Helper()
	patterns, err := ignorefile.ReadAll(strings.NewReader(dockerignore))
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	sent := func(rel string) bool {
		excluded, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err != nil {
			t.Fatal(err)
		}
		return !excluded
	}

	var problems []string
	needed := []string{"go.mod", "go.sum"}
	for _, p := range localPackages(t) {
		for _, f := range append(p.GoFiles, p.EmbedFiles...) {
			rel, err := filepath.Rel(".", filepath.Join(p.Dir, f))
			if err != nil {
				t.Fatal(err)
			}
			needed = append(needed, rel)
		}
	}
	for _, f := range needed {
		if !sent(f) {
			problems = append(problems, fmt.Sprintf(".dockerignore keeps %s, which go build needs, out of the build context", f))
		}
	}
	for _, f := range []string{".git", "dist/checksums.txt", "e2e/main_test.go", ".cache/x"} {
		if sent(f) {
			problems = append(problems, fmt.Sprintf(".dockerignore lets %s into the build context", f))
		}
	}
	return problems
}

type goPackage struct {
	Dir        string
	GoFiles    []string
	EmbedFiles []string
	Module     *struct{ Path string }
}

// localPackages lists the packages of this module that the foodpipe binary
// is built from, with the files go build reads.
func localPackages(t *testing.T) []goPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-json", ".").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []goPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Module != nil && p.Module.Path == "github.com/foodpipe/foodpipe" {
			rel, err := filepath.Rel(wd, p.Dir)
			if err != nil || strings.HasPrefix(rel, "..") {
				t.Fatalf("package dir %s outside the module", p.Dir)
			}
			p.Dir = rel
			pkgs = append(pkgs, p)
		}
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages of this module", len(pkgs))
	}
	return pkgs
}
