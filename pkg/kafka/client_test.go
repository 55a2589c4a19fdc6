package kafka

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/config"
)

// TestSecurityOptions checks how TLS and SASL settings become client
// options, without a secured broker: the test bed's broker is plaintext.
func TestSecurityOptions(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := config.Default().Kafka
	tests := []struct {
		name    string
		edit    func(*config.Kafka)
		wantErr string
		extra   int // options beyond the plaintext ones
	}{
		{"plaintext", func(*config.Kafka) {}, "", 0},
		{"tls with system roots", func(k *config.Kafka) { k.TLS = true }, "", 1},
		{"CA file without a certificate", func(k *config.Kafka) { k.CAFile = garbage }, "holds no PEM certificate", 0},
		{"missing CA file", func(k *config.Kafka) { k.CAFile = filepath.Join(dir, "none.pem") }, "no such file", 0},
		{"bad client key pair", func(k *config.Kafka) { k.CertFile, k.KeyFile = garbage, garbage }, "load client certificate", 0},
		{"sasl plain", func(k *config.Kafka) { k.SASLMechanism, k.Username, k.Password = "PLAIN", "u", "p" }, "", 1},
		{"sasl scram-sha-256", func(k *config.Kafka) { k.SASLMechanism, k.Username = "SCRAM-SHA-256", "u" }, "", 1},
		{"sasl scram-sha-512 over tls", func(k *config.Kafka) { k.SASLMechanism, k.Username, k.TLS = "SCRAM-SHA-512", "u", true }, "", 2},
		{"unknown sasl", func(k *config.Kafka) { k.SASLMechanism = "GSSAPI" }, "unsupported mechanism", 0},
	}
	plain, err := Cluster{Config: base, Logger: testenv.Logger(t)}.options(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := base
			tt.edit(&k)
			opts, err := Cluster{Config: k, Logger: testenv.Logger(t)}.options(nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := len(opts) - len(plain); got != tt.extra {
				t.Errorf("%d extra options, want %d", got, tt.extra)
			}
		})
	}
}
