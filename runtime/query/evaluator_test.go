package query

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/auth"
	"github.com/shoal-dev/shoal/runtime/query/notify"
)

// recorder is a local HTTP server that keeps every request it receives: it plays the
// tenant's webhook receiver and SendGrid.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
	srv  *httptest.Server
}

type recorded struct {
	header http.Header
	body   []byte
}

func newRecorder(t *testing.T, status int) *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, recorded{header: req.Header.Clone(), body: body})
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// allowPrivateWebhooks lets rules notify the tests' receivers, which listen on
// 127.0.0.1.
func allowPrivateWebhooks(o *Options) { o.Platform.Query.Alerts.AllowPrivateWebhookTargets = true }

// newTestEvaluator returns an evaluator retrying within milliseconds, closed when the
// test ends.
func newTestEvaluator(t *testing.T, opts EvaluatorOptions) *Evaluator {
	t.Helper()
	if opts.Retry == (notify.RetryPolicy{}) {
		opts.Retry = notify.RetryPolicy{Attempts: 3, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}
	}
	ev, err := NewEvaluator(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ev.Close(context.Background()) })
	return ev
}

func (r *recorder) take() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

func TestAlertEvaluatorFiresAndResolves(t *testing.T) {
	secret := []byte("0123456789abcdef-signing-secret")
	hooks, mails := newRecorder(t, http.StatusNoContent), newRecorder(t, http.StatusAccepted)
	// The receivers listen on 127.0.0.1: the installation allows private targets.
	e := newEnv(t, allowPrivateWebhooks)
	webhook, err := notify.NewWebhook(secret, notify.WebhookOptions{AllowPrivateTargets: true})
	if err != nil {
		t.Fatal(err)
	}
	email, err := notify.NewSendGrid(mails.srv.URL+"/v3/mail/send", "SG.test-key", "alerts@shoal.example", nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := newTestEvaluator(t, EvaluatorOptions{Store: e.store, Engine: e.engine, Webhook: webhook, Email: email})

	// The rule is made through the API, as a tenant would.
	body := alertRuleInput("too-many-views")
	body["notify"] = map[string]any{"webhooks": []string{hooks.srv.URL + "/hook"}, "emails": []string{"oncall@acme.example", "lead@acme.example"}}
	a := e.do("POST", "/api/v1/alert-rules", e.token("acme", auth.RoleEditor), body)
	if a.status != http.StatusCreated {
		t.Fatalf("creating the rule: %d %s", a.status, a.body)
	}
	var rule alertRuleJSON
	a.json(t, &rule)
	// globex has the same rule and stays quiet: its value is under the threshold.
	e.alertRule("globex", "quiet")
	e.engine.setValue("globex", 1)

	ctx := ctxFor(t)
	step := func(value float64, wantKind string) {
		t.Helper()
		e.engine.setValue("acme", value)
		if err := ev.EvaluateOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if err := ev.notifications.Wait(ctx); err != nil { // delivered in the background
			t.Fatal(err)
		}
		gotHooks, gotMails := hooks.take(), mails.take()
		if wantKind == "" {
			if len(gotHooks)+len(gotMails) != 0 {
				t.Errorf("value %g: notifications without a transition: %d webhooks, %d emails", value, len(gotHooks), len(gotMails))
			}
			return
		}
		if len(gotHooks) != 1 || len(gotMails) != 1 {
			t.Fatalf("value %g: %d webhooks, %d emails; want one of each", value, len(gotHooks), len(gotMails))
		}
		h := gotHooks[0]
		if err := notify.Verify(secret, h.header.Get(notify.SignatureHeader), h.body, time.Now(), 0); err != nil {
			t.Errorf("webhook signature: %v (%s)", err, h.header.Get(notify.SignatureHeader))
		}
		if err := notify.Verify([]byte("another-secret-of-16"), h.header.Get(notify.SignatureHeader), h.body, time.Now(), 0); err == nil {
			t.Error("the signature verifies with another secret")
		}
		tampered := []byte(strings.Replace(string(h.body), `"acme"`, `"globex"`, 1))
		if err := notify.Verify(secret, h.header.Get(notify.SignatureHeader), tampered, time.Now(), 0); err == nil {
			t.Error("a tampered body verifies")
		}
		if err := notify.Verify(secret, h.header.Get(notify.SignatureHeader), h.body, time.Now().Add(time.Hour), 0); err == nil {
			t.Error("an hour-old webhook verifies: replay is possible")
		}
		var event notify.Event
		if err := json.Unmarshal(h.body, &event); err != nil {
			t.Fatal(err)
		}
		if event.Kind != wantKind || event.Tenant != "acme" || event.RuleID != rule.ID || event.Value != value || h.header.Get(notify.EventHeader) != wantKind {
			t.Errorf("webhook event %s", h.body)
		}
		m := gotMails[0]
		var mail struct {
			Personalizations []struct{ To []struct{ Email string } }
			From             struct{ Email string }
			Subject          string
		}
		if err := json.Unmarshal(m.body, &mail); err != nil {
			t.Fatal(err)
		}
		if m.header.Get("Authorization") != "Bearer SG.test-key" || mail.From.Email != "alerts@shoal.example" ||
			len(mail.Personalizations) != 2 || mail.Personalizations[1].To[0].Email != "lead@acme.example" ||
			!strings.Contains(mail.Subject, "too-many-views") {
			t.Errorf("email %v %s", m.header, m.body)
		}
	}
	step(3, "")                  // under the threshold of 5: nothing
	step(12, notify.KindFiring)  // fires
	step(20, "")                 // still firing: no second notification
	step(2, notify.KindResolved) // resolves
	step(1, "")                  // stays resolved
	step(6, notify.KindFiring)   // fires again: a new alert

	a = e.do("GET", "/api/v1/alerts", e.token("acme", auth.RoleViewer), nil)
	var alerts page[alertJSON]
	a.json(t, &alerts)
	if len(alerts.Items) != 2 || alerts.Items[0].State != "firing" || alerts.Items[1].State != "resolved" ||
		*alerts.Items[0].Value != 6 || alerts.Items[1].ResolvedAt == nil {
		t.Errorf("alerts: %s", a.body)
	}
	if a := e.do("GET", "/api/v1/alerts", e.token("globex", auth.RoleViewer), nil); strings.Contains(string(a.body), "firing") {
		t.Errorf("globex's alerts: %s", a.body)
	}
}

func TestAlertRuleValidation(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.EmailEnabled = false })
	editor := e.token("acme", auth.RoleEditor)
	body := alertRuleInput("r")
	body["query"] = map[string]any{"pipeline": "web", "metric": "views", "interval": "hour", "groupBy": []string{"user_id"}}
	body["condition"] = map[string]any{"operator": "about", "threshold": 1, "window": "1y"}
	body["notify"] = map[string]any{"webhooks": []string{"file:///etc/passwd"}, "emails": []string{"a@b.example"}}
	a := e.do("POST", "/api/v1/alert-rules", editor, body)
	p := a.problem(t)
	for _, name := range []string{"query.interval", "query.groupBy", "condition.window", "notify.webhooks[0]", "notify.emails"} {
		if !p.names(name) {
			t.Errorf("the problem does not name %s: %s", name, a.body)
		}
	}
	body = alertRuleInput("r")
	body["condition"] = map[string]any{"operator": "about", "threshold": 1, "window": "30s"}
	a = e.do("POST", "/api/v1/alert-rules", editor, body)
	if p := a.problem(t); a.status != 400 || !p.names("condition.operator") || !p.names("condition.window") {
		t.Errorf("store validation: %d %s", a.status, a.body)
	}
	// Disabling a rule through the API resolves its firing alert.
	rule := e.alertRule("acme", "to-disable")
	if _, fired, err := e.store.FireAlert(ctxFor(t), rule, 99); err != nil || !fired {
		t.Fatal(err)
	}
	off := alertRuleInput("to-disable")
	off["enabled"] = false
	if a := e.do("PUT", "/api/v1/alert-rules/"+rule.ID, editor, off); a.status != 200 || !strings.Contains(string(a.body), `"enabled":false`) {
		t.Errorf("disable: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/api/v1/alerts", editor, nil); strings.Contains(string(a.body), "firing") {
		t.Errorf("alerts after disabling: %s", a.body)
	}
}
