package cmd

import (
	"encoding/json"
	"io"
	"text/tabwriter"
)

// writeResult prints a command's result struct: as indented JSON when the
// output format is json, else through text, which renders it for people.
// One struct feeds both, so the two formats cannot drift apart.
func writeResult(w io.Writer, format string, v any, text func(io.Writer) error) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return text(w)
}

// table returns a tabwriter for aligned columns; call Flush when done.
func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}
