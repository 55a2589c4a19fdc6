package store

import (
	"errors"
	"strings"
	"testing"

	"github.com/foodpipe/foodpipe/pkg/config"
)

// TestParseConfigNeverShowsThePassword: a DSN that cannot be parsed is
// reported as ErrBadURL in one line that shows no part of its password,
// whatever its quoting or escaping.
func TestParseConfigNeverShowsThePassword(t *testing.T) {
	tests := []struct {
		dsn     string
		secrets []string
	}{
		{`host=db password=First\ SecondHalfSecret port=notaport`, []string{"First", "SecondHalfSecret"}},
		{`host=db password='quoted secret' port=notaport`, []string{"quoted", "secret"}},
		{`host=db password=plainsecret sslmode=sometimes`, []string{"plainsecret"}},
		{"postgres://u:hunter2@[::1", []string{"hunter2"}},
		{"postgres://u:hunter2@db:notaport/x", []string{"hunter2"}},
	}
	for _, tt := range tests {
		_, err := ParseConfig(config.Postgres{DatabaseURL: tt.dsn}, Options{})
		if !errors.Is(err, ErrBadURL) {
			t.Errorf("%s: err = %v, want ErrBadURL", tt.dsn, err)
			continue
		}
		msg := err.Error()
		for _, s := range tt.secrets {
			if strings.Contains(msg, s) {
				t.Errorf("error %q shows %q of the password", msg, s)
			}
		}
		if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "invalid database-url") {
			t.Errorf("error %q: want one line starting with invalid database-url", msg)
		}
	}
}
