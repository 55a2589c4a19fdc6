package cmd

import (
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
)

// env is what a command's RunE gets once its flags are parsed: the
// effective configuration and a logger configured by it.
type env struct {
	cfg *config.Config
	log *slog.Logger
}

// load reads the configuration for c (flags, environment, file, defaults)
// and builds the logger. Every failure here is a usage error.
func (a *App) load(c *cobra.Command) (*env, error) {
	opts := config.Options{SearchFiles: config.DefaultSearchFiles()}
	if f := c.Flags().Lookup("config"); f != nil && f.Changed {
		opts.File = f.Value.String()
	} else if v, ok := os.LookupEnv("FOODPIPE_CONFIG"); ok && v != "" {
		opts.File = v
	}
	cfg, err := config.Load(c.Flags(), opts)
	if err != nil {
		return nil, usage(err)
	}
	log := newLogger(a.Stderr, cfg.Log)
	if cfg.File != "" {
		log.Debug("config file read", "file", cfg.File)
	}
	if cfg.SecretsReadable {
		log.Warn("the config file holds a password and other users may read it: chmod 600 it", "file", cfg.File)
	}
	for _, typo := range config.UnknownEnv(os.Environ()) {
		args := []any{"variable", typo.Var}
		if typo.Suggest != "" {
			args = append(args, "did_you_mean", typo.Suggest)
		}
		log.Warn("environment variable ignored: it is not a foodpipe setting", args...)
	}
	return &env{cfg: cfg, log: log}, nil
}

// newLogger logs to w at the configured level, as text on a terminal and as
// JSON otherwise (SPEC "Commands"). Durations read "1.5s" in both, and text
// logs spell maps and slices as the flags do (see textAttr).
func newLogger(w io.Writer, cfg config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToLower(cfg.Level)))
	hopts := &slog.HandlerOptions{Level: level, ReplaceAttr: jsonAttr}
	format := cfg.Format
	if format == "auto" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	if format == "text" {
		hopts.ReplaceAttr = textAttr
		return slog.New(slog.NewTextHandler(w, hopts))
	}
	return slog.New(slog.NewJSONHandler(w, hopts))
}

// isTerminal reports whether w is a terminal. Not any character device:
// /dev/null is one, and a run redirected there must not get a live view or
// text logs meant for a person.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// kafkaCluster is the Kafka cluster of this invocation, as configured.
func (a *App) kafkaCluster(e *env) kafka.Cluster {
	return kafka.Cluster{Config: e.cfg.Kafka, ClientID: "foodpipe/" + a.build().Version, Logger: e.log}
}
