package testenv

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// Security is the secured side of the test bed: listeners of the same
// broker that Brokers returns, which need TLS and SASL or a client
// certificate, and the same PostgreSQL server reached over verified TLS.
type Security struct {
	SASLBrokers []string // SASL_SSL: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	MTLSBrokers []string // SSL: a client certificate signed by CAFile required
	CAFile      string   // PEM CA that signed the broker's, PostgreSQL's and the client's certificates
	ClientCert  string   // PEM client certificate for MTLSBrokers
	ClientKey   string
	// Users holds one SASL user per mechanism; each user has credentials
	// for its own mechanism only.
	Users map[string]User
	// DatabaseTLSURL is DatabaseURL's server with sslmode=verify-full
	// against CAFile.
	DatabaseTLSURL string
}

// User is a SASL user name and password.
type User struct{ Name, Password string }

// Secured returns the secured endpoints exported by `scripts/testbed.sh env`,
// skipping the test (failing it under FOODPIPE_REQUIRE_SERVICES=1) when the
// test bed does not provide them.
func Secured(t testing.TB) Security {
	t.Helper()
	var missing []string
	get := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			missing = append(missing, name)
		}
		return v
	}
	s := Security{
		SASLBrokers:    strings.Split(get("FOODPIPE_TEST_SASL_BROKERS"), ","),
		MTLSBrokers:    strings.Split(get("FOODPIPE_TEST_MTLS_BROKERS"), ","),
		CAFile:         get("FOODPIPE_TEST_TLS_CA"),
		ClientCert:     get("FOODPIPE_TEST_TLS_CLIENT_CERT"),
		ClientKey:      get("FOODPIPE_TEST_TLS_CLIENT_KEY"),
		DatabaseTLSURL: get("FOODPIPE_TEST_DATABASE_TLS_URL"),
		Users:          map[string]User{},
	}
	for _, m := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		prefix := "FOODPIPE_TEST_SASL_" + strings.ReplaceAll(m, "-", "_")
		s.Users[m] = User{Name: get(prefix + "_USER"), Password: get(prefix + "_PASSWORD")}
	}
	if len(missing) > 0 {
		unavailable(t, "secured Kafka listeners and TLS PostgreSQL",
			fmt.Errorf("%s not set (a test bed started by an older scripts/testbed.sh? `scripts/testbed.sh up` upgrades it)", strings.Join(missing, ", ")))
	}
	return s
}
