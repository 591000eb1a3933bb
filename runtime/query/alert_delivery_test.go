package query

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/internal/auth"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/runtime/query/notify"
	"github.com/shoal-dev/shoal/runtime/query/notify/notifytest"
)

var deliverySecret = []byte("0123456789abcdef-delivery")

// notifyingRule stores an enabled rule of the tenant straight in the store (as one
// written while the installation allowed it would be): value > 10 over 5m, notifying
// the webhooks.
func (e *env) notifyingRule(tenant, name string, webhooks ...string) metastore.AlertRule {
	e.t.Helper()
	raw, err := json.Marshal(ruleDefinition{Query: StoredQuery{Pipeline: "web", Metric: "views"}, Notify: Notify{Webhooks: webhooks}})
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := e.store.CreateAlertRule(ctxFor(e.t), tenant, metastore.AlertRuleSpec{
		Name: name, Query: raw, Enabled: true,
		Condition: metastore.AlertCondition{Operator: metastore.OpGreater, Threshold: 10, Window: metav1.Duration{Duration: 5 * time.Minute}},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// notifications is the alert notification counter of the channel and outcome.
func notifications(t *testing.T, reg *prometheus.Registry, channel, outcome string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "shoal_query_alert_notifications_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["channel"] == channel && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestAlertWebhookTargetsCheckedWhenWritten(t *testing.T) {
	e := newEnv(t, nil) // private targets refused: the default
	editor := e.token("acme", auth.RoleEditor)
	for _, tc := range []struct {
		url  string
		want int
	}{
		{"https://hooks.example.com/shoal", http.StatusCreated},
		{"http://127.0.0.1:8080/hook", http.StatusBadRequest},
		{"http://localhost/hook", http.StatusBadRequest},
		{"http://[::1]/hook", http.StatusBadRequest},
		{"http://10.0.0.8/hook", http.StatusBadRequest},
		{"http://192.168.1.20/hook", http.StatusBadRequest},
		{"http://169.254.169.254/latest/meta-data/", http.StatusBadRequest},
		{"http://0.0.0.0:9000/", http.StatusBadRequest},
		{"http://224.0.0.251/", http.StatusBadRequest},
		{"http://127.1/", http.StatusBadRequest},
		{"https://user:secret@hooks.example.com/", http.StatusBadRequest},
		{"ftp://hooks.example.com/", http.StatusBadRequest},
	} {
		t.Run(tc.url, func(t *testing.T) {
			body := alertRuleInput(uniq("hook"))
			// The target checked sits second: the problem must name its index.
			body["notify"] = map[string]any{"webhooks": []string{"https://ok.example.com/", tc.url}}
			a := e.do("POST", "/api/v1/alert-rules", editor, body)
			if a.status != tc.want {
				t.Fatalf("POST with webhook %s: %d %s", tc.url, a.status, a.body)
			}
			if tc.want == http.StatusBadRequest {
				if p := a.problem(t); len(p.InvalidParams) != 1 || p.InvalidParams[0].Name != "notify.webhooks[1]" {
					t.Errorf("problem: %s; want it to name notify.webhooks[1] only", a.body)
				}
			}
		})
	}
	// Updating is checked the same way.
	rule := e.alertRule("acme", "to-update")
	body := alertRuleInput("to-update")
	body["notify"] = map[string]any{"webhooks": []string{"http://127.0.0.1:9/hook"}}
	a := e.do("PUT", "/api/v1/alert-rules/"+rule.ID, editor, body)
	if p := a.problem(t); a.status != http.StatusBadRequest || !p.names("notify.webhooks[0]") {
		t.Errorf("PUT with a loopback webhook: %d %s", a.status, a.body)
	}

	// An installation allowing private targets (on premises) takes them.
	t.Run("private targets allowed", func(t *testing.T) {
		onPrem := newEnv(t, allowPrivateWebhooks)
		body := alertRuleInput("on-prem")
		body["notify"] = map[string]any{"webhooks": []string{"http://10.0.0.8/hook", "http://localhost:8080/hook"}}
		if a := onPrem.do("POST", "/api/v1/alert-rules", onPrem.token("acme", auth.RoleEditor), body); a.status != http.StatusCreated {
			t.Errorf("private targets allowed: %d %s", a.status, a.body)
		}
		body["notify"] = map[string]any{"webhooks": []string{"https://user:pw@hooks.example.com/"}}
		if a := onPrem.do("POST", "/api/v1/alert-rules", onPrem.token("acme", auth.RoleEditor), body); a.status != http.StatusBadRequest {
			t.Errorf("credentials in a URL with private targets allowed: %d %s", a.status, a.body)
		}
	})
}

func TestAlertNotificationsRetried(t *testing.T) {
	e := newEnv(t, allowPrivateWebhooks)
	flaky := notifytest.NewReceiver(t, 2, http.StatusServiceUnavailable, "") // fails twice, then takes it
	refusing := notifytest.NewReceiver(t, -1, http.StatusBadRequest, "")     // never takes it
	webhook, err := notify.NewWebhook(deliverySecret, notify.WebhookOptions{AllowPrivateTargets: true})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	ev := newTestEvaluator(t, EvaluatorOptions{
		Store: e.store, Engine: e.engine, Webhook: webhook, Registry: reg,
		Retry: notify.RetryPolicy{Attempts: 4, InitialBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
	})
	rule := e.notifyingRule("acme", "retried", flaky.URL+"/hook", refusing.URL+"/hook")
	e.engine.setValue("acme", 42)
	ctx := ctxFor(t)
	if err := ev.EvaluateOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ev.notifications.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	got := flaky.Requests()
	if len(got) != 3 {
		t.Fatalf("the receiver failing twice got %d requests, want 3", len(got))
	}
	// The delivered attempt is signed anew and verifies; its event is the transition.
	last := got[2]
	if err := notify.Verify(deliverySecret, last.Header.Get(notify.SignatureHeader), last.Body, time.Now(), 0); err != nil {
		t.Errorf("signature of the delivered attempt: %v", err)
	}
	var event notify.Event
	if err := json.Unmarshal(last.Body, &event); err != nil {
		t.Fatal(err)
	}
	if event.Kind != notify.KindFiring || event.RuleID != rule.ID || event.Value != 42 {
		t.Errorf("delivered event %s", last.Body)
	}
	if n := len(refusing.Requests()); n != 1 {
		t.Errorf("the receiver answering 400 got %d requests, want 1 (no retry)", n)
	}
	if d, f := notifications(t, reg, notify.ChannelWebhook, notify.OutcomeDelivered), notifications(t, reg, notify.ChannelWebhook, notify.OutcomeFailed); d != 1 || f != 1 {
		t.Errorf("webhook notifications: delivered %g, failed %g; want 1 and 1", d, f)
	}
}

// A receiver that hangs delays neither the evaluation nor other rules' notifications.
func TestAlertEvaluationDoesNotWaitForReceivers(t *testing.T) {
	e := newEnv(t, allowPrivateWebhooks)
	hanging, release := notifytest.NewHangingReceiver(t)
	defer release()
	fine := notifytest.NewReceiver(t, 0, 0, "")
	webhook, err := notify.NewWebhook(deliverySecret, notify.WebhookOptions{AllowPrivateTargets: true, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ev := newTestEvaluator(t, EvaluatorOptions{Store: e.store, Engine: e.engine, Webhook: webhook})
	e.notifyingRule("acme", "hangs", hanging)
	e.notifyingRule("globex", "fine", fine.URL)
	e.engine.setValue("acme", 50)
	e.engine.setValue("globex", 50)

	start := time.Now()
	if err := ev.EvaluateOnce(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("EvaluateOnce took %s with a receiver hanging", took)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(fine.Requests()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(fine.Requests()) != 1 {
		t.Error("globex's notification waited for acme's hanging receiver")
	}
	alerts, err := e.store.ListAlerts(ctxFor(t), "acme", metastore.AlertListOptions{})
	if err != nil || len(alerts) != 1 || alerts[0].State != "firing" {
		t.Errorf("acme's alert with its receiver hanging: %+v, %v", alerts, err)
	}
}

// A rule notifying 127.0.0.1 (written while the installation allowed it, or resolving
// there later) is refused when sent once private targets are not allowed.
func TestAlertWebhookToLoopbackRefusedWhenSent(t *testing.T) {
	e := newEnv(t, nil)
	rcv := notifytest.NewReceiver(t, 0, 0, "")
	webhook, err := notify.NewWebhook(deliverySecret, notify.WebhookOptions{}) // private targets refused
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	ev := newTestEvaluator(t, EvaluatorOptions{Store: e.store, Engine: e.engine, Webhook: webhook, Registry: reg})
	e.notifyingRule("acme", "loopback", rcv.URL+"/hook")
	e.engine.setValue("acme", 99)
	ctx := ctxFor(t)
	if err := ev.EvaluateOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ev.notifications.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(rcv.Requests()); n != 0 {
		t.Errorf("the loopback receiver got %d requests", n)
	}
	if f := notifications(t, reg, notify.ChannelWebhook, notify.OutcomeFailed); f != 1 {
		t.Errorf("failed notifications %g, want 1", f)
	}
}

func TestSharedEvaluatorSkipsDedicatedTenants(t *testing.T) {
	e := newEnv(t, allowPrivateWebhooks)
	ctx := ctxFor(t)
	if err := e.store.UpsertTenant(ctx, metastore.TenantRecord{ID: "initech", DisplayName: "initech", Plan: "team", Isolation: metastore.IsolationDedicated}); err != nil {
		t.Fatal(err)
	}
	hooks := notifytest.NewReceiver(t, 0, 0, "")
	webhook, err := notify.NewWebhook(deliverySecret, notify.WebhookOptions{AllowPrivateTargets: true})
	if err != nil {
		t.Fatal(err)
	}
	e.notifyingRule("acme", "shared-rule", hooks.URL+"/acme")
	e.notifyingRule("initech", "dedicated-rule", hooks.URL+"/initech")
	e.engine.setValue("acme", 20)
	// The shared engine has no data of initech; were it asked, the rule would fire.
	e.engine.setValue("initech", 20)

	shared := newTestEvaluator(t, EvaluatorOptions{Store: e.store, Engine: e.engine, Webhook: webhook})
	if err := shared.EvaluateOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if err := shared.notifications.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if called := e.engine.tenantsCalled(); !called["acme"] || called["initech"] {
		t.Errorf("the shared evaluator queried %v; want acme and not the Dedicated initech", called)
	}
	if alerts, err := e.store.ListAlerts(ctx, "initech", metastore.AlertListOptions{}); err != nil || len(alerts) != 0 {
		t.Errorf("initech's alerts after the shared evaluator: %+v, %v", alerts, err)
	}
	if got := hooks.Requests(); len(got) != 1 || !json.Valid(got[0].Body) {
		t.Fatalf("notifications after the shared evaluator: %d, want acme's only", len(got))
	}

	// initech's own evaluator (shoal query --tenant initech) evaluates its rule.
	dedicatedEngine := newFakeEngine()
	dedicatedEngine.setValue("initech", 20)
	own := newTestEvaluator(t, EvaluatorOptions{Store: e.store, Engine: dedicatedEngine, Webhook: webhook, Tenant: "initech"})
	if err := own.EvaluateOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if err := own.notifications.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if called := dedicatedEngine.tenantsCalled(); len(called) != 1 || !called["initech"] {
		t.Errorf("initech's evaluator queried %v", called)
	}
	if alerts, err := e.store.ListAlerts(ctx, "initech", metastore.AlertListOptions{}); err != nil || len(alerts) != 1 || alerts[0].State != "firing" {
		t.Errorf("initech's alerts after its own evaluator: %+v, %v", alerts, err)
	}
	if got := hooks.Requests(); len(got) != 2 || !json.Valid(got[1].Body) {
		t.Errorf("notifications after initech's evaluator: %d, want 2", len(got))
	}
}

// Run stops evaluating when its context ends and waits for the notifications in flight.
func TestAlertEvaluatorRunDrains(t *testing.T) {
	e := newEnv(t, allowPrivateWebhooks)
	rcv := notifytest.NewReceiver(t, 1, http.StatusBadGateway, "")
	webhook, err := notify.NewWebhook(deliverySecret, notify.WebhookOptions{AllowPrivateTargets: true})
	if err != nil {
		t.Fatal(err)
	}
	ev := newTestEvaluator(t, EvaluatorOptions{
		Store: e.store, Engine: e.engine, Webhook: webhook, Interval: time.Hour, DrainTimeout: 10 * time.Second,
		Retry: notify.RetryPolicy{Attempts: 3, InitialBackoff: 300 * time.Millisecond, MaxBackoff: 300 * time.Millisecond},
	})
	e.notifyingRule("acme", "drained", rcv.URL)
	e.engine.setValue("acme", 30)
	ctx, cancel := context.WithCancel(ctxFor(t))
	done := make(chan error, 1)
	go func() { done <- ev.Run(ctx) }()
	// The first pass runs at once; cancel while the notification waits to be retried.
	deadline := time.Now().Add(10 * time.Second)
	for len(rcv.Requests()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	if n := len(rcv.Requests()); n != 2 {
		t.Errorf("%d requests by the time Run returned; want 2: the retry drained before it did", n)
	}
}
