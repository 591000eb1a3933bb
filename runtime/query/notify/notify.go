// Package notify sends alert notifications: signed webhooks, and email through
// SendGrid's v3 mail/send HTTP API.
//
// A webhook is a JSON POST of the Event with the header
//
//	Shoal-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">
//
// keyed with the installation's signing secret. The receiver recomputes the HMAC over the
// timestamp and the raw body, compares in constant time, and refuses timestamps older
// than a few minutes, so a captured request cannot be replayed later (Verify does all
// three).
//
// Webhook URLs are written by tenants, so they are checked (CheckURL) and, unless the
// installation allows private targets, never connected to on an internal address. A
// Dispatcher delivers in the background and retries what may pass later.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers of a webhook.
const (
	SignatureHeader = "Shoal-Signature"
	EventHeader     = "Shoal-Event"
)

// DefaultTolerance is how old a webhook's timestamp may be for Verify.
const DefaultTolerance = 5 * time.Minute

// requestTimeout bounds one delivery.
const requestTimeout = 10 * time.Second

// Event kinds.
const (
	KindFiring   = "alert.firing"
	KindResolved = "alert.resolved"
)

// Event is one transition of an alert: what a webhook receives as JSON and an email
// describes.
type Event struct {
	Kind      string     `json:"kind"`
	Tenant    string     `json:"tenant"`
	AlertID   string     `json:"alertId"`
	RuleID    string     `json:"ruleId"`
	RuleName  string     `json:"ruleName"`
	Value     float64    `json:"value"`
	Operator  string     `json:"operator"`
	Threshold float64    `json:"threshold"`
	Window    string     `json:"window"`
	FiredAt   time.Time  `json:"firedAt"`
	Resolved  *time.Time `json:"resolvedAt,omitempty"`
}

// Summary is a one-line description, for email subjects.
func (e Event) Summary() string {
	state := "firing"
	if e.Kind == KindResolved {
		state = "resolved"
	}
	return fmt.Sprintf("[%s] %s: %s (value %g %s %g over %s)", e.Tenant, e.RuleName, state, e.Value, e.Operator, e.Threshold, e.Window)
}

// Sign returns the signature header value of body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Errors of Verify.
var (
	ErrBadSignature = errors.New("webhook signature does not match")
	ErrStale        = errors.New("webhook timestamp outside the tolerance")
)

// Verify checks a webhook's signature header against its raw body, and that its
// timestamp is within tolerance of now (DefaultTolerance when 0).
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance == 0 {
		tolerance = DefaultTolerance
	}
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return fmt.Errorf("%w: malformed header", ErrBadSignature)
	}
	if !hmac.Equal([]byte(sig), []byte(mac(secret, ts, body))) {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	return nil
}

// Webhook posts signed events.
type Webhook struct {
	secret       []byte
	client       *http.Client
	allowPrivate bool
	now          func() time.Time
}

// WebhookOptions configure a Webhook.
type WebhookOptions struct {
	// AllowPrivateTargets lets webhooks reach loopback, private and link-local addresses
	// (on-premises receivers, tests). Off, such URLs are refused, by name when written and
	// by resolved address when sent.
	AllowPrivateTargets bool
	// Timeout bounds one attempt. Default 10s.
	Timeout time.Duration
}

// NewWebhook returns a sender signing with secret. Its client does not follow redirects
// (a redirect would resend the signed body elsewhere) and does not go through a proxy
// from the environment (the proxy would connect past the address check).
func NewWebhook(secret []byte, opts WebhookOptions) (*Webhook, error) {
	if len(secret) < 16 {
		return nil, errors.New("notify: the webhook signing secret must be at least 16 bytes")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = requestTimeout
	}
	client := &http.Client{
		Timeout:       opts.Timeout,
		Transport:     guardedTransport(opts.AllowPrivateTargets),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Webhook{secret: append([]byte(nil), secret...), client: client, allowPrivate: opts.AllowPrivateTargets, now: time.Now}, nil
}

// CheckURL checks a webhook URL as the sender will: see the package's CheckURL.
func (w *Webhook) CheckURL(raw string) error { return CheckURL(raw, w.allowPrivate) }

// Send posts the event to url once, signed at the time of sending; any answer but 2xx
// is an error (a *StatusError for an answer).
func (w *Webhook) Send(ctx context.Context, url string, ev Event) error {
	if err := w.CheckURL(url); err != nil {
		return fmt.Errorf("notify: webhook %s: %w", url, err)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("notify: encoding the event: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("notify: webhook %s: %w: %w", url, ErrInvalidURL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "shoal-alerts")
	req.Header.Set(EventHeader, ev.Kind)
	req.Header.Set(SignatureHeader, Sign(w.secret, w.now(), body))
	return do(w.client, req, "webhook "+url)
}

// SendGrid sends email through SendGrid's v3 mail/send API.
type SendGrid struct {
	endpoint, apiKey, from string
	client                 *http.Client
}

// NewSendGrid returns a sender posting to endpoint (the mail/send URL) with apiKey, from
// the address from.
func NewSendGrid(endpoint, apiKey, from string, client *http.Client) (*SendGrid, error) {
	if endpoint == "" || apiKey == "" || from == "" {
		return nil, errors.New("notify: SendGrid needs an endpoint, an API key and a from address")
	}
	if client == nil {
		client = &http.Client{Timeout: requestTimeout}
	}
	return &SendGrid{endpoint: endpoint, apiKey: apiKey, from: from, client: client}, nil
}

type sgAddress struct {
	Email string `json:"email"`
}

type sgContent struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type sgMail struct {
	Personalizations []struct {
		To []sgAddress `json:"to"`
	} `json:"personalizations"`
	From    sgAddress   `json:"from"`
	Subject string      `json:"subject"`
	Content []sgContent `json:"content"`
}

// Send mails the event to the addresses, one message with each as its own recipient (a
// personalization each, so recipients do not see one another).
func (s *SendGrid) Send(ctx context.Context, to []string, ev Event) error {
	if len(to) == 0 {
		return nil
	}
	m := sgMail{From: sgAddress{Email: s.from}, Subject: ev.Summary(), Content: []sgContent{{Type: "text/plain", Value: emailText(ev)}}}
	for _, addr := range to {
		m.Personalizations = append(m.Personalizations, struct {
			To []sgAddress `json:"to"`
		}{To: []sgAddress{{Email: addr}}})
	}
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("notify: encoding the email: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("notify: SendGrid: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.apiKey)
	return do(s.client, req, "SendGrid")
}

func emailText(ev Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nRule: %s (%s)\nTenant: %s\nValue: %g\nCondition: value %s %g over %s\nFired at: %s\n",
		ev.Summary(), ev.RuleName, ev.RuleID, ev.Tenant, ev.Value, ev.Operator, ev.Threshold, ev.Window, ev.FiredAt.Format(time.RFC3339))
	if ev.Resolved != nil {
		fmt.Fprintf(&b, "Resolved at: %s\n", ev.Resolved.Format(time.RFC3339))
	}
	return b.String()
}

// StatusError is an answer other than 2xx.
type StatusError struct {
	// Target names what answered: "webhook <url>" or "SendGrid".
	Target string
	Status int
	// RetryAfter is the answer's Retry-After, 0 when absent or unreadable.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("notify: %s answered %d %s", e.Target, e.Status, http.StatusText(e.Status))
}

func do(client *http.Client, req *http.Request, what string) error {
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("notify: %s: %w", what, err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{Target: what, Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	return nil
}

// parseRetryAfter reads a Retry-After value: seconds, or an HTTP date. 0 when absent,
// unreadable or past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if sec, err := strconv.ParseInt(v, 10, 64); err == nil {
		if sec <= 0 {
			return 0
		}
		return time.Duration(min(sec, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
