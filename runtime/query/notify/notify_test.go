package notify

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	secret := []byte("a-secret-of-at-least-16")
	sent := time.Unix(1_800_000_000, 0)
	body := []byte(`{"kind":"alert.firing"}`)
	good := Sign(secret, sent, body)
	for _, tc := range []struct {
		name   string
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"as sent", good, body, sent.Add(time.Minute), nil},
		{"clock of the receiver slightly behind", good, body, sent.Add(-time.Minute), nil},
		{"replayed later", good, body, sent.Add(10 * time.Minute), ErrStale},
		{"body changed", good, []byte(`{"kind":"alert.resolved"}`), sent, ErrBadSignature},
		{"timestamp changed", strings.Replace(good, "t=1800000000", "t=1800000600", 1), body, sent.Add(10 * time.Minute), ErrBadSignature},
		{"another secret", Sign([]byte("another-secret-of-16"), sent, body), body, sent, ErrBadSignature},
		{"no signature", "t=1800000000", body, sent, ErrBadSignature},
		{"garbage", "sha256=abc", body, sent, ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Verify(secret, tc.header, tc.body, tc.now, 0); !errors.Is(err, tc.want) {
				t.Errorf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDeliveryFailuresAreErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	hook, err := NewWebhook([]byte("0123456789abcdef"), WebhookOptions{AllowPrivateTargets: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, path := range []string{"/fails", "/moved"} {
		if err := hook.Send(ctx, srv.URL+path, Event{Kind: KindFiring}); err == nil {
			t.Errorf("webhook to %s: no error", path)
		}
	}
	mail, err := NewSendGrid(srv.URL, "key", "from@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := mail.Send(ctx, []string{"to@example.com"}, Event{Kind: KindResolved}); err == nil {
		t.Error("SendGrid 500: no error")
	}
	if _, err := NewWebhook([]byte("short"), WebhookOptions{}); err == nil {
		t.Error("a short secret is accepted")
	}
}
