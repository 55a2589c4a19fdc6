package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// The secured tests run the binary against the test bed's SASL_SSL and SSL
// listeners (the same broker the other tests reach in plaintext) and its
// PostgreSQL over TLS with sslmode=verify-full. The test itself reads and
// counts through the plaintext listener.

// securedPipeline is a pipeline whose binary connects through listener with
// the security settings in env, and to PostgreSQL over verified TLS.
func securedPipeline(t *testing.T, sec testenv.Security, listener []string, env ...string) *pipeline {
	t.Helper()
	p := &pipeline{t: t, brokers: testenv.Brokers(t), topic: testenv.Name(t, "orders"), group: testenv.Name(t, "group"),
		listener: listener, env: env}
	_, p.schema = testenv.Schema(t)
	p.dsn = testenv.WithSearchPath(sec.DatabaseTLSURL, p.schema)
	p.init()
	return p
}

// saslEnv is the binary's environment for user over the SASL_SSL listener.
func saslEnv(sec testenv.Security, mechanism string, u testenv.User) []string {
	return []string{"FOODPIPE_KAFKA_CA_FILE=" + sec.CAFile, "FOODPIPE_KAFKA_SASL_MECHANISM=" + mechanism,
		"FOODPIPE_KAFKA_USERNAME=" + u.Name, "FOODPIPE_KAFKA_PASSWORD=" + u.Password}
}

// TestSecuredPipeline produces and consumes through each SASL mechanism and
// through mutual TLS, storing into PostgreSQL over verify-full TLS, then
// counts: every order stored once, stored offsets at the end offsets,
// nothing dead-lettered, and no password in any output.
func TestSecuredPipeline(t *testing.T) {
	t.Parallel()
	sec := testenv.Secured(t)
	tests := []struct {
		name     string
		listener []string
		env      []string
		password string
	}{
		{"sasl plain", sec.SASLBrokers, saslEnv(sec, "PLAIN", sec.Users["PLAIN"]), sec.Users["PLAIN"].Password},
		{"sasl scram-sha-256", sec.SASLBrokers, saslEnv(sec, "SCRAM-SHA-256", sec.Users["SCRAM-SHA-256"]), sec.Users["SCRAM-SHA-256"].Password},
		{"sasl scram-sha-512", sec.SASLBrokers, saslEnv(sec, "SCRAM-SHA-512", sec.Users["SCRAM-SHA-512"]), sec.Users["SCRAM-SHA-512"].Password},
		{"mutual tls", sec.MTLSBrokers, []string{"FOODPIPE_KAFKA_CA_FILE=" + sec.CAFile,
			"FOODPIPE_KAFKA_CERT_FILE=" + sec.ClientCert, "FOODPIPE_KAFKA_KEY_FILE=" + sec.ClientKey}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const n = 500
			p := securedPipeline(t, sec, tt.listener, tt.env...)
			produced := p.produce(n)
			c := p.startConsumer()
			conn := p.db()
			var tlsOn bool
			if err := conn.QueryRow(context.Background(), "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&tlsOn); err != nil || !tlsOn {
				t.Fatalf("the test's own connection with the TLS URL is not TLS (ssl %v, err %v)", tlsOn, err)
			}
			p.waitCaughtUp(conn, 2*time.Minute, c)
			s := c.stop(t)

			var rows, distinct int64
			if err := conn.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT order_id) FROM orders").Scan(&rows, &distinct); err != nil {
				t.Fatal(err)
			}
			if rows != n || distinct != n || s.Stored != n || s.Duplicates != 0 {
				t.Errorf("%d rows, %d distinct ids, summary %+v; want %d of each, 0 duplicates", rows, distinct, s, n)
			}
			ids, _ := orderIDs(t, p.topic)
			if int64(len(ids)) != produced.Produced {
				t.Errorf("topic holds %d orders, produce acknowledged %d", len(ids), produced.Produced)
			}
			if dl := sumOffsets(testenv.EndOffsets(t, p.topic+".dlq")); dl != 0 {
				t.Errorf("%d records dead-lettered, want 0", dl)
			}
			if tt.password != "" && strings.Contains(c.stdout.String()+c.stderr.String(), tt.password) {
				t.Error("the consumer printed the SASL password")
			}
		})
	}
}

// TestSecuredWrongPassword: a refused SASL login ends produce and consume
// with exit 1, well before --kafka-timeout, and exactly one line naming the
// broker and the authentication failure, never the password; nothing is
// produced or stored. A SCRAM-SHA-256 user over SCRAM-SHA-512 is refused
// too: the mechanism really reaches the broker.
func TestSecuredWrongPassword(t *testing.T) {
	t.Parallel()
	sec := testenv.Secured(t)
	wrong := "wrong-" + randomHex(t)
	tests := []struct {
		name, mechanism string
		user            testenv.User
		command         string
	}{
		{"plain produce", "PLAIN", testenv.User{Name: sec.Users["PLAIN"].Name, Password: wrong}, "produce"},
		{"scram-sha-256 produce", "SCRAM-SHA-256", testenv.User{Name: sec.Users["SCRAM-SHA-256"].Name, Password: wrong}, "produce"},
		{"scram-sha-512 produce", "SCRAM-SHA-512", testenv.User{Name: sec.Users["SCRAM-SHA-512"].Name, Password: wrong}, "produce"},
		{"scram-sha-512 consume", "SCRAM-SHA-512", testenv.User{Name: sec.Users["SCRAM-SHA-512"].Name, Password: wrong}, "consume"},
		{"scram-sha-256 user over scram-sha-512", "SCRAM-SHA-512", sec.Users["SCRAM-SHA-256"], "produce"},
	}
	// The topics and schema are made in plaintext: only the runs under test
	// use the wrong credentials.
	p := newPipeline(t)
	const timeout = 60 * time.Second
	t.Run("refused", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				args := []string{tt.command, "--brokers=" + strings.Join(sec.SASLBrokers, ","), "--topic", p.topic,
					"--kafka-timeout", timeout.String(), "--log-level", "debug"}
				if tt.command == "produce" {
					args = append(args, "--count", "10", "--rate", "0")
				} else {
					args = append(args, "--group", p.group, "--database-url", p.dsn)
				}
				r := run(t, saslEnv(sec, tt.mechanism, tt.user), args...)
				if r.code != 1 {
					t.Fatalf("want exit 1:\n%s", r)
				}
				// A refusal is reported as one, at once, not as the
				// timeout's "no answer within": the line says which.
				line := errorLine(t, r)
				for _, want := range []string{sec.SASLBrokers[0], "SASL authentication failed"} {
					if !strings.Contains(line, want) {
						t.Errorf("error line %q does not name %q", line, want)
					}
				}
				if strings.Contains(r.stdout+r.stderr, tt.user.Password) {
					t.Errorf("the password appears in the output:\n%s", r)
				}
			})
		}
	})
	// Nothing produced, nothing stored.
	if got := sumOffsets(testenv.EndOffsets(t, p.topic)); got != 0 {
		t.Errorf("%d records produced with wrong credentials", got)
	}
	conn := p.db()
	if rows, offsets := p.count(conn), len(p.storedOffsets(conn)); rows != 0 || offsets != 0 {
		t.Errorf("%d rows and %d stored offsets after refused logins, want none", rows, offsets)
	}
}

// TestSecuredUnknownCA: a broker or PostgreSQL certificate that the given
// CA did not sign, and a mutual-TLS listener without an accepted client
// certificate, each end the command with exit 1 and one line naming the TLS
// failure; nothing is created.
func TestSecuredUnknownCA(t *testing.T) {
	t.Parallel()
	sec := testenv.Secured(t)
	stranger := strangerPKI(t)
	topic := testenv.Name(t, "orders")
	sasl := saslEnv(sec, "PLAIN", sec.Users["PLAIN"])
	_, schema := testenv.Schema(t)
	tests := []struct {
		name  string
		args  []string
		env   []string
		wants []string
	}{
		{"kafka sasl_ssl, unknown CA", []string{"topics", "init", "--brokers=" + strings.Join(sec.SASLBrokers, ","), "--topic", topic},
			append(sasl, "FOODPIPE_KAFKA_CA_FILE="+stranger.ca),
			[]string{sec.SASLBrokers[0], "TLS verification failed", "unknown authority"}},
		{"kafka mutual tls, unknown CA", []string{"topics", "init", "--brokers=" + strings.Join(sec.MTLSBrokers, ","), "--topic", topic},
			[]string{"FOODPIPE_KAFKA_CA_FILE=" + stranger.ca, "FOODPIPE_KAFKA_CERT_FILE=" + sec.ClientCert, "FOODPIPE_KAFKA_KEY_FILE=" + sec.ClientKey},
			[]string{sec.MTLSBrokers[0], "TLS verification failed", "unknown authority"}},
		{"kafka mutual tls, no client certificate", []string{"topics", "init", "--brokers=" + strings.Join(sec.MTLSBrokers, ","), "--topic", topic},
			[]string{"FOODPIPE_KAFKA_CA_FILE=" + sec.CAFile},
			[]string{sec.MTLSBrokers[0], "refused the TLS handshake"}},
		{"kafka mutual tls, client certificate of another CA", []string{"topics", "init", "--brokers=" + strings.Join(sec.MTLSBrokers, ","), "--topic", topic},
			[]string{"FOODPIPE_KAFKA_CA_FILE=" + sec.CAFile, "FOODPIPE_KAFKA_CERT_FILE=" + stranger.cert, "FOODPIPE_KAFKA_KEY_FILE=" + stranger.key},
			[]string{sec.MTLSBrokers[0], "refused the TLS handshake"}},
		{"postgres verify-full, unknown CA", []string{"db", "migrate", "--database-url", withRootCert(t, testenv.WithSearchPath(sec.DatabaseTLSURL, schema), stranger.ca)},
			nil, []string{pgAddr(t, sec.DatabaseTLSURL), "TLS verification failed", "unknown authority"}},
	}
	const timeout = "60s"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.env, append(tt.args, "--kafka-timeout", timeout, "--db-timeout", timeout)...)
			if r.code != 1 {
				t.Fatalf("want exit 1:\n%s", r)
			}

			line := errorLine(t, r)
			for _, want := range tt.wants {
				if !strings.Contains(line, want) {
					t.Errorf("error line %q does not name %q", line, want)
				}
			}
		})
	}
	// Nothing was created: no topic, no table.
	td, err := testenv.Admin(t).ListTopics(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	if td.Has(topic) {
		t.Errorf("topic %s was created through a connection that failed verification", topic)
	}
	var tables int
	conn, err := pgx.Connect(context.Background(), testenv.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(context.Background(),
		"SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", schema).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("%d tables in %s after a refused TLS connection, want 0", tables, schema)
	}
}

func sumOffsets(m map[int32]int64) (n int64) {
	for _, o := range m {
		n += o
	}
	return n
}

func randomHex(t *testing.T) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// withRootCert replaces the sslrootcert of a PostgreSQL URL.
func withRootCert(t *testing.T, dsn, ca string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("sslrootcert", ca)
	u.RawQuery = q.Encode()
	return u.String()
}

func pgAddr(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// strangerPKI writes a CA the test bed never heard of and a client
// certificate it signed.
func strangerPKI(t *testing.T) (files struct{ ca, cert, key string }) {
	t.Helper()
	dir := t.TempDir()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	caKey, clientKey := newKey(), newKey()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stranger CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	client := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "stranger"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	clientDER, err := x509.CreateCertificate(rand.Reader, client, ca, &clientKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	files.ca = write("ca.pem", "CERTIFICATE", caDER)
	files.cert = write("client.pem", "CERTIFICATE", clientDER)
	files.key = write("client.key", "PRIVATE KEY", keyDER)
	return files
}

// TestNotAKafkaListener: --brokers names a port where Kafka is not spoken
// in the clear: the broker's TLS listener without kafka-tls, or another
// service (PostgreSQL). Neither fixes itself, so each is reported at once
// (the line is the refusal's "cannot connect", not the timeout's "cannot
// reach"), as the only line on stderr, saying what to change.
func TestNotAKafkaListener(t *testing.T) {
	t.Parallel()
	sec := testenv.Secured(t)
	tests := []struct {
		name, broker, want string
	}{
		{"tls listener", sec.MTLSBrokers[0], "the listener speaks TLS: set kafka-tls (--kafka-tls)"},
		{"postgres", pgAddr(t, testenv.DatabaseURL(t)), "what answers there is not Kafka: is it a Kafka listener's address?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, nil, "produce", "--brokers", tt.broker, "--count", "1", "--kafka-timeout", "60s")
			want := "foodpipe: cannot connect to Kafka at " + tt.broker + ": " + tt.want
			if got := strings.TrimSpace(r.stderr); r.code != 1 || got != want {
				t.Errorf("want exit 1 and stderr exactly %q:\n%s", want, r)
			}
		})
	}
	// SASL asked of a listener without it (the PLAINTEXT one) is refused
	// the same way, not retried until the timeout.
	t.Run("sasl to a plaintext listener", func(t *testing.T) {
		t.Parallel()
		broker := testenv.Brokers(t)[0]
		u := sec.Users["PLAIN"]
		r := run(t, nil, "produce", "--brokers", broker, "--count", "1", "--kafka-timeout", "60s",
			"--kafka-sasl-mechanism", "PLAIN", "--kafka-username", u.Name, "--kafka-password", u.Password)
		want := "foodpipe: cannot connect to Kafka at " + broker + ": the listener does not take SASL"
		if got := strings.TrimSpace(r.stderr); r.code != 1 || !strings.HasPrefix(got, want) || strings.Contains(got, u.Password) {
			t.Errorf("want exit 1 and one line starting %q, without the password:\n%s", want, r)
		}
	})
}
