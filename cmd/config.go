package cmd

import (
	"slices"

	"github.com/spf13/cobra"

	"github.com/foodpipe/foodpipe/pkg/config"
)

func newConfigCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "config",
		Short: "Inspect the configuration",
	}
	groupCmd(c)
	c.AddCommand(newConfigShowCmd(app))
	return c
}

func newConfigShowCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration, secrets redacted",
		Long: `Print every setting with the value foodpipe would use, after flags, FOODPIPE_*
environment variables, the config file and defaults are merged. Passwords are
replaced by [redacted]. The text output is YAML and can serve as a config file
once the redacted secrets are filled in; a dead-letter topic derived from the
topic is shown in a comment and stays derived.`,
		Example: `  foodpipe config show
  FOODPIPE_RATE=500 foodpipe config show --output json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := app.load(c)
			if err != nil {
				return err
			}
			source := "no config file read: defaults, FOODPIPE_* environment and flags"
			if e.cfg.File != "" {
				source = "config file: " + e.cfg.File
				e.log.Info("config file read", "file", e.cfg.File)
			}
			var out []byte
			if e.cfg.Output == "json" {
				out, err = e.cfg.MarshalJSON()
				out = append(out, '\n')
			} else {
				// A YAML comment keeps the output a valid config file.
				out, err = e.cfg.MarshalYAML()
				out = append([]byte("# effective configuration; "+source+"\n"), out...)
			}
			if err != nil {
				return err
			}
			_, err = app.Stdout.Write(out)
			return err
		},
	}
	// config show accepts every key, so that any of them can be tried out.
	var keys []string
	for _, k := range config.Keys() {
		if c.Flags().Lookup(k.Name) == nil && !slices.Contains(globalKeys, k.Name) {
			keys = append(keys, k.Name)
		}
	}
	config.AddFlags(c.Flags(), keys...)
	return c
}
