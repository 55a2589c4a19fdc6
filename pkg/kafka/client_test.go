package kafka

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/foodpipe/foodpipe/pkg/config"
)

// TestSecurityOptions checks the TLS and SASL settings the client is built
// with, not just that options exist: certificate verification on, TLS 1.2 or
// newer, the configured CA and client certificate loaded, and the configured
// mechanism carrying the user and password. The real SASL_SSL and SSL
// listeners of the test bed prove the same end to end (e2e/security_test.go).
func TestSecurityOptions(t *testing.T) {
	dir := t.TempDir()
	pki := newPKI(t, dir)
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	encrypted := filepath.Join(dir, "encrypted.key")
	if err := os.WriteFile(encrypted, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		edit    func(*config.Kafka)
		wantErr string
		tls     bool   // a TLS config is set
		ca      bool   // it trusts pki's CA only (else the system roots)
		cert    bool   // it presents pki's client certificate
		sasl    string // the mechanism's name, "" for none
	}{
		{name: "plaintext", edit: func(*config.Kafka) {}},
		{name: "tls with system roots", edit: func(k *config.Kafka) { k.TLS = true }, tls: true},
		{name: "CA file implies tls", edit: func(k *config.Kafka) { k.CAFile = pki.caFile }, tls: true, ca: true},
		{name: "mutual tls", edit: func(k *config.Kafka) {
			k.CAFile, k.CertFile, k.KeyFile = pki.caFile, pki.certFile, pki.keyFile
		}, tls: true, ca: true, cert: true},
		{name: "CA file without a certificate", edit: func(k *config.Kafka) { k.CAFile = garbage }, wantErr: "holds no PEM certificate"},
		{name: "missing CA file", edit: func(k *config.Kafka) { k.CAFile = filepath.Join(dir, "none.pem") }, wantErr: "no such file"},
		{name: "bad client key pair", edit: func(k *config.Kafka) { k.CertFile, k.KeyFile = garbage, garbage }, wantErr: "load client certificate"},
		{name: "encrypted key", edit: func(k *config.Kafka) { k.CertFile, k.KeyFile = pki.certFile, encrypted },
			wantErr: "and key " + encrypted + ": tls: failed to parse private key (the key is encrypted with a passphrase"},
		{name: "sasl plain", edit: func(k *config.Kafka) {
			k.SASLMechanism, k.Username, k.Password = "PLAIN", "alice", "plain-secret"
		}, sasl: "PLAIN"},
		{name: "sasl scram-sha-256", edit: func(k *config.Kafka) {
			k.SASLMechanism, k.Username, k.Password = "SCRAM-SHA-256", "bob", "scram-256-secret"
		}, sasl: "SCRAM-SHA-256"},
		{name: "sasl scram-sha-512 over tls", edit: func(k *config.Kafka) {
			k.SASLMechanism, k.Username, k.Password, k.CAFile = "SCRAM-SHA-512", "carol", "scram-512-secret", pki.caFile
		}, tls: true, ca: true, sasl: "SCRAM-SHA-512"},
		{name: "unknown sasl", edit: func(k *config.Kafka) { k.SASLMechanism = "GSSAPI" }, wantErr: "unsupported mechanism"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := config.Default().Kafka
			tt.edit(&k)
			opts, err := Cluster{Config: k, Logger: testenv.Logger(t)}.options(nil)
			if tt.wantErr != "" {
				// A file the settings name that cannot serve is the
				// invocation's fault, like a database URL that does not
				// parse: exit 2.
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrBadSetting) {
					t.Fatalf("err = %v, want ErrBadSetting containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Building a client does not dial: it only resolves the options.
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			tc, _ := cl.OptValue(kgo.DialTLSConfig).(*tls.Config)
			checkTLS(t, tc, tt.tls, tt.ca, tt.cert, pki)
			mechs, _ := cl.OptValue(kgo.SASL).([]sasl.Mechanism)
			checkSASL(t, mechs, tt.sasl, k.Username, k.Password)
		})
	}
}

func checkTLS(t *testing.T, tc *tls.Config, want, ca, cert bool, pki *testPKI) {
	t.Helper()
	if (tc != nil) != want {
		t.Fatalf("TLS config %v, want TLS %v", tc != nil, want)
	}
	if tc == nil {
		return
	}
	if tc.InsecureSkipVerify {
		t.Error("InsecureSkipVerify is set: the broker's certificate is not verified")
	}
	if tc.MinVersion < tls.VersionTLS12 {
		t.Errorf("MinVersion %s, want TLS 1.2 or newer", tls.VersionName(tc.MinVersion))
	}
	if tc.MaxVersion != 0 && tc.MaxVersion < tls.VersionTLS12 {
		t.Errorf("MaxVersion %s, want TLS 1.2 or newer", tls.VersionName(tc.MaxVersion))
	}
	if got := tc.RootCAs != nil && tc.RootCAs.Equal(pki.pool); got != ca {
		t.Errorf("trusts exactly the configured CA: %v, want %v", got, ca)
	}
	if !ca && tc.RootCAs != nil {
		t.Error("RootCAs set without a CA file: the system roots would be ignored")
	}
	gotCert := len(tc.Certificates) == 1 && bytes.Equal(tc.Certificates[0].Certificate[0], pki.client.Certificate[0])
	if gotCert != cert || (!cert && len(tc.Certificates) > 0) {
		t.Errorf("presents the configured client certificate: %v (%d certificates), want %v", gotCert, len(tc.Certificates), cert)
	}
	if !ca {
		return
	}
	// The proof: a handshake with a server whose certificate the CA signed
	// succeeds; one whose certificate another CA signed fails.
	if err := handshake(tc, pki.server, pki.pool, cert); err != nil {
		t.Errorf("handshake with the CA's server: %v", err)
	}
	if err := handshake(tc, pki.stranger, pki.pool, cert); err == nil {
		t.Error("handshake with a server signed by an unknown CA succeeded: verification is off")
	}
}

// handshake runs a TLS handshake between tc (as franz-go dials: ServerName
// set to the broker's host) and a server presenting cert, which requires a
// client certificate from pool when mutual is set.
func handshake(tc *tls.Config, cert tls.Certificate, pool *x509.CertPool, mutual bool) error {
	// Loopback TCP, not net.Pipe: both sides write alerts and flights
	// without waiting for the other to read.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	scfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if mutual {
		scfg.ClientAuth, scfg.ClientCAs = tls.RequireAndVerifyClientCert, pool
	}
	done := make(chan error, 1)
	go func() {
		sc, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer sc.Close()
		_ = sc.SetDeadline(time.Now().Add(10 * time.Second))
		server := tls.Server(sc, scfg)
		if err := server.Handshake(); err != nil {
			done <- err
			return
		}
		// In TLS 1.3 the server checks the client's certificate after the
		// client's side of the handshake is done: answer one byte after it.
		_, err = server.Write([]byte{1})
		done <- err
	}()
	ccfg := tc.Clone()
	ccfg.ServerName = "127.0.0.1"
	client, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", l.Addr().String(), ccfg)
	if err != nil {
		<-done
		return err
	}
	defer client.Close()
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := client.Read(make([]byte, 1)); err != nil {
		<-done
		return err
	}
	if err := <-done; err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

func checkSASL(t *testing.T, mechs []sasl.Mechanism, want, user, pass string) {
	t.Helper()
	if want == "" {
		if len(mechs) != 0 {
			t.Errorf("%d SASL mechanisms, want none", len(mechs))
		}
		return
	}
	if len(mechs) != 1 {
		t.Fatalf("%d SASL mechanisms, want 1", len(mechs))
	}
	m := mechs[0]
	if m.Name() != want {
		t.Fatalf("mechanism %s, want %s", m.Name(), want)
	}
	session, first, err := m.Authenticate(context.Background(), "127.0.0.1:9093")
	if err != nil {
		t.Fatal(err)
	}
	if want == "PLAIN" {
		if got, wantMsg := string(first), "\x00"+user+"\x00"+pass; got != wantMsg {
			t.Errorf("PLAIN message %q, want %q", got, wantMsg)
		}
		return
	}
	h := sha256.New
	if want == "SCRAM-SHA-512" {
		h = sha512.New
	}
	if err := scramServer(h, user, pass, session, first); err != nil {
		t.Errorf("%s login of %s against a server holding the configured password: %v", want, user, err)
	}
}

// scramServer plays the broker's side of a SCRAM exchange (RFC 5802) for
// user with password pass and hash h, and fails unless the client proves it
// knows that password with that hash.
func scramServer(h func() hash.Hash, user, pass string, session sasl.Session, clientFirst []byte) error {
	bare, ok := strings.CutPrefix(string(clientFirst), "n,,")
	if !ok {
		return fmt.Errorf("client-first %q lacks the gs2 header", clientFirst)
	}
	var gotUser, nonce string
	for _, kv := range strings.Split(bare, ",") {
		switch {
		case strings.HasPrefix(kv, "n="):
			gotUser = kv[2:]
		case strings.HasPrefix(kv, "r="):
			nonce = kv[2:]
		}
	}
	if gotUser != user {
		return fmt.Errorf("user %q, want %q", gotUser, user)
	}
	salt := []byte("foodpipe-salt")
	const iters = 4096
	serverFirst := fmt.Sprintf("r=%sSERVERNONCE,s=%s,i=%d", nonce, base64.StdEncoding.EncodeToString(salt), iters)
	done, clientFinal, err := session.Challenge([]byte(serverFirst))
	if err != nil || done {
		return fmt.Errorf("client on server-first: done %v, err %v", done, err)
	}
	withoutProof, proof64, ok := strings.Cut(string(clientFinal), ",p=")
	if !ok {
		return fmt.Errorf("client-final %q has no proof", clientFinal)
	}
	salted, err := pbkdf2.Key(h, pass, salt, iters, h().Size())
	if err != nil {
		return err
	}
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(h, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	authMsg := bare + "," + serverFirst + "," + withoutProof
	clientKey := mac(salted, "Client Key")
	stored := h()
	stored.Write(clientKey)
	signature := mac(stored.Sum(nil), authMsg)
	proof, err := base64.StdEncoding.DecodeString(proof64)
	if err != nil || len(proof) != len(clientKey) {
		return fmt.Errorf("client proof %q malformed", proof64)
	}
	for i := range proof {
		proof[i] ^= signature[i]
	}
	if !hmac.Equal(proof, clientKey) {
		return fmt.Errorf("client proof does not match the password")
	}
	serverFinal := "v=" + base64.StdEncoding.EncodeToString(mac(mac(salted, "Server Key"), authMsg))
	if done, _, err := session.Challenge([]byte(serverFinal)); err != nil || !done {
		return fmt.Errorf("client on server-final: done %v, err %v", done, err)
	}
	return nil
}

// TestRefusal checks that the failures a retry cannot fix are told apart
// and named in one line: a refused SASL login, an unverifiable broker
// certificate, a broker refusing the client's certificate.
func TestRefusal(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string // "" when a retry may help
	}{
		{"wrong password", fmt.Errorf("%w: %s", kerr.SaslAuthenticationFailed, "Authentication failed: Invalid username or password"),
			"SASL authentication failed: Authentication failed: Invalid username or password"},
		{"mechanism not enabled", kerr.UnsupportedSaslMechanism, "SASL authentication failed: the broker does not enable this mechanism"},
		{"a listener without SASL", kerr.IllegalSaslState, "the listener does not take SASL (ILLEGAL_SASL_STATE)"},
		{"unknown CA", fmt.Errorf("unable to dial: %w", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}),
			"TLS verification failed: x509: certificate signed by unknown authority"},
		{"wrong host", &tls.CertificateVerificationError{Err: x509.HostnameError{Certificate: &x509.Certificate{}, Host: "kafka.example"}},
			"TLS verification failed: x509: certificate is not valid for any names"},
		{"expired", &tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.Expired}},
			"TLS verification failed: x509: certificate has expired"},
		{"client certificate refused", &net.OpError{Op: "remote error", Err: fakeAlert("tls: bad certificate")},
			"the broker refused the TLS handshake: tls: bad certificate"},
		{"plaintext to a TLS listener", errors.New("invalid large response size 352518912 > limit 104857600; the first three bytes received " +
			"appear to be a tls alert record for TLS v1.2; is this a plaintext connection speaking to a tls endpoint?"),
			"the listener speaks TLS: set kafka-tls (--kafka-tls)"},
		{"another service", fmt.Errorf("invalid large response size 1157627904 > limit 104857600: %w", errors.New("response exceeds BrokerMaxReadBytes")),
			"what answers there is not Kafka: is it a Kafka listener's address?"},
		{"connection refused", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, ""},
		{"timeout", context.DeadlineExceeded, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := refusal(tt.err)
			if ok != (tt.want != "") || !strings.HasPrefix(got, tt.want) {
				t.Errorf("refusal = %q, %v; want %q", got, ok, tt.want)
			}
			if tt.want != "" && !strings.HasPrefix(reason(tt.err, 10*time.Second), tt.want) {
				t.Errorf("reason = %q, want it to start %q", reason(tt.err, 10*time.Second), tt.want)
			}
		})
	}
}

// fakeAlert stands in for crypto/tls's unexported alert type.
type fakeAlert string

func (a fakeAlert) Error() string { return string(a) }
