package reach

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	refusedErr := errors.New("refused for good")
	tests := []struct {
		name        string
		fails       int // tries that fail before one succeeds (-1: all)
		err         error
		wantErr     error
		wantRefusal bool
		wantTries   int
	}{
		{"answers at once", 0, nil, nil, false, 1},
		{"answers on the third try", 2, syscall.ECONNREFUSED, nil, false, 3},
		{"never answers", -1, syscall.ECONNREFUSED, syscall.ECONNREFUSED, false, 0},
		{"refuses", -1, refusedErr, refusedErr, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tries := 0
			ping := func(context.Context) error {
				tries++
				if tt.fails < 0 || tries <= tt.fails {
					return tt.err
				}
				return nil
			}
			err, refusal := Wait(t.Context(), 500*time.Millisecond, ping,
				func(err error) bool { return errors.Is(err, refusedErr) }, nil)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) || refusal != tt.wantRefusal {
				t.Errorf("Wait = %v, %v; want %v, %v", err, refusal, tt.wantErr, tt.wantRefusal)
			}
			if tt.wantTries > 0 && tries != tt.wantTries {
				t.Errorf("%d tries, want %d", tries, tt.wantTries)
			}
		})
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err, _ := Wait(ctx, time.Minute, func(context.Context) error { return syscall.ECONNREFUSED }, nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), "connection refused"},
		{&net.DNSError{Name: "db.invalid", Err: "no such host"}, "no such host db.invalid"},
		{fmt.Errorf("ping: %w", context.DeadlineExceeded), "no answer within 10s"},
		{&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, "TLS verification failed: x509: certificate signed by unknown authority"},
		{errors.New("something else"), "something else"},
	}
	for _, tt := range tests {
		if got := Reason(tt.err, 10*time.Second); got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	if got, _ := Certificate(x509.UnknownAuthorityError{}, "is the CA right?"); got != "TLS verification failed: x509: certificate signed by unknown authority (is the CA right?)" {
		t.Errorf("hint: %q", got)
	}
}
