package store

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/foodpipe/foodpipe/internal/reach"
	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/jackc/pgx/v5/pgconn"
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

// TestParseConfigForeignURLs: database URLs written for other drivers —
// JDBC, SQLAlchemy, a URL of another scheme, a bare host:port — are refused
// in one line that says what foodpipe wants, never connecting somewhere
// else (a JDBC URL used to parse as key=value pairs and connect to the
// local socket) and never showing the password.
func TestParseConfigForeignURLs(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{"jdbc:postgresql://db:5432/orders?user=app&password=hunter2", "a JDBC URL"},
		{"postgresql+psycopg2://app:hunter2@db:5432/orders", "a SQLAlchemy URL"},
		{"postgresql+asyncpg://app:hunter2@db/orders", "a SQLAlchemy URL"},
		{"mysql://app:hunter2@db/orders", `scheme "mysql"`},
		{"db:5432", "host:port"},
		{"localhost", "not a URL"},
	}
	for _, tt := range tests {
		_, err := ParseConfig(config.Postgres{DatabaseURL: tt.dsn}, Options{})
		if !errors.Is(err, ErrBadURL) {
			t.Errorf("%s: err = %v, want ErrBadURL", tt.dsn, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.want) || !strings.Contains(msg, "postgres://") || strings.Contains(msg, "hunter2") ||
			strings.Contains(msg, "\n") {
			t.Errorf("%s: error %q: want one line saying %q and what foodpipe wants, without the password", tt.dsn, msg, tt.want)
		}
	}
	for _, ok := range []string{"postgres://app:pw@db/orders", "postgresql://db/orders", "host=db dbname=orders", ""} {
		if _, err := ParseConfig(config.Postgres{DatabaseURL: ok}, Options{}); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// TestParseConfigAtInPassword: an unescaped "@" in a URL's password made
// pgx split the URL at the first "@" and take the rest of the password for
// the host, which the "cannot reach" line then printed. Such a URL is
// refused, saying to percent-encode it, and shows no part of the password.
func TestParseConfigAtInPassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://app:S3cr@tPass@db:5432/orders",
		"postgresql://app:a@b@c@db/orders?sslmode=disable",
		"postgres://us@er:S3crtPass@db/orders",
	} {
		_, err := ParseConfig(config.Postgres{DatabaseURL: dsn}, Options{})
		if !errors.Is(err, ErrBadURL) {
			t.Errorf("%s: err = %v, want ErrBadURL", dsn, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "%40") {
			t.Errorf("%s: error %q does not say to write @ as %%40", dsn, msg)
		}
		for _, part := range []string{"S3cr", "tPass", "@b@c"} {
			if strings.Contains(msg, part) {
				t.Errorf("%s: error %q shows %q", dsn, msg, part)
			}
		}
	}
	if _, err := ParseConfig(config.Postgres{DatabaseURL: "postgres://app:S3cr%40tPass@db/orders?x=a@b"}, Options{}); err != nil {
		t.Errorf("a percent-encoded @: %v", err)
	}
}

// TestDescribeCertificateFailure checks that a server certificate the client
// cannot verify is named as such, in one line, however deep pgconn wraps it.
func TestDescribeCertificateFailure(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"unknown CA", fmt.Errorf("failed to connect: %w", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}),
			"TLS verification failed: x509: certificate signed by unknown authority (is sslrootcert"},
		{"unknown CA, verify-ca", fmt.Errorf("tls error: %w", x509.UnknownAuthorityError{}),
			"TLS verification failed: x509: certificate signed by unknown authority"},
		{"wrong host", &tls.CertificateVerificationError{Err: x509.HostnameError{Certificate: &x509.Certificate{}, Host: "db.example"}},
			"TLS verification failed: x509: certificate is not valid for any names"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := describe(tt.err).Error()
			if !strings.HasPrefix(got, tt.want) || strings.Contains(got, "\n") {
				t.Errorf("describe = %q, want one line starting %q", got, tt.want)
			}
			if _, ok := reach.Certificate(tt.err, ""); !ok {
				t.Error("not seen as a certificate failure: the start-up wait would retry it")
			}
		})
	}
}

// TestDescribeStatementTimeout: a batch cancelled by the role's or the
// database's statement_timeout is retried, and would fail the same way for
// ever; the description says which setting to change. A cancel by an
// operator (pg_cancel_backend), the same SQLSTATE, gets no such hint.
// TestDescribeRowLevelSecurity: COPY refuses a table with row-level
// security for a role subject to it; the hint says what an operator can
// change, not PostgreSQL's "Use INSERT statements instead".
func TestDescribeRowLevelSecurity(t *testing.T) {
	err := fmt.Errorf("copy 500 rows: %w", &pgconn.PgError{Severity: "ERROR", Code: "0A000",
		Message: "COPY FROM not supported with row-level security", Hint: "Use INSERT statements instead."})
	got := describe(err).Error()
	if !strings.Contains(got, "BYPASSRLS") || !strings.Contains(got, "DISABLE ROW LEVEL SECURITY") || strings.Contains(got, "INSERT statements") {
		t.Errorf("describe = %q, want the operator's two ways out", got)
	}
	if IsRetryable(err) {
		t.Error("row-level security is retried: it will refuse every batch")
	}
}

func TestDescribeStatementTimeout(t *testing.T) {
	timeout := fmt.Errorf("copy 5000 rows: %w", &pgconn.PgError{Severity: "ERROR", Code: "57014",
		Message: "canceling statement due to statement timeout"})
	got := describe(timeout).Error()
	want := "ERROR: canceling statement due to statement timeout (SQLSTATE 57014); hint: "
	if !strings.HasPrefix(got, want) || !strings.Contains(got, "statement_timeout") || !strings.Contains(got, "batch-rows") {
		t.Errorf("describe = %q, want %q and a hint naming statement_timeout and batch-rows", got, want)
	}
	if !IsRetryable(timeout) {
		t.Error("a statement timeout is no longer retried")
	}
	cancel := &pgconn.PgError{Severity: "ERROR", Code: "57014", Message: "canceling statement due to user request"}
	if got := describe(cancel).Error(); strings.Contains(got, "hint") {
		t.Errorf("describe(user cancel) = %q, want no hint", got)
	}
}
