package config

// Reading the config file: one YAML document of key: value lines.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decodeFile reads the settings of a config file. A key given twice, a
// document that is not key: value lines and a second document are errors
// (YAML would keep the last value or ignore the rest without a word). For
// the keys in text — string settings — a scalar YAML reads as a number or
// a boolean keeps the text as written: group: 007 is "007", not 7.
func decodeFile(data []byte, text map[string]bool) (map[string]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, nil // an empty file
	} else if err != nil {
		return nil, errors.New(oneLine(strings.TrimPrefix(err.Error(), "yaml: ")))
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("more than one YAML document (a line ---): foodpipe reads one")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil // a document of comments only
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want key: value lines", root.Line)
	}
	out := make(map[string]any, len(root.Content)/2)
	line := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if first, seen := line[k.Value]; seen {
			return nil, fmt.Errorf("key %q given twice (lines %d and %d)", k.Value, first, k.Line)
		}
		line[k.Value] = k.Line
		if text[k.Value] && v.Kind == yaml.ScalarNode && (v.Tag == "!!int" || v.Tag == "!!float" || v.Tag == "!!bool") {
			out[k.Value] = v.Value
			continue
		}
		var val any
		if err := v.Decode(&val); err != nil {
			return nil, fmt.Errorf("line %d: %s", v.Line, oneLine(strings.TrimPrefix(err.Error(), "yaml: ")))
		}
		out[k.Value] = val
	}
	return out, nil
}

// oneLine joins the lines of a multi-line message, such as YAML's
// "unmarshal errors:\n  line 3: …", into one.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
