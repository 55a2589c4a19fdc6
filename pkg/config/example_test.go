package config

// config.example.yaml against the Config struct it documents.

import (
	"bufio"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite config.example.yaml from the Config struct")

// TestExampleMatchesConfig keeps config.example.yaml and the Config struct in
// step: the file is exactly what Example renders (go test -update rewrites
// it), every key is documented by a comment, and loading it yields exactly
// the defaults.
func TestExampleMatchesConfig(t *testing.T) {
	const example = "../../config.example.yaml"
	rendered, err := Example()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(example, rendered, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(rendered) {
		t.Errorf("config.example.yaml is not what Example renders; run go test ./pkg/config -run TestExampleMatchesConfig -update")
	}

	// Independently of Example: key lines in Config order, each with a
	// comment above it.
	var keys []string
	prevComment := false
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
			prevComment = true
			continue
		case strings.TrimSpace(line) == "":
		default:
			key, _, ok := strings.Cut(line, ":")
			if !ok {
				t.Fatalf("example line %q is not key: value", line)
			}
			if !prevComment {
				t.Errorf("example key %q has no comment above it", key)
			}
			keys = append(keys, key)
		}
		prevComment = false
	}
	var want []string
	for _, k := range Keys() {
		want = append(want, k.Name)
	}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("example keys\n%q\nwant (Config struct order)\n%q", keys, want)
	}

	cfg, err := Load(nil, Options{File: example})
	if err != nil {
		t.Fatal(err)
	}
	cfg.File, cfg.set = "", nil // where values came from is not a value
	if def := Default(); !reflect.DeepEqual(*cfg, def) {
		t.Errorf("example values differ from the defaults:\n got %+v\nwant %+v", *cfg, def)
	}
}
