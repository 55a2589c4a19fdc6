package store

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
)

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
			got := Describe(tt.err)
			if !strings.HasPrefix(got, tt.want) || strings.Contains(got, "\n") {
				t.Errorf("Describe = %q, want one line starting %q", got, tt.want)
			}
			if _, ok := certificateFailure(tt.err); !ok {
				t.Error("not seen as a certificate failure: the start-up wait would retry it")
			}
		})
	}
}
