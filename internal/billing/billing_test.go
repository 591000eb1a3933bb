package billing

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stripe/stripe-go/v84"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/shoal-dev/shoal/internal/testbackends"
)

// testKey is a test-mode key, the kind stripe-mock accepts.
const testKey = "sk_test_shoal"

// request is one call that reached the proxy in front of stripe-mock.
type request struct {
	Method, Path, IdempotencyKey string
	Form                         url.Values
}

// recorder is a reverse proxy in front of stripe-mock that records every request and can
// play an outage: stripe-mock keeps no state, so what was asked is what tests check.
type recorder struct {
	URL     string
	mu      sync.Mutex
	reqs    []request
	failing atomic.Bool
}

func newRecorder(t *testing.T, upstream string) *recorder {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		r.mu.Lock()
		r.reqs = append(r.reqs, request{req.Method, req.URL.Path, req.Header.Get("Idempotency-Key"), form})
		r.mu.Unlock()
		if r.failing.Load() {
			// What a load balancer in front of an unhealthy API answers.
			http.Error(w, "<html>503 Service Unavailable</html>", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// take returns the requests recorded since the last take, as "METHOD /path".
func (r *recorder) take() ([]string, []request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	reqs := r.reqs
	r.reqs = nil
	calls := make([]string, len(reqs))
	for i, req := range reqs {
		calls[i] = req.Method + " " + req.Path
	}
	return calls, reqs
}

func newBilling(t *testing.T, apiBase string, prices map[string]string) *Billing {
	t.Helper()
	noRetries := 0
	b, err := New(Config{SecretKey: testKey, APIBase: apiBase, Prices: prices, MaxNetworkRetries: &noRetries})
	if err != nil {
		t.Fatal(err)
	}
	if !b.Enabled() {
		t.Fatal("billing with a key is not enabled")
	}
	return b
}

func TestDisabledWithoutKey(t *testing.T) {
	b, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Enabled() {
		t.Fatal("billing without a key is enabled")
	}
	if _, err := b.EnsureSubscription(context.Background(), Customer{TenantID: "t"}, "pro", IDs{}); !errors.Is(err, ErrDisabled) {
		t.Errorf("EnsureSubscription with billing off = %v, want ErrDisabled", err)
	}
	if err := b.CancelSubscription(context.Background(), "sub_1"); !errors.Is(err, ErrDisabled) {
		t.Errorf("CancelSubscription with billing off = %v, want ErrDisabled", err)
	}
}

func TestSecretKeyFile(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	prices := map[string]string{"pro": "price_pro"}
	tests := []struct {
		name        string
		file        string
		wantEnabled bool
		wantErr     bool
	}{
		{"key read from file", keyFile, true, false},
		{"empty file", empty, false, true},
		{"missing file", filepath.Join(dir, "missing"), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New(Config{SecretKeyFile: tt.file, Prices: prices})
			if (err != nil) != tt.wantErr {
				t.Fatalf("New error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && b.Enabled() != tt.wantEnabled {
				t.Errorf("Enabled = %v, want %v", b.Enabled(), tt.wantEnabled)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	minus := -1
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"off", Config{}, nil},
		{"on", Config{SecretKey: testKey, Prices: map[string]string{"pro": "price_1"}}, nil},
		{"on without prices", Config{SecretKey: testKey}, []string{"billing.prices"}},
		{"key twice", Config{SecretKey: testKey, SecretKeyFile: "/k", Prices: map[string]string{"pro": "price_1"}}, []string{"billing.secretKeyFile"}},
		{"empty price", Config{SecretKey: testKey, Prices: map[string]string{"pro": " "}}, []string{"billing.prices[pro]"}},
		{"bad api base", Config{APIBase: "localhost:12111"}, []string{"billing.apiBase"}},
		{"negative retries", Config{MaxNetworkRetries: &minus}, []string{"billing.maxNetworkRetries"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Default()
			var got []string
			for _, e := range tt.cfg.Validate(field.NewPath("billing")) {
				got = append(got, e.Field)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("errors on %v, want on %v", got, tt.want)
			}
		})
	}
}

func TestShouldSuspend(t *testing.T) {
	tests := map[string]bool{
		"active":             false,
		"trialing":           false,
		"incomplete":         false,
		"incomplete_expired": false,
		"paused":             false,
		"":                   false,
		"past_due":           true,
		"unpaid":             true,
		"canceled":           true,
	}
	for status, want := range tests {
		if got := ShouldSuspend(status); got != want {
			t.Errorf("ShouldSuspend(%q) = %v, want %v", status, got, want)
		}
	}
}

func TestAgainstStripeMock(t *testing.T) {
	mock := testbackends.StartStripe(t)
	rec := newRecorder(t, mock.URL)
	ctx := context.Background()
	cust := Customer{TenantID: "7f9c-uid", Name: "Acme Corp", Email: "billing@acme.example"}
	var knownStatuses []string
	for _, s := range []stripe.SubscriptionStatus{
		stripe.SubscriptionStatusActive, stripe.SubscriptionStatusTrialing, stripe.SubscriptionStatusPastDue,
		stripe.SubscriptionStatusUnpaid, stripe.SubscriptionStatusCanceled, stripe.SubscriptionStatusIncomplete,
		stripe.SubscriptionStatusIncompleteExpired, stripe.SubscriptionStatusPaused,
	} {
		knownStatuses = append(knownStatuses, string(s))
	}

	t.Run("new tenant gets customer and subscription", func(t *testing.T) {
		b := newBilling(t, rec.URL, map[string]string{"pro": "price_pro"})
		st, err := b.EnsureSubscription(ctx, cust, "pro", IDs{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(st.CustomerID, "cus_") || !strings.HasPrefix(st.SubscriptionID, "sub_") {
			t.Errorf("state %+v, want a cus_ and a sub_ ID", st)
		}
		if !slices.Contains(knownStatuses, st.Status) {
			t.Errorf("status %q is not a Stripe subscription status", st.Status)
		}
		calls, reqs := rec.take()
		if want := []string{"POST /v1/customers", "POST /v1/subscriptions"}; !slices.Equal(calls, want) {
			t.Fatalf("calls %v, want %v", calls, want)
		}
		if got := reqs[0].Form.Get("metadata[tenant]"); got != cust.TenantID {
			t.Errorf("customer metadata tenant = %q, want %q", got, cust.TenantID)
		}
		if got := reqs[0].Form.Get("email"); got != cust.Email {
			t.Errorf("customer email = %q, want %q", got, cust.Email)
		}
		if got, want := reqs[0].IdempotencyKey, "shoal-customer-"+cust.TenantID; got != want {
			t.Errorf("customer idempotency key %q, want %q", got, want)
		}
		if got := reqs[1].Form.Get("items[0][price]"); got != "price_pro" {
			t.Errorf("subscription price = %q, want price_pro", got)
		}
		if got := reqs[1].Form.Get("customer"); got != st.CustomerID {
			t.Errorf("subscription for customer %q, want the one just created (%q)", got, st.CustomerID)
		}
		if !strings.HasPrefix(reqs[1].IdempotencyKey, "shoal-subscription-"+cust.TenantID) {
			t.Errorf("subscription idempotency key %q does not derive from the tenant", reqs[1].IdempotencyKey)
		}
	})

	// stripe-mock answers every read with the same fixture, whose price is learnt here so a
	// plan can be configured to match it.
	probe := newBilling(t, rec.URL, map[string]string{"probe": "price_probe"})
	existing := IDs{CustomerID: "cus_existing", SubscriptionID: "sub_existing"}
	fixture, err := probe.EnsureSubscription(ctx, cust, "probe", existing)
	if err != nil {
		t.Fatal(err)
	}
	if fixture.PriceID == "" {
		t.Fatal("the mock's subscription fixture has no price")
	}
	rec.take()

	t.Run("existing subscription on its plan is only read", func(t *testing.T) {
		b := newBilling(t, rec.URL, map[string]string{"pro": fixture.PriceID})
		st, err := b.EnsureSubscription(ctx, cust, "pro", existing)
		if err != nil {
			t.Fatal(err)
		}
		calls, _ := rec.take()
		if want := []string{"GET /v1/subscriptions/sub_existing"}; !slices.Equal(calls, want) {
			t.Fatalf("calls %v, want %v", calls, want)
		}
		if st.CustomerID != existing.CustomerID || st.PriceID != fixture.PriceID || !slices.Contains(knownStatuses, st.Status) {
			t.Errorf("state %+v, want customer %s, price %s and a known status", st, existing.CustomerID, fixture.PriceID)
		}
	})

	t.Run("reading a subscription changes nothing", func(t *testing.T) {
		b := newBilling(t, rec.URL, map[string]string{"pro": fixture.PriceID})
		st, err := b.Subscription(ctx, "sub_existing")
		if err != nil {
			t.Fatal(err)
		}
		calls, _ := rec.take()
		if want := []string{"GET /v1/subscriptions/sub_existing"}; !slices.Equal(calls, want) {
			t.Fatalf("calls %v, want %v", calls, want)
		}
		// The mock's fixture has arbitrary period bounds (its end may precede its start), so
		// only their presence is checked; readers check the order.
		if st.PriceID != fixture.PriceID || !slices.Contains(knownStatuses, st.Status) ||
			st.CurrentPeriodStart.IsZero() || st.CurrentPeriodEnd.IsZero() {
			t.Errorf("state %+v, want the fixture's price, a known status and a period", st)
		}
		if _, err := b.Subscription(ctx, ""); err == nil {
			t.Error("an empty subscription ID was read")
		}
	})

	t.Run("plan change updates the subscription item", func(t *testing.T) {
		b := newBilling(t, rec.URL, map[string]string{"pro": fixture.PriceID, "enterprise": "price_enterprise"})
		if _, err := b.EnsureSubscription(ctx, cust, "enterprise", existing); err != nil {
			t.Fatal(err)
		}
		calls, reqs := rec.take()
		if want := []string{"GET /v1/subscriptions/sub_existing", "POST /v1/subscriptions/sub_existing"}; !slices.Equal(calls, want) {
			t.Fatalf("calls %v, want %v", calls, want)
		}
		if got := reqs[1].Form.Get("items[0][price]"); got != "price_enterprise" {
			t.Errorf("update price = %q, want price_enterprise", got)
		}
		if reqs[1].Form.Get("items[0][id]") == "" {
			t.Error("update does not name the subscription item to change, so Stripe would add a second one")
		}
	})

	t.Run("unknown plan is a config error", func(t *testing.T) {
		b := newBilling(t, rec.URL, map[string]string{"pro": "price_pro"})
		_, err := b.EnsureSubscription(ctx, cust, "platinum", IDs{})
		if !errors.Is(err, ErrUnknownPlan) || !strings.Contains(err.Error(), `"platinum"`) {
			t.Errorf("err = %v, want ErrUnknownPlan naming the plan", err)
		}
		if IsUnavailable(err) {
			t.Error("a config error reported as retryable")
		}
		if calls, _ := rec.take(); len(calls) != 0 {
			t.Errorf("calls %v, want none", calls)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		b := newBilling(t, rec.URL, map[string]string{"pro": "price_pro"})
		if err := b.CancelSubscription(ctx, "sub_existing"); err != nil {
			t.Fatal(err)
		}
		if calls, _ := rec.take(); !slices.Equal(calls, []string{"DELETE /v1/subscriptions/sub_existing"}) {
			t.Errorf("calls %v, want the subscription deleted", calls)
		}
	})

	t.Run("refused key is not an outage", func(t *testing.T) {
		b, err := New(Config{SecretKey: "not-a-stripe-key", APIBase: rec.URL, Prices: map[string]string{"pro": "price_pro"}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.EnsureSubscription(ctx, cust, "pro", IDs{})
		if err == nil {
			t.Fatal("a malformed key was accepted")
		}
		t.Logf("error: %v", err)
		if IsUnavailable(err) {
			t.Errorf("IsUnavailable(%v) = true for a refused key", err)
		}
		rec.take()
	})

	t.Run("API answering 503 is unavailable", func(t *testing.T) {
		b := newBilling(t, rec.URL, map[string]string{"pro": "price_pro"})
		rec.failing.Store(true)
		defer rec.failing.Store(false)
		_, err := b.EnsureSubscription(ctx, cust, "pro", existing)
		t.Logf("error: %v", err)
		if !IsUnavailable(err) {
			t.Errorf("IsUnavailable(%v) = false for a 503", err)
		}
		rec.take()
	})

	t.Run("stripe-mock down is unavailable", func(t *testing.T) {
		// Nothing listens on a port freed a moment ago: the mock's address once it is gone.
		down := "http://" + testbackends.Addr(testbackends.FreePort(t))
		b := newBilling(t, down, map[string]string{"pro": "price_pro"})
		_, err := b.EnsureSubscription(ctx, cust, "pro", IDs{})
		t.Logf("error: %v", err)
		if !IsUnavailable(err) {
			t.Errorf("IsUnavailable(%v) = false with the API down", err)
		}
	})
}
