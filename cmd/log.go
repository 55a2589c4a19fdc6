package cmd

import (
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"time"
)

// jsonAttr makes a duration in a JSON log a string like "1.5s": slog
// writes it as an integer of nanoseconds otherwise, which no person reads
// and which a log query cannot tell from a count.
func jsonAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// textAttr is jsonAttr for text logs, and also writes maps and slices the
// way foodpipe's flags spell them — partitions=0,1,2 offsets=0:3556,1:200
// brokers=k1:9092,k2:9092 — instead of Go syntax (map[0:3556], [0 1 2]).
func textAttr(groups []string, a slog.Attr) slog.Attr {
	a = jsonAttr(groups, a)
	if a.Value.Kind() != slog.KindAny {
		return a
	}
	if s, ok := collection(reflect.ValueOf(a.Value.Any())); ok {
		a.Value = slog.StringValue(s)
	}
	return a
}

// collection renders a map (entries sorted by key) or a slice, comma
// separated; ok is false for anything else, byte slices included (slog
// prints those as strings).
func collection(v reflect.Value) (s string, ok bool) {
	switch v.Kind() {
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return "", false
		}
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = element(v.Index(i))
		}
		return strings.Join(parts, ","), true
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, compareKeys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = element(k) + ":" + element(v.MapIndex(k))
		}
		return strings.Join(parts, ","), true
	}
	return "", false
}

// element renders one entry of a collection: by its String or Error method
// when it has one, a nested collection in brackets, a struct as JSON.
func element(v reflect.Value) string {
	if v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	if !v.IsValid() || !v.CanInterface() {
		return fmt.Sprint(v)
	}
	switch x := v.Interface().(type) {
	case time.Duration:
		return x.String()
	case fmt.Stringer:
		return x.String()
	case error:
		return x.Error()
	}
	if s, ok := collection(v); ok {
		return "[" + s + "]"
	}
	if v.Kind() == reflect.Struct || v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct {
		if b, err := json.Marshal(v.Interface()); err == nil {
			return string(b)
		}
	}
	return fmt.Sprint(v.Interface())
}

// compareKeys orders map keys: numbers as numbers, strings as strings,
// anything else by how it prints.
func compareKeys(a, b reflect.Value) int {
	switch a.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return cmp.Compare(a.Int(), b.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return cmp.Compare(a.Uint(), b.Uint())
	case reflect.Float32, reflect.Float64:
		return cmp.Compare(a.Float(), b.Float())
	case reflect.String:
		return cmp.Compare(a.String(), b.String())
	}
	return cmp.Compare(element(a), element(b))
}
