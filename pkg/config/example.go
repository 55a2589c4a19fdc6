package config

import (
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

const exampleHeader = `# foodpipe configuration: every key, with its default.
#
# Copy this file to ./foodpipe.yaml (or $XDG_CONFIG_HOME/foodpipe/config.yaml,
# ~/.config by default, or pass --config FILE) and change what you need. Each
# key is also a flag (--KEY) and an environment variable (FOODPIPE_KEY, upper
# case, '-' becomes '_').
# Precedence: flag > environment > this file > default. Unknown keys are an error.
`

// Example renders config.example.yaml: every key in documentation order,
// under its section, with its help text, its environment variable and flag,
// and its default. The file in the repository is this output (a test keeps
// them equal).
func Example() ([]byte, error) {
	def := Default()
	var b bytes.Buffer
	b.WriteString(exampleHeader)
	section := ""
	for _, f := range fields(&def) {
		if f.Section != section {
			section = f.Section
			if section == "general" {
				b.WriteString("\n")
			} else {
				fmt.Fprintf(&b, "\n# ── %s ──\n\n", section)
			}
		}
		fmt.Fprintf(&b, "# %s. Env: %s, flag: --%s.\n", f.Usage, f.EnvVar(), f.Name)
		val, err := yaml.Marshal(map[string]any{f.Name: plain(f)})
		if err != nil {
			return nil, err
		}
		line := strings.TrimSpace(string(val))
		if l, ok := f.v.Interface().([]string); ok {
			line = f.Name + ": [" + strings.Join(l, ", ") + "]"
		}
		b.WriteString(line + "\n")
	}
	return b.Bytes(), nil
}
