package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Key describes one setting: its name (flag, file key and, upper-cased with
// a FOODPIPE_ prefix, environment variable), its help text, the section it is
// documented under and whether its value is secret.
type Key struct {
	Name    string
	Usage   string
	Section string
	// Secret is "" for plain values, "true" for values never shown and "dsn"
	// for connection strings whose password part is hidden.
	Secret string
}

// EnvVar is the environment variable that sets the key.
func (k Key) EnvVar() string {
	return "FOODPIPE_" + strings.ToUpper(strings.ReplaceAll(k.Name, "-", "_"))
}

// field is a Key bound to the struct field that holds its value.
type field struct {
	Key
	v reflect.Value
}

// fields lists the settings of c in declaration order. Reflection is fine
// here: it runs once per invocation, never on a hot path.
func fields(c *Config) []field {
	var out []field
	var walk func(v reflect.Value, section string)
	walk = func(v reflect.Value, section string) {
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			if s, ok := sf.Tag.Lookup("section"); ok {
				walk(v.Field(i), s)
				continue
			}
			name := sf.Tag.Get("key")
			if name == "" || name == "-" {
				continue
			}
			out = append(out, field{
				Key: Key{Name: name, Usage: sf.Tag.Get("usage"), Section: section, Secret: sf.Tag.Get("secret")},
				v:   v.Field(i),
			})
		}
	}
	walk(reflect.ValueOf(c).Elem(), "general")
	return out
}

// Keys lists every setting in the order config.example.yaml documents them.
func Keys() []Key {
	var c Config
	fs := fields(&c)
	keys := make([]Key, len(fs))
	for i, f := range fs {
		keys[i] = f.Key
	}
	return keys
}

// AddFlags defines on fs one flag per named key, with the key's default and
// help text, so flags and configuration can never disagree on either.
// It panics on an unknown name: that is a programming error caught by the
// first test that builds the command.
func AddFlags(fs *pflag.FlagSet, names ...string) {
	def := Default()
	byName := map[string]field{}
	for _, f := range fields(&def) {
		byName[f.Name] = f
	}
	for _, name := range names {
		f, ok := byName[name]
		if !ok {
			panic("config: no key " + name)
		}
		switch p := f.v.Addr().Interface().(type) {
		case *string:
			fs.String(name, *p, f.Usage)
		case *bool:
			fs.Bool(name, *p, f.Usage)
		case *int:
			fs.Int(name, *p, f.Usage)
		case *int64:
			fs.Int64(name, *p, f.Usage)
		case *float64:
			fs.Float64(name, *p, f.Usage)
		case *time.Duration:
			fs.Duration(name, *p, f.Usage)
		case *[]string:
			fs.StringSlice(name, *p, f.Usage)
		default:
			panic(fmt.Sprintf("config: key %s has unsupported type %T", name, p))
		}
	}
}

// set stores raw, as read by viper from any source, into the field,
// converting it to the field's type. Errors name what was wrong with the
// value; the caller adds the key and where the value came from.
func (f field) set(raw any) error {
	switch p := f.v.Addr().Interface().(type) {
	case *string:
		s, err := toString(raw)
		*p = s
		return err
	case *bool:
		switch x := raw.(type) {
		case bool:
			*p = x
			return nil
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(x))
			if err != nil {
				return fmt.Errorf("want true or false")
			}
			*p = b
			return nil
		}
		return fmt.Errorf("want true or false")
	case *int:
		n, err := toInt(raw)
		if err != nil {
			return err
		}
		if int64(int(n)) != n {
			return fmt.Errorf("out of range")
		}
		*p = int(n)
		return nil
	case *int64:
		n, err := toInt(raw)
		*p = n
		return err
	case *float64:
		x, err := toFloat(raw)
		*p = x
		return err
	case *time.Duration:
		d, err := toDuration(raw)
		*p = d
		return err
	case *[]string:
		l, err := toList(raw)
		*p = l
		return err
	}
	return fmt.Errorf("unsupported type %s", f.v.Type())
}

func toString(raw any) (string, error) {
	switch x := raw.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case bool, int, int64, float64, uint64:
		return fmt.Sprint(x), nil
	}
	return "", fmt.Errorf("want a string")
}

func toInt(raw any) (int64, error) {
	switch x := raw.(type) {
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case uint64:
		if x > 1<<63-1 {
			return 0, fmt.Errorf("out of range")
		}
		return int64(x), nil
	case float64:
		if x != float64(int64(x)) {
			return 0, fmt.Errorf("want a whole number")
		}
		return int64(x), nil
	case string:
		n, err := strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(x), "_", ""), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("want a whole number")
		}
		return n, nil
	}
	return 0, fmt.Errorf("want a whole number")
}

func toFloat(raw any) (float64, error) {
	switch x := raw.(type) {
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case float64:
		return x, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, fmt.Errorf("want a number")
		}
		return f, nil
	}
	return 0, fmt.Errorf("want a number")
}

func toDuration(raw any) (time.Duration, error) {
	switch x := raw.(type) {
	case time.Duration:
		return x, nil
	case int, int64, uint64, float64:
		// A bare number is ambiguous (seconds? nanoseconds?), except zero.
		if n, err := toFloat(x); err == nil && n == 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("want a duration with a unit, like 10s or 1h30m")
	case string:
		s := strings.TrimSpace(x)
		if s == "0" {
			return 0, nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("want a duration with a unit, like 10s or 1h30m")
		}
		return d, nil
	}
	return 0, fmt.Errorf("want a duration with a unit, like 10s or 1h30m")
}

func toList(raw any) ([]string, error) {
	var parts []string
	switch x := raw.(type) {
	case nil:
		return nil, nil
	case string:
		parts = strings.Split(x, ",")
	case []string:
		parts = x
	case []any:
		for _, e := range x {
			s, err := toString(e)
			if err != nil {
				return nil, fmt.Errorf("want a list of strings")
			}
			parts = append(parts, s)
		}
	default:
		return nil, fmt.Errorf("want a list of strings")
	}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out, nil
}
