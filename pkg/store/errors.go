package store

// How database errors are told apart (a refused row, an outage, a bug)
// and shown to people.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/foodpipe/foodpipe/internal/reach"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	uniqueViolation  = "23505"
	notNullViolation = "23502"
)

// unwrittenNotNull reports whether e is a NULL refused in a column of
// orders that foodpipe does not write: one the operator added NOT NULL
// without a default.
func unwrittenNotNull(e *pgconn.PgError) bool {
	return e.Code == notNullViolation && e.ColumnName != "" && !slices.Contains(strings.Split(orderColumns, ", "), e.ColumnName)
}

// isContentError reports whether e means PostgreSQL refused a row for
// what it contains, so that the row, not the batch, is at fault.
func isContentError(e *pgconn.PgError) bool {
	code := e.Code
	switch {
	case unwrittenNotNull(e):
		// A NOT NULL column foodpipe does not write refuses every row.
		return false
	case code == "22P03" || code == "22P04":
		// Invalid binary representation or COPY format: the bytes this
		// package encodes are wrong for every row. A bug to report, not
		// thousands of orders to dead-letter.
		return false
	case strings.HasPrefix(code, "22"): // data exception
		return true
	case strings.HasPrefix(code, "23"): // integrity constraint violation
		return code != uniqueViolation
	case code == "54000" || code == "54001":
		// A value beyond a program limit: a jsonb too large, or nested too
		// deep for the parser's stack.
		return true
	case code == "P0001" || code == "P0004":
		// RAISE EXCEPTION or a failed ASSERT in PL/pgSQL: a trigger the
		// operator added refusing the row, as a CHECK constraint would.
		return true
	}
	return false
}

// maxReason bounds a rejection reason: it becomes a Kafka header.
const maxReason = 300

// rejectReason renders a content error as one line: the column if the
// server named it, the message, the SQLSTATE and a short detail. The row
// number of the error context is left out: it counts rows of one attempt,
// not of the batch.
func rejectReason(e *pgconn.PgError) string {
	var b strings.Builder
	if m := copyWhere.FindStringSubmatch(e.Where); m != nil && m[2] != "" {
		b.WriteString(m[2] + ": ")
	} else if e.ColumnName != "" {
		b.WriteString(e.ColumnName + ": ")
	}
	b.WriteString(e.Message + " (SQLSTATE " + e.Code + ")")
	// "Failing row contains (…)" repeats the whole order, items included.
	if e.Detail != "" && !strings.HasPrefix(e.Detail, "Failing row contains") {
		b.WriteString("; detail: " + e.Detail)
	}
	s := strings.Join(strings.Fields(b.String()), " ")
	if len(s) > maxReason {
		cut := maxReason - len("…")
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// describe shows a database error to a person while keeping it in the
// chain, for errors.As (a *pgconn.PgError) and IsRetryable; wrap it with %w.
func describe(err error) error { return describedError{err} }

type describedError struct{ err error }

func (e describedError) Unwrap() error { return e.err }

// IsRetryable reports whether err from this package means the database is
// unavailable or too busy right now, so the same call may succeed later:
// a lost or refused connection, a timeout, the server shutting down or
// starting (SQLSTATE 08*, 57P0x, 57014), out of resources (53*), a
// serialization failure or deadlock (40*), a lock timeout (55P03), a server
// I/O error (58030), a session ended for idling in its transaction
// (25P03: the dead letters' acknowledgements took longer than the
// operator's idle_in_transaction_session_timeout), or a read-only server
// during a failover (25006). It is
// false for a *FencedError (reload offsets instead), for a canceled context
// (the caller asked to stop) and for anything else, which is a bug or a
// schema problem that retrying will not fix.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var fenced *FencedError
	if errors.As(err, &fenced) || errors.Is(err, context.Canceled) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		code := pgErr.Code
		switch {
		case strings.HasPrefix(code, "08"), // connection exception
			strings.HasPrefix(code, "53"), // insufficient resources
			strings.HasPrefix(code, "40"), // transaction rollback: serialization, deadlock
			strings.HasPrefix(code, "57P"),
			code == "57014", // query canceled: statement timeout, pg_cancel_backend
			code == "55P03", // lock not available
			code == "58030", // I/O error on the server
			code == "25P03", // idle_in_transaction_session_timeout ended the session
			code == "25006": // read-only transaction: a standby during failover
			return true
		case code == "55000" && pgErr.Severity == "FATAL":
			// At connection: the database does not accept connections
			// now (ALLOW_CONNECTIONS false, for maintenance).
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err), pgconn.SafeToRetry(err),
		errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, ErrUnreachable):
		return true
	}
	return false
}

// Error renders the database error: the server's message with its
// SQLSTATE, detail and hint, or the network reason for a failed dial.
func (e describedError) Error() string {
	var pgErr *pgconn.PgError
	if errors.As(e.err, &pgErr) {
		s := fmt.Sprintf("%s: %s (SQLSTATE %s)", pgErr.Severity, pgErr.Message, pgErr.Code)
		// "Failing row contains (…)" repeats a whole order, a customer's
		// name and address included, in a line meant for logs.
		if pgErr.Detail != "" && !strings.HasPrefix(pgErr.Detail, "Failing row contains") {
			s += "; detail: " + pgErr.Detail
		}
		if pgErr.Code == "0A000" && strings.Contains(pgErr.Message, "row-level security") {
			// PostgreSQL's own hint, "Use INSERT statements instead", is
			// for whoever writes the code, not for whoever runs it.
			s += "; hint: foodpipe stores orders with COPY, which row-level security refuses: exempt foodpipe's role " +
				"(ALTER ROLE … BYPASSRLS) or disable it on orders (ALTER TABLE orders DISABLE ROW LEVEL SECURITY)"
		} else if pgErr.Hint != "" {
			s += "; hint: " + pgErr.Hint
		} else if unwrittenNotNull(pgErr) {
			s += fmt.Sprintf("; hint: foodpipe does not write column %q of %s, so every order is refused: give it a default "+
				"(ALTER TABLE %s ALTER COLUMN %s SET DEFAULT …) or drop NOT NULL", pgErr.ColumnName, pgErr.TableName,
				pgErr.TableName, pgErr.ColumnName)
		} else if pgErr.Code == "25P03" {
			s += "; hint: a batch's transaction waits for its dead letters' acknowledgements from Kafka: " +
				"the idle_in_transaction_session_timeout of foodpipe's role or database (SHOW idle_in_transaction_session_timeout) " +
				"must be longer than they take"
		} else if pgErr.Code == "57014" && strings.Contains(pgErr.Message, "statement timeout") {
			// Retried like an outage, but the same batch takes as long
			// each time: say what to change.
			s += "; hint: the statement_timeout of foodpipe's role or database (SHOW statement_timeout) is " +
				"shorter than a batch takes: raise it for that role, or lower batch-rows"
		}
		return s
	}
	return describeNet(e.err, 0)
}

// describeNet is reach.Reason with PostgreSQL's hint for an unknown CA.
func describeNet(err error, timeout time.Duration) string {
	if r, ok := reach.Certificate(err, "is sslrootcert the CA that signed the server's certificate?"); ok {
		return r
	}
	if timeout == 0 && errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	return reach.Reason(err, timeout)
}
