// Package kafka is foodpipe's one door to Kafka and the only package that
// imports franz-go: client options (TLS, SASL, logging, metrics), topic
// administration, a producer with bounded memory, a consumer-group reader
// that never moves a partition on its own, and the dead-letter writer.
// What the records mean and where they are stored is pkg/pipeline's.
package kafka

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kprom"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/foodpipe/foodpipe/internal/reach"
	"github.com/foodpipe/foodpipe/pkg/config"
)

// Cluster is the Kafka cluster foodpipe talks to and how: the settings every
// client of foodpipe is built from (it is not a connection; each client
// makes its own).
type Cluster struct {
	Config   config.Kafka
	ClientID string // foodpipe/<version>, so brokers' logs and quotas can tell us apart
	Logger   *slog.Logger
	// Metrics, when set, gets every client's series from franz-go's kprom.
	Metrics prometheus.Registerer
}

// metadataMaxAge bounds how long a client goes without asking the cluster
// for its topics' partitions and leaders.
const metadataMaxAge = 10 * time.Second

// options returns the connection options shared by every client.
func (c Cluster) options(log kgo.Logger) ([]kgo.Opt, error) {
	cfg := c.Config
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.WithLogger(log),
		// Bound a single dial by the start-up timeout: the default 10s dial
		// timeout would otherwise let one dead seed eat the whole budget.
		kgo.DialTimeout(min(cfg.ConnectTimeout, 10*time.Second)),
		// Partitions added to a topic (topics init --add-partitions) are
		// seen at the next metadata refresh: a running producer spreads
		// onto them and a running group rebalances to read them. Kafka's
		// 5 min default would leave their orders unread that long while
		// the logged lag says 0; one small request per 10 s is nothing.
		kgo.MetadataMaxAge(metadataMaxAge),
	}
	if cfg.TLS || cfg.CAFile != "" || cfg.CertFile != "" {
		tc, err := tlsConfig(cfg)
		if err != nil {
			return nil, badSetting{err}
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if cfg.SASLMechanism != "" {
		m, err := saslMechanism(cfg)
		if err != nil {
			return nil, badSetting{err}
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// ErrBadSetting marks a Kafka setting that cannot be used as given — a TLS
// file that cannot be read or holds no certificate, an unknown SASL
// mechanism: the invocation's fault, like a database URL that does not
// parse (exit 2).
var ErrBadSetting = errors.New("unusable kafka setting")

// badSetting is an error of ErrBadSetting that reads as its cause.
type badSetting struct{ error }

func (e badSetting) Is(target error) bool { return target == ErrBadSetting }
func (e badSetting) Unwrap() error        { return e.error }

func tlsConfig(cfg config.Kafka) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka tls: CA file %s holds no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls: load client certificate %s and key %s: %w%s", cfg.CertFile, cfg.KeyFile, err,
				encryptedKeyHint(cfg.KeyFile))
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// encryptedKeyHint says when a key file is encrypted, which Go's TLS cannot
// load: crypto/tls only says it failed to parse the key.
func encryptedKeyHint(keyFile string) string {
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return ""
	}
	if bytes.Contains(b, []byte("ENCRYPTED")) {
		return " (the key is encrypted with a passphrase: give an unencrypted key, e.g. openssl pkey -in KEY -out KEY.plain)"
	}
	return ""
}

func saslMechanism(cfg config.Kafka) (sasl.Mechanism, error) {
	switch cfg.SASLMechanism {
	case "PLAIN":
		return plain.Auth{User: cfg.Username, Pass: cfg.Password}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: cfg.Username, Pass: cfg.Password}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: cfg.Username, Pass: cfg.Password}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("kafka sasl: unsupported mechanism %q", cfg.SASLMechanism)
}

// newClient builds a client with the shared options plus extra, and waits
// until the cluster answers, at most ConnectTimeout. A client that cannot
// reach the cluster is closed and reported in one line naming the brokers.
func (c Cluster) newClient(ctx context.Context, extra ...kgo.Opt) (*kgo.Client, error) {
	return c.newClientAs(ctx, "other", extra...)
}

// clientSeq numbers the clients of this process, so that each one's
// Kafka series carry a label of their own.
var clientSeq atomic.Int64

// newClientAs is newClient for a client in a role (consumer, producer,
// dead_letters, admin): with Metrics set, franz-go's kprom series of the
// client carry the label client="<role>-<n>".
func (c Cluster) newClientAs(ctx context.Context, role string, extra ...kgo.Opt) (*kgo.Client, error) {
	log := &quietLogger{Logger: kslog.New(c.Logger.With("component", "franz-go"))}
	opts, err := c.options(log)
	if err != nil {
		return nil, err
	}
	if c.Metrics != nil {
		label := role + "-" + strconv.FormatInt(clientSeq.Add(1), 10)
		opts = append(opts, kgo.WithHooks(kprom.NewMetrics("foodpipe", kprom.Subsystem("kafka"),
			kprom.Registerer(c.Metrics), kprom.WithStaticLabel(prometheus.Labels{"client": label}))))
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	if err := c.ping(ctx, cl, log); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

// ErrUnreachable marks a cluster that did not answer in time; commands map
// it to a runtime failure, never to a usage error.
var ErrUnreachable = reach.ErrUnreachable

// ping waits until a broker answers, retrying until ConnectTimeout: a
// broker that is still starting (docker compose up) is waited for, one that
// never answers is reported once, by the caller, in one line. A refused
// login or certificate does not fix itself: it is reported at once.
//
// The gate stays quiet after a failure: the caller closes the client, and
// its dials still in flight must not log after the one error line.
func (c Cluster) ping(ctx context.Context, cl *kgo.Client, gate *quietLogger) error {
	gate.quiet.Store(true)
	brokers := strings.Join(c.Config.Brokers, ",")
	err, refused := reach.Wait(ctx, c.Config.ConnectTimeout, cl.Ping,
		func(err error) bool { _, ok := refusal(err); return ok },
		func(err error) { c.Logger.Debug("kafka not answering yet", "brokers", c.Config.Brokers, "err", err) })
	switch {
	case err == nil:
		gate.quiet.Store(false)
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case refused:
		return fmt.Errorf("cannot connect to Kafka at %s: %s", brokers, reason(err, c.Config.ConnectTimeout))
	}
	return fmt.Errorf("%w Kafka at %s: %s", ErrUnreachable, brokers, reason(err, c.Config.ConnectTimeout))
}

// quietLogger passes franz-go's logs to slog, info as debug, and
// everything as debug while quiet is set. The start-up ping sets it, so a
// broker that is not up yet, or an address that is no Kafka listener,
// produces one clear error line instead of a log line per dial
// (--log-level debug shows them).
type quietLogger struct {
	kgo.Logger
	quiet atomic.Bool
}

func (l *quietLogger) Log(level kgo.LogLevel, msg string, kv ...any) {
	// franz-go's info messages narrate its internals (metadata loads,
	// producer ids); they are debug detail for foodpipe's users.
	if level == kgo.LogLevelInfo || l.quiet.Load() {
		level = kgo.LogLevelDebug
	}
	l.Logger.Log(level, msg, kv...)
}

// reason boils a dial or request error down to what a person acts on:
// "connection refused", "no such host", "no answer within 10s", a refused
// login or certificate.
func reason(err error, timeout time.Duration) string {
	if r, ok := refusal(err); ok {
		return r
	}
	var tlsErr tls.RecordHeaderError
	if errors.As(err, &tlsErr) {
		return "TLS handshake failed (is the listener plaintext?)"
	}
	return reach.Reason(err, timeout)
}

// refusal names the failures a retry cannot fix: the broker refused the
// SASL login, the client could not verify the broker's certificate, the
// broker refused the client's (mutual TLS), or the address does not speak
// Kafka in the clear. ok reports whether err is one.
func refusal(err error) (r string, ok bool) {
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		// The broker's own words follow kerr's ("invalid credentials with
		// SASL mechanism SCRAM-SHA-256"); they never hold the password.
		_, msg, found := strings.Cut(err.Error(), kerr.SaslAuthenticationFailed.Error()+": ")
		if !found {
			return "SASL authentication failed", true
		}
		return "SASL authentication failed: " + msg, true
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return "SASL authentication failed: the broker does not enable this mechanism", true
	case errors.Is(err, kerr.IllegalSaslState):
		// The listener answered the SASL handshake as a listener without
		// SASL does (PLAINTEXT or SSL): retrying asks it again.
		return "the listener does not take SASL (ILLEGAL_SASL_STATE): is it the SASL listener's address, " +
			"or is kafka-sasl-mechanism set by mistake?", true
	}
	if r, ok := reach.Certificate(err, "is --kafka-ca-file the CA that signed the broker's certificate?"); ok {
		return r, true
	}
	// franz-go reads a Kafka response's 4-byte size first: a size beyond
	// any response means the other end speaks something else. It tells a
	// TLS alert (a plaintext client at a TLS listener) by its first bytes.
	if msg := err.Error(); strings.Contains(msg, "invalid large response size") {
		if strings.Contains(msg, "tls alert record") {
			return "the listener speaks TLS: set kafka-tls (--kafka-tls)", true
		}
		return "what answers there is not Kafka: is it a Kafka listener's address?", true
	}
	// A TLS alert from the broker during the handshake: with mutual TLS,
	// it refused our certificate or the lack of one.
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		return "the broker refused the TLS handshake: " + op.Err.Error() + " (does it require a client certificate, --kafka-cert-file?)", true
	}
	return "", false
}
