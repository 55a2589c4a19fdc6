// Package reach is how foodpipe waits for a service at start and says, in a
// few words a person can act on, why one did not answer: the same for Kafka
// and PostgreSQL.
package reach

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"syscall"
	"time"
)

// ErrUnreachable marks a service that did not answer within its start-up
// timeout: a runtime failure (exit 1), never a usage error.
var ErrUnreachable = errors.New("cannot reach")

// Wait calls ping until it succeeds, waiting 100 ms (doubling up to 1 s)
// between tries, for at most timeout: a service that is still starting is
// waited for. It gives up at once when refused says the failure will not
// fix itself (a refused login, a certificate that cannot be verified).
// notYet, if set, is told of each failed try. It returns nil, ctx's error,
// or the last failure with whether it was a refusal.
func Wait(ctx context.Context, timeout time.Duration, ping func(context.Context) error,
	refused func(error) bool, notYet func(error)) (err error, refusal bool) {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	backoff := 100 * time.Millisecond
	for {
		err := ping(pctx)
		switch {
		case err == nil:
			return nil, false
		case ctx.Err() != nil:
			return ctx.Err(), false
		case refused != nil && refused(err):
			return err, true
		}
		if notYet != nil {
			notYet(err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-pctx.Done():
			t.Stop()
			return err, false
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

// Reason boils a dial or request error down to what a person acts on:
// "connection refused", "no such host db", "no answer within 10s", a
// certificate that could not be verified; else the error's own text.
func Reason(err error, timeout time.Duration) string {
	if r, ok := Certificate(err, ""); ok {
		return r
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return "no such host " + dns.Name
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer within " + timeout.String()
	}
	return err.Error()
}

// Certificate names a peer certificate the client could not verify, and
// reports whether err is one. caHint, when set, is added for an unknown
// authority: it says which setting names the CA.
func Certificate(err error, caHint string) (string, bool) {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknown):
		r := "TLS verification failed: " + unknown.Error()
		if caHint != "" {
			r += " (" + caHint + ")"
		}
		return r, true
	case errors.As(err, &host):
		return "TLS verification failed: " + host.Error(), true
	case errors.As(err, &invalid):
		return "TLS verification failed: " + invalid.Error(), true
	case errors.As(err, &verify):
		return "TLS verification failed: " + verify.Err.Error(), true
	}
	return "", false
}
