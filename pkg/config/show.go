package config

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Redacted returns a copy of c whose secrets are replaced, fit to print or
// log, with derived values spelled out (dlq-topic is the effective name).
func (c Config) Redacted() Config {
	out := c
	out.Kafka.DLQTopic = c.Kafka.DLQ()
	for _, f := range fields(&out) {
		switch f.Secret {
		case "true":
			if f.v.String() != "" {
				f.v.SetString(redacted)
			}
		case "dsn":
			f.v.SetString(RedactDSN(f.v.String()))
		}
	}
	return out
}

// MarshalYAML renders the configuration as a config file would hold it:
// every key, in documentation order, secrets redacted.
// A dead-letter topic derived from the topic stays derived, its effective
// name in a comment, so that the file used with another topic does not
// share this topic's dead letters.
func (c Config) MarshalYAML() ([]byte, error) {
	r := c.Redacted()
	doc := &yaml.Node{Kind: yaml.MappingNode}
	for _, f := range fields(&r) {
		var val yaml.Node
		value := plain(f)
		derived := f.Name == "dlq-topic" && c.Kafka.DLQTopic == ""
		if derived {
			value = ""
		}
		if err := val.Encode(value); err != nil {
			return nil, err
		}
		if derived {
			val.LineComment = "# effective: " + r.Kafka.DLQTopic + " (empty: <topic>.dlq)"
		}
		doc.Content = append(doc.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: f.Name}, &val)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

// MarshalJSON renders the configuration as one JSON object keyed like the
// config file, in documentation order, secrets redacted.
func (c Config) MarshalJSON() ([]byte, error) {
	r := c.Redacted()
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range fields(&r) {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(f.Name)
		v, err := json.Marshal(plain(f))
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// plain is the value as a user would write it: durations as "10s", "2m",
// "168h".
func plain(f field) any {
	if d, ok := f.v.Interface().(time.Duration); ok {
		return shortDuration(d)
	}
	return f.v.Interface()
}

// shortDuration is d.String() without the zero units Go adds after hours
// or minutes ("168h0m0s" is "168h").
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
