package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-dev/shoal/runtime/query/notify/notifytest"
)

var testSecret = []byte("0123456789abcdef-test")

// fastRetry keeps the tests' waits to milliseconds.
var fastRetry = RetryPolicy{Attempts: 4, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, MaxRetryAfter: 2 * time.Second}

func newTestDispatcher(t *testing.T, opts DispatcherOptions) (*Dispatcher, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	if opts.Webhook == nil {
		hook, err := NewWebhook(testSecret, WebhookOptions{AllowPrivateTargets: true, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		opts.Webhook = hook
	}
	if opts.Retry == (RetryPolicy{}) {
		opts.Retry = fastRetry
	}
	opts.Registerer = reg
	d, err := NewDispatcher(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	return d, reg
}

// count is the value of the counter name with the labels, 0 when it has no such series.
func count(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func outcomes(t *testing.T, reg *prometheus.Registry, channel string) (delivered, failed, dropped float64) {
	t.Helper()
	get := func(o string) float64 {
		return count(t, reg, "shoal_query_alert_notifications_total", map[string]string{"channel": channel, "outcome": o})
	}
	return get(OutcomeDelivered), get(OutcomeFailed), get(OutcomeDropped)
}

func waitIdle(t *testing.T, d *Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Wait(ctx); err != nil {
		t.Fatalf("notifications still pending: %v", err)
	}
}

func TestDispatcherRetries(t *testing.T) {
	for _, tc := range []struct {
		name          string
		fail, status  int
		retryAfter    string
		wantRequests  int
		wantDelivered bool
		minSpacing    time.Duration // between the first two requests
	}{
		{name: "503 twice then delivered", fail: 2, status: 503, wantRequests: 3, wantDelivered: true},
		{name: "500 on every attempt", fail: -1, status: 500, wantRequests: fastRetry.Attempts},
		{name: "400 is not retried", fail: -1, status: 400, wantRequests: 1},
		{name: "404 is not retried", fail: -1, status: 404, wantRequests: 1},
		{name: "a redirect is neither followed nor retried", fail: -1, status: 302, wantRequests: 1},
		{name: "429 honours a short Retry-After", fail: 1, status: 429, retryAfter: "1", wantRequests: 2, wantDelivered: true, minSpacing: time.Second},
		{name: "429 asking for longer than MaxRetryAfter", fail: -1, status: 429, retryAfter: "3600", wantRequests: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := notifytest.NewReceiver(t, tc.fail, tc.status, tc.retryAfter)
			d, reg := newTestDispatcher(t, DispatcherOptions{})
			ev := Event{Kind: KindFiring, Tenant: "acme", RuleID: "r1", Value: 12}
			d.Enqueue(ev, []string{rcv.URL + "/hook"}, nil)
			waitIdle(t, d)

			got := rcv.Requests()
			if len(got) != tc.wantRequests {
				t.Fatalf("%d requests, want %d", len(got), tc.wantRequests)
			}
			delivered, failed, dropped := outcomes(t, reg, ChannelWebhook)
			if tc.wantDelivered && (delivered != 1 || failed != 0) || !tc.wantDelivered && (delivered != 0 || failed != 1) || dropped != 0 {
				t.Errorf("outcomes: delivered %g, failed %g, dropped %g; want delivered %v", delivered, failed, dropped, tc.wantDelivered)
			}
			attempts := count(t, reg, "shoal_query_alert_notification_attempts_total", map[string]string{"channel": ChannelWebhook})
			if total := attempts; tc.wantRequests == 1 && total != 1 {
				t.Errorf("attempts counted: %g", total)
			}
			// Every attempt is signed when sent: the one delivered verifies now.
			last := got[len(got)-1]
			if err := Verify(testSecret, last.Header.Get(SignatureHeader), last.Body, time.Now(), 0); err != nil {
				t.Errorf("the last attempt's signature: %v", err)
			}
			if tc.minSpacing > 0 && got[1].At.Sub(got[0].At) < tc.minSpacing {
				t.Errorf("retried after %s; Retry-After asked for %s", got[1].At.Sub(got[0].At), tc.minSpacing)
			}
		})
	}
}

func TestDispatcherRetriesNetworkErrors(t *testing.T) {
	// A receiver that is down: its port refuses connections.
	srv := httptest.NewServer(http.NotFoundHandler())
	down := srv.URL
	srv.Close()
	d, reg := newTestDispatcher(t, DispatcherOptions{})
	d.Enqueue(Event{Kind: KindFiring, Tenant: "acme"}, []string{down}, nil)
	waitIdle(t, d)
	if n := count(t, reg, "shoal_query_alert_notification_attempts_total", map[string]string{"channel": ChannelWebhook, "result": "retryable"}); n != float64(fastRetry.Attempts) {
		t.Errorf("%g attempts at a closed port, want %d", n, fastRetry.Attempts)
	}
	if _, failed, _ := outcomes(t, reg, ChannelWebhook); failed != 1 {
		t.Errorf("failed %g, want 1", failed)
	}
}

func TestDispatcherEmailRetries(t *testing.T) {
	rcv := notifytest.NewReceiver(t, 1, http.StatusBadGateway, "")
	mail, err := NewSendGrid(rcv.URL+"/v3/mail/send", "SG.key", "alerts@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	d, reg := newTestDispatcher(t, DispatcherOptions{Email: mail})
	d.Enqueue(Event{Kind: KindResolved, Tenant: "acme"}, nil, []string{"a@example.com", "b@example.com"})
	waitIdle(t, d)
	if n := len(rcv.Requests()); n != 2 {
		t.Errorf("%d requests to SendGrid, want 2 (one failure, one retry)", n)
	}
	if delivered, failed, _ := outcomes(t, reg, ChannelEmail); delivered != 1 || failed != 0 {
		t.Errorf("email delivered %g, failed %g", delivered, failed)
	}
}

// A receiver that hangs holds one worker, not the caller nor the other receivers.
func TestDispatcherDoesNotBlock(t *testing.T) {
	hanging, release := notifytest.NewHangingReceiver(t)
	defer release()
	fine := notifytest.NewReceiver(t, 0, 0, "")
	d, reg := newTestDispatcher(t, DispatcherOptions{Workers: 2})

	start := time.Now()
	d.Enqueue(Event{Kind: KindFiring, Tenant: "acme"}, []string{hanging}, nil)
	d.Enqueue(Event{Kind: KindFiring, Tenant: "globex"}, []string{fine.URL}, nil)
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("Enqueue took %s", took)
	}
	deadline := time.Now().Add(5 * time.Second)
	delivered := func() float64 { d, _, _ := outcomes(t, reg, ChannelWebhook); return d }
	for delivered() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if len(fine.Requests()) != 1 || delivered() != 1 {
		t.Fatalf("the other receiver waited for the hanging one: %d requests, %g delivered", len(fine.Requests()), delivered())
	}
	// The worker marks its notification done just after counting it.
	for d.Pending() != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if d.Pending() != 1 {
		t.Errorf("pending %d, want 1", d.Pending())
	}
}

func TestDispatcherQueueFullAndShutdown(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var hits int
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer hanging.Close()
	defer close(release)
	d, reg := newTestDispatcher(t, DispatcherOptions{Workers: 1, QueueSize: 2})
	for i := range 4 {
		d.Enqueue(Event{Kind: KindFiring, Tenant: "acme", RuleID: strconv.Itoa(i)}, []string{hanging.URL + "/" + strconv.Itoa(i)}, nil)
	}
	// One in flight (or about to be), two queued: at least one of the four is dropped.
	if _, _, dropped := outcomes(t, reg, ChannelWebhook); dropped < 1 {
		t.Errorf("dropped %g with a queue of 2 and one worker, want at least 1", dropped)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := d.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close with deliveries hanging: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close took %s past its deadline", took)
	}
	delivered, failed, dropped := outcomes(t, reg, ChannelWebhook)
	if delivered != 0 || delivered+failed+dropped != 4 {
		t.Errorf("after Close: delivered %g, failed %g, dropped %g; want all 4 accounted, none delivered", delivered, failed, dropped)
	}
	d.Enqueue(Event{Kind: KindFiring}, []string{hanging.URL}, nil)
	if _, _, after := outcomes(t, reg, ChannelWebhook); after != dropped+1 {
		t.Errorf("a notification after Close: dropped %g, want %g", after, dropped+1)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits == 0 {
		t.Error("the receiver was never called")
	}
}

func TestRetryPolicyNext(t *testing.T) {
	p := RetryPolicy{Attempts: 5, InitialBackoff: time.Second, MaxBackoff: 5 * time.Second, MaxRetryAfter: 10 * time.Second}
	netErr := fmt.Errorf("notify: webhook: %w", &url.Error{Op: "Post", URL: "https://x.example", Err: errors.New("connection reset")})
	for _, tc := range []struct {
		name    string
		attempt int
		err     error
		jitter  float64
		want    time.Duration
		again   bool
	}{
		{"network error, first attempt", 1, netErr, 0, time.Second, true},
		{"backoff doubles", 3, netErr, 0, 4 * time.Second, true},
		{"capped", 4, netErr, 0, 5 * time.Second, true},
		{"jitter takes up to half off", 3, netErr, 0.5, 3 * time.Second, true},
		{"last attempt", 5, netErr, 0, 0, false},
		{"503", 1, &StatusError{Status: 503}, 0, time.Second, true},
		{"429 with Retry-After", 1, &StatusError{Status: 429, RetryAfter: 7 * time.Second}, 0, 7 * time.Second, true},
		{"Retry-After shorter than the backoff", 3, &StatusError{Status: 503, RetryAfter: time.Second}, 0, 4 * time.Second, true},
		{"Retry-After too long", 1, &StatusError{Status: 429, RetryAfter: time.Minute}, 0, 0, false},
		{"400", 1, &StatusError{Status: 400}, 0, 0, false},
		{"401", 1, &StatusError{Status: 401}, 0, 0, false},
		{"forbidden target", 1, fmt.Errorf("x: %w", ErrForbiddenTarget), 0, 0, false},
		{"invalid URL", 1, ErrInvalidURL, 0, 0, false},
		{"not an HTTP error", 1, errors.New("encoding"), 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, again := p.Next(tc.attempt, tc.err, tc.jitter)
			if got != tc.want || again != tc.again {
				t.Errorf("Next(%d, %v) = %s, %v; want %s, %v", tc.attempt, tc.err, got, again, tc.want, tc.again)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"5":                             5 * time.Second,
		" 120 ":                         2 * time.Minute,
		"-3":                            0,
		"soon":                          0,
		"Sun, 01 Mar 2026 12:00:30 GMT": 30 * time.Second,
		"Sun, 01 Mar 2026 11:00:00 GMT": 0,
		"99999999999":                   24 * time.Hour,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}
