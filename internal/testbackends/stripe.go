package testbackends

import (
	"path/filepath"
	"testing"
	"time"
)

// Stripe is a running stripe-mock: it validates requests against Stripe's OpenAPI spec and
// answers with fixture data. It keeps no state: a created customer cannot be read back,
// and every read answers the same fixture whatever was written before, so tests assert on
// which requests were made and on the shape of the answers, not on persistence.
type Stripe struct {
	// URL is the API base, http://127.0.0.1:<port>, to use in place of api.stripe.com.
	URL string
}

const stripeInstallHint = "build stripe-mock into bin/: run `make tools`"

// StartStripe starts stripe-mock on a free port; it is stopped when the test ends.
func StartStripe(t testing.TB) *Stripe {
	t.Helper()
	bin := LookBinary(t, "stripe-mock", stripeInstallHint)
	addr := Addr(FreePort(t))
	logFile := filepath.Join(t.TempDir(), "stripe-mock.log")
	// stripe-mock also serves HTTPS, on a fixed port unless told: a second one on the
	// machine would exit once its HTTP port answered, after the wait below passed.
	StartProcess(t, logFile, bin, "-http-addr", addr, "-https-addr", Addr(FreePort(t)))
	WaitForPort(t, addr, 30*time.Second, logFile)
	return &Stripe{URL: "http://" + addr}
}
