package config

import (
	"net/url"
	"strings"
)

const redacted = "[redacted]"

// secretDSNKeys are the connection settings whose values are never shown.
var secretDSNKeys = map[string]bool{"password": true, "sslpassword": true}

// RedactDSN hides the passwords of a URL
// (postgres://user:secret@host/db?sslpassword=…) or key=value DSN
// (password=secret, password='a secret', password=a\ secret). The key=value
// form is tokenised the way libpq reads it, so no part of a quoted or
// escaped value survives. A string that cannot be read is hidden whole.
func RedactDSN(dsn string) string {
	if isURL(dsn) {
		return redactURL(dsn)
	}
	return spliceSecrets(dsn, func(p dsnPair) (int, int, string) { return p.start, p.end, redacted })
}

// spliceSecrets rewrites the secret settings of a key=value DSN: span
// says which bytes of each to replace, and with what. A string that
// cannot be read is hidden whole.
func spliceSecrets(dsn string, span func(p dsnPair) (from, to int, with string)) string {
	pairs, ok := dsnPairs(dsn)
	if !ok {
		return redacted
	}
	var b strings.Builder
	last := 0
	for _, p := range pairs {
		if secretDSNKeys[strings.ToLower(p.key)] {
			from, to, with := span(p)
			b.WriteString(dsn[last:from])
			b.WriteString(with)
			last = to
		}
	}
	b.WriteString(dsn[last:])
	return b.String()
}

// DSNSecrets returns the secret values (passwords) of a URL or key=value
// DSN, unescaped, so that messages from elsewhere can be scrubbed of them.
func DSNSecrets(dsn string) []string {
	var out []string
	if isURL(dsn) {
		u, err := url.Parse(dsn)
		if err != nil {
			return nil
		}
		if pw, ok := u.User.Password(); ok && pw != "" {
			out = append(out, pw)
		}
		for k, vs := range u.Query() {
			if secretDSNKeys[strings.ToLower(k)] {
				out = append(out, vs...)
			}
		}
		return out
	}
	pairs, _ := dsnPairs(dsn)
	for _, p := range pairs {
		if secretDSNKeys[strings.ToLower(p.key)] && p.value != "" {
			out = append(out, p.value)
		}
	}
	return out
}

// WithoutPasswords returns dsn with its passwords removed — not replaced:
// a client given the result asks for the password or reads PGPASSWORD or
// ~/.pgpass, as psql does. A string that cannot be read is hidden whole.
func WithoutPasswords(dsn string) string {
	if isURL(dsn) {
		u, err := url.Parse(dsn)
		if err != nil {
			return redacted
		}
		if _, has := u.User.Password(); has {
			u.User = url.User(u.User.Username())
		}
		q := u.Query()
		for k := range q {
			if secretDSNKeys[strings.ToLower(k)] {
				q.Del(k)
				u.RawQuery = q.Encode()
			}
		}
		return u.String()
	}
	// From the keyword on, so that it and its "=" go too, to the next
	// setting.
	return strings.TrimSpace(spliceSecrets(dsn, func(p dsnPair) (int, int, string) {
		to := p.end
		for to < len(dsn) && isSpace(dsn[to]) {
			to++
		}
		return p.keyStart, to, ""
	}))
}

// isURL reports whether dsn is a URL, PostgreSQL's or another driver's
// (jdbc:postgresql://…?password=…, postgresql+psycopg2://user:secret@…):
// those are refused later, but their passwords are hidden as a URL's.
func isURL(dsn string) bool { return strings.Contains(dsn, "://") }

func redactURL(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return redacted
	}
	const mark = "xxxxx"
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), mark)
	}
	q := u.Query()
	changed := false
	for k := range q {
		if secretDSNKeys[strings.ToLower(k)] {
			q.Set(k, mark)
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return strings.ReplaceAll(u.String(), mark, redacted)
}

// dsnPair is one keyword = value setting of a key=value DSN; start and end
// delimit the value as written (quotes and escapes included), keyStart is
// where the keyword starts.
type dsnPair struct {
	key, value string
	start, end int
	keyStart   int
}

// dsnPairs tokenises a libpq key=value connection string: settings are
// separated by whitespace, "=" may be surrounded by spaces, a value is
// either single-quoted (where \' and \\ are escapes) or runs to the next
// unescaped whitespace (where a backslash escapes the next byte). ok is
// false when the string does not follow that syntax (the pairs read so far
// are still returned).
func dsnPairs(s string) (pairs []dsnPair, ok bool) {
	i := 0
	skipSpace := func() {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
	}
	for {
		skipSpace()
		if i == len(s) {
			return pairs, true
		}
		k := i
		for i < len(s) && s[i] != '=' && !isSpace(s[i]) {
			i++
		}
		key := s[k:i]
		skipSpace()
		if i == len(s) || s[i] != '=' || key == "" {
			return pairs, false
		}
		i++ // '='
		skipSpace()
		start := i
		var v strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			for i < len(s) && s[i] != '\'' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				v.WriteByte(s[i])
				i++
			}
			if i == len(s) {
				return append(pairs, dsnPair{key, v.String(), start, i, k}), false // unterminated quote
			}
			i++ // closing quote
		} else {
			for i < len(s) && !isSpace(s[i]) {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				v.WriteByte(s[i])
				i++
			}
		}
		pairs = append(pairs, dsnPair{key, v.String(), start, i, k})
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}
