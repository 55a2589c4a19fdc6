package main

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The image section of .goreleaser.yaml (dockers_v2) needs docker buildx, so
// scripts/release-check.sh skips it and it never runs here. These tests check
// what the published image promises instead: built from Dockerfile.release,
// for the two Linux platforms the README names, from binaries the build
// section makes, and with the OCI labels that registries and scanners read to
// tell which release, commit, source and licence an image is.

func TestDockerReleaseImage(t *testing.T) {
	for _, p := range releaseImageProblems(readFiles(t, ".goreleaser.yaml", "go.mod")) {
		t.Error(p)
	}
}

func TestDockerReleaseImageMutations(t *testing.T) {
	orig := readFiles(t, ".goreleaser.yaml", "go.mod")
	// label is the whole line of one OCI label, to drop it.
	label := func(k string) string {
		return regexp.MustCompile(`(?m)^ *org\.opencontainers\.image\.` + k + `: .*\n`).FindString(orig[".goreleaser.yaml"])
	}
	tests := []struct{ name, old, new, want string }{
		{"unchanged", "", "", ""},
		{"version label dropped", label("version"), "", "org.opencontainers.image.version is"},
		{"revision label dropped", label("revision"), "", "org.opencontainers.image.revision is"},
		{"source label dropped", label("source"), "", "org.opencontainers.image.source is"},
		{"licenses label dropped", label("licenses"), "", "org.opencontainers.image.licenses is"},
		{"title label dropped", label("title"), "", "org.opencontainers.image.title is"},
		{"version label fixed", `image.version: "{{ .Version }}"`, `image.version: "1.0.0"`, "org.opencontainers.image.version is"},
		{"source of a fork", "image.source: https://github.com/foodpipe/foodpipe", "image.source: https://github.com/fork/foodpipe",
			"org.opencontainers.image.source is"},
		{"another licence", "image.licenses: Apache-2.0", "image.licenses: MIT", "org.opencontainers.image.licenses is"},
		{"arm64 dropped", "      - linux/arm64\n", "", "platforms are"},
		{"amd64 dropped", "      - linux/amd64\n", "", "platforms are"},
		{"platform not built", "      - linux/arm64\n", "      - linux/arm64\n      - linux/riscv64\n", "linux/riscv64 is not built"},
		{"labels dropped", "labels: &oci", "x-labels: &oci", "org.opencontainers.image.title is"},
		{"another dockerfile", "dockerfile: Dockerfile.release", "dockerfile: Dockerfile", "not built from Dockerfile.release"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"go.mod": orig["go.mod"], ".goreleaser.yaml": orig[".goreleaser.yaml"]}
			if tt.name != "unchanged" {
				if strings.Count(files[".goreleaser.yaml"], tt.old) != 1 {
					t.Fatalf(".goreleaser.yaml does not contain %q exactly once; update this test", tt.old)
				}
				files[".goreleaser.yaml"] = strings.Replace(files[".goreleaser.yaml"], tt.old, tt.new, 1)
			}
			checkCaught(t, releaseImageProblems(files), tt.want)
		})
	}
}

var moduleDirective = regexp.MustCompile(`(?m)^module (\S+)$`)

// releaseImageProblems checks the dockers_v2 section of .goreleaser.yaml
// against its build section and go.mod.
func releaseImageProblems(files map[string]string) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	var gr struct {
		ProjectName string `yaml:"project_name"`
		Builds      []struct {
			Goos   []string `yaml:"goos"`
			Goarch []string `yaml:"goarch"`
		} `yaml:"builds"`
		Dockers []struct {
			Dockerfile string            `yaml:"dockerfile"`
			Platforms  []string          `yaml:"platforms"`
			Labels     map[string]string `yaml:"labels"`
		} `yaml:"dockers_v2"`
	}
	if err := yaml.Unmarshal([]byte(files[".goreleaser.yaml"]), &gr); err != nil || len(gr.Dockers) != 1 {
		return []string{fmt.Sprintf(".goreleaser.yaml: want one dockers_v2 image: %v", err)}
	}
	d := gr.Dockers[0]
	if d.Dockerfile != "Dockerfile.release" {
		add(".goreleaser.yaml: the image is not built from Dockerfile.release (dockerfile: %q)", d.Dockerfile)
	}

	// The platforms the README promises, each one a binary the build makes:
	// Dockerfile.release copies it rather than compiling.
	if got, want := slices.Sorted(slices.Values(d.Platforms)), []string{"linux/amd64", "linux/arm64"}; !slices.Equal(got, want) {
		add(".goreleaser.yaml: image platforms are %q, want %q", got, want)
	}
	for _, p := range d.Platforms {
		goos, goarch, _ := strings.Cut(p, "/")
		if built := len(gr.Builds) == 1 && slices.Contains(gr.Builds[0].Goos, goos) && slices.Contains(gr.Builds[0].Goarch, goarch); !built {
			add(".goreleaser.yaml: image platform %s is not built by the build section", p)
		}
	}

	module := ""
	if m := moduleDirective.FindStringSubmatch(files["go.mod"]); m != nil {
		module = m[1]
	}
	want := map[string]string{
		"title":    gr.ProjectName,
		"version":  "{{ .Version }}",
		"revision": "{{ .FullCommit }}",
		"source":   "https://" + module,
		"licenses": "Apache-2.0", // LICENSE, by its SPDX identifier
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		key := "org.opencontainers.image." + k
		if got := d.Labels[key]; got != want[k] || got == "" {
			add(".goreleaser.yaml: image label %s is %q, want %q", key, got, want[k])
		}
	}
	return problems
}
