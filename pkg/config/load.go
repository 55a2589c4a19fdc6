package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Options says where Load looks besides flags and the environment.
type Options struct {
	// File is the config file named by --config or FOODPIPE_CONFIG; when set
	// it must exist. When empty, Load tries each of SearchFiles in turn.
	File string
	// SearchFiles are the candidate config files, first found wins.
	// DefaultSearchFiles gives ./foodpipe.yaml and the user config dir.
	SearchFiles []string
}

// DefaultSearchFiles returns ./foodpipe.yaml, then foodpipe/config.yaml in
// the user's config directory ($XDG_CONFIG_HOME or ~/.config on Linux).
func DefaultSearchFiles() []string {
	files := []string{"foodpipe.yaml"}
	if dir, err := os.UserConfigDir(); err == nil {
		files = append(files, filepath.Join(dir, "foodpipe", "config.yaml"))
	}
	return files
}

// Load builds the effective configuration: for every key the flag when it
// was given on the command line, else FOODPIPE_<KEY> from the environment,
// else the config file, else the default. Flags not defined on flags are
// simply not consulted. The result is validated; every error is one line
// naming the key, the value and where it came from.
func Load(flags *pflag.FlagSet, opts Options) (*Config, error) {
	v := viper.New()
	v.SetEnvPrefix("FOODPIPE")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()

	cfg := Default()
	all := fields(&cfg)
	for _, f := range all {
		// SetDefault on every key: viper only consults the environment for
		// keys it knows of (viper#761).
		v.SetDefault(f.Name, f.v.Interface())
		if flags != nil {
			if fl := flags.Lookup(f.Name); fl != nil {
				if err := v.BindPFlag(f.Name, fl); err != nil {
					return nil, fmt.Errorf("bind flag --%s: %w", f.Name, err)
				}
			}
		}
	}

	path, fileKeys, secret, err := readFile(v, opts, all)
	if err != nil {
		return nil, err
	}
	cfg.File = path
	cfg.SecretsReadable = secret && readableByOthers(path)

	for _, f := range all {
		if source(f.Key, flags, fileKeys, path) != "" {
			if cfg.set == nil {
				cfg.set = map[string]bool{}
			}
			cfg.set[f.Name] = true
		}
		raw := v.Get(f.Name)
		if err := f.set(raw); err != nil {
			return nil, fmt.Errorf("invalid %s %s%s: %w", f.Name, quote(raw, f.Secret != ""), source(f.Key, flags, fileKeys, path), err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// readFile finds the config file, rejects keys foodpipe does not know (a
// typo must not silently fall back to a default) and merges it into v.
// secret reports whether the file holds a password.
func readFile(v *viper.Viper, opts Options, all []field) (path string, keys map[string]bool, secret bool, err error) {
	path = opts.File
	var data []byte
	if path != "" {
		data, err = readRegular(path)
		if err != nil {
			return "", nil, false, fmt.Errorf("read config file: %w", unwrapPathError(err, path))
		}
	} else {
		for _, candidate := range opts.SearchFiles {
			data, err = readRegular(candidate)
			if err == nil {
				path = candidate
				break
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", nil, false, fmt.Errorf("read config file: %w", unwrapPathError(err, candidate))
			}
		}
		if path == "" {
			return "", nil, false, nil
		}
	}

	// secrecy holds every known key: "" for a plain one (see Key.Secret).
	secrecy := make(map[string]string, len(all))
	text := map[string]bool{}
	for _, f := range all {
		secrecy[f.Name] = f.Secret
		text[f.Name] = f.v.Kind() == reflect.String
	}
	m, err := decodeFile(data, text)
	if err != nil {
		return "", nil, false, fmt.Errorf("config file %s: %w", path, err)
	}
	keys = make(map[string]bool, len(m))
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		kind, known := secrecy[k]
		if !known {
			return "", nil, false, fmt.Errorf("config file %s: unknown key %q%s", path, k, suggest(k, all))
		}
		keys[k] = true
		if m[k] != nil {
			raw := fmt.Sprint(m[k])
			secret = secret || kind == "true" && raw != "" || kind == "dsn" && len(DSNSecrets(raw)) > 0
		}
	}
	if err := v.MergeConfigMap(m); err != nil {
		return "", nil, false, fmt.Errorf("config file %s: %w", path, err)
	}
	return path, keys, secret, nil
}

// readableByOthers reports whether users other than the owner of the file
// at path may read it. Windows file modes do not say: never there.
func readableByOthers(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o044 != 0
}

// readRegular reads a config file, refusing anything but a regular file:
// reading a named pipe would block until something writes to it, and a
// directory or a device is never a config file.
func readRegular(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, fileKind(fi.Mode()))
	}
	return os.ReadFile(path)
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeDevice != 0, m&fs.ModeCharDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "mode " + m.Type().String()
}

// source says where a key's value came from, for error messages. An empty
// environment variable sets nothing (viper ignores it), so it is not blamed.
func source(k Key, flags *pflag.FlagSet, fileKeys map[string]bool, path string) string {
	if flags != nil {
		if fl := flags.Lookup(k.Name); fl != nil && fl.Changed {
			return " (from --" + k.Name + ")"
		}
	}
	if v, ok := os.LookupEnv(k.EnvVar()); ok && v != "" {
		return " (from " + k.EnvVar() + ")"
	}
	if fileKeys[k.Name] {
		return " (from " + path + ")"
	}
	return ""
}

func quote(raw any, secret bool) string {
	if secret {
		return `"` + redacted + `"`
	}
	return fmt.Sprintf("%q", fmt.Sprint(raw))
}

// suggest names the closest known key, for typos like "brokerz".
func suggest(k string, all []field) string {
	if f := closest(k, all); f != nil {
		return fmt.Sprintf(" (did you mean %q?)", f.Name)
	}
	return ""
}

// closest is the key nearest to k, within two edits, or nil.
func closest(k string, all []field) *Key {
	var best *Key
	bestDist := 3
	for i := range all {
		if d := distance(k, all[i].Name); d < bestDist {
			best, bestDist = &all[i].Key, d
		}
	}
	return best
}

// distance is the Levenshtein edit distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// unwrapPathError keeps "open foo.yaml: no such file or directory" short.
func unwrapPathError(err error, path string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", path, pe.Err)
	}
	return err
}

// EnvTypo is a FOODPIPE_ environment variable that sets nothing, with the
// variable of the closest setting when one is near.
type EnvTypo struct {
	Var, Suggest string
}

// notSettings are the FOODPIPE_ variables read for other purposes: the
// config file's name, and those of the tests, benchmarks and test bed.
var notSettings = []string{"FOODPIPE_CONFIG", "FOODPIPE_REQUIRE_SERVICES", "FOODPIPE_TEST_", "FOODPIPE_TESTBED_", "FOODPIPE_BENCH_"}

// UnknownEnv lists the variables of environ (os.Environ's form) named
// FOODPIPE_* that are no setting: unlike an unknown key in the config
// file, which Load refuses, the environment is not ours alone to check,
// but a misspelt variable would silently leave its setting at the default.
func UnknownEnv(environ []string) []EnvTypo {
	cfg := Default()
	all := fields(&cfg)
	known := make(map[string]bool, len(all))
	for _, f := range all {
		known[f.EnvVar()] = true
	}
	var out []EnvTypo
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "FOODPIPE_") || known[name] ||
			slices.ContainsFunc(notSettings, func(p string) bool { return name == p || strings.HasSuffix(p, "_") && strings.HasPrefix(name, p) }) {
			continue
		}
		typo := EnvTypo{Var: name}
		if k := closest(strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "FOODPIPE_"), "_", "-")), all); k != nil {
			typo.Suggest = k.EnvVar()
		}
		out = append(out, typo)
	}
	return out
}
