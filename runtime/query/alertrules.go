package query

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/mail"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/internal/httpapi"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/runtime/query/metricquery"
	"github.com/shoal-dev/shoal/runtime/query/notify"
)

// Bounds of a rule's notifications.
const (
	maxWebhooks = 5
	maxEmails   = 10
)

// Notify says where a rule's transitions are sent.
type Notify struct {
	// Webhooks are URLs that receive a signed JSON POST.
	Webhooks []string `json:"webhooks,omitempty"`
	// Emails are addresses that receive an email through SendGrid.
	Emails []string `json:"emails,omitempty"`
}

// ruleDefinition is what the metastore's alert rule query column holds: the metric query
// and the notifications, both defined by this API.
type ruleDefinition struct {
	Query  StoredQuery `json:"query"`
	Notify Notify      `json:"notify"`
}

func decodeRuleDefinition(raw json.RawMessage) (ruleDefinition, error) {
	var d ruleDefinition
	if err := json.Unmarshal(raw, &d); err != nil {
		return ruleDefinition{}, fmt.Errorf("alert rule definition: %w", err)
	}
	return d, nil
}

// parse checks the rule's query over its window ending at now: one total, so neither an
// interval nor groupBy.
func (d ruleDefinition) parse(window time.Duration, now time.Time) (metricquery.Query, error) {
	var errs metricquery.Errors
	if d.Query.Interval != "" {
		errs = append(errs, metricquery.ParamError{Param: metricquery.ParamInterval, Reason: "alert rules compare one total over the window with the threshold: leave interval out"})
	}
	if len(d.Query.GroupBy) > 0 {
		errs = append(errs, metricquery.ParamError{Param: metricquery.ParamGroupBy, Reason: "alert rules compare one total with the threshold: filter instead of grouping"})
	}
	if window <= 0 {
		window = metastore.MinAlertWindow // the store reports the window itself
	}
	q, err := d.Query.Parse(now.Add(-window).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), now)
	var qerrs metricquery.Errors
	if errors.As(err, &qerrs) {
		errs = append(errs, qerrs...)
	} else if err != nil {
		return q, err
	}
	if len(errs) > 0 {
		return q, errs
	}
	return q, nil
}

// alertRuleBody is what POST and PUT take.
type alertRuleBody struct {
	Name      string          `json:"name"`
	Query     json.RawMessage `json:"query"`
	Condition struct {
		Operator  string  `json:"operator"`
		Threshold float64 `json:"threshold"`
		// Window is a Go duration: 5m, 1h.
		Window string `json:"window"`
	} `json:"condition"`
	Enabled *bool  `json:"enabled,omitempty"`
	Notify  Notify `json:"notify"`
}

// spec checks the body and returns the store's spec, or the invalid parameters.
func (s *Server) alertRuleSpec(b alertRuleBody) (metastore.AlertRuleSpec, []httpapi.InvalidParam) {
	var bad []httpapi.InvalidParam
	window, err := time.ParseDuration(b.Condition.Window)
	if err != nil {
		bad = append(bad, httpapi.InvalidParam{Name: "condition.window", Reason: fmt.Sprintf("%q is not a duration such as 5m or 1h", b.Condition.Window)})
	}
	def := ruleDefinition{Notify: b.Notify}
	if len(b.Query) == 0 {
		bad = append(bad, httpapi.InvalidParam{Name: "query", Reason: "required: the metrics query whose total is compared with the threshold"})
	} else if def.Query, err = decodeStoredQuery(b.Query); err == nil {
		_, err = def.parse(window, s.opts.Now())
	}
	var errs metricquery.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			name := "query"
			if e.Param != "query" {
				name += "." + e.Param
			}
			bad = append(bad, httpapi.InvalidParam{Name: name, Reason: e.Reason})
		}
	}
	bad = append(bad, s.checkNotify(b.Notify)...)
	raw, _ := json.Marshal(def) // plain strings and numbers: cannot fail
	enabled := b.Enabled == nil || *b.Enabled
	return metastore.AlertRuleSpec{
		Name: b.Name, Query: raw, Enabled: enabled,
		Condition: metastore.AlertCondition{Operator: b.Condition.Operator, Threshold: b.Condition.Threshold, Window: metav1.Duration{Duration: window}},
	}, bad
}

func (s *Server) checkNotify(n Notify) []httpapi.InvalidParam {
	var bad []httpapi.InvalidParam
	switch {
	case len(n.Webhooks) > 0 && !s.opts.WebhooksEnabled:
		bad = append(bad, httpapi.InvalidParam{Name: "notify.webhooks", Reason: "webhook notifications are not configured on this installation (query.alerts.webhookSigningSecretFile)"})
	case len(n.Webhooks) > maxWebhooks:
		bad = append(bad, httpapi.InvalidParam{Name: "notify.webhooks", Reason: fmt.Sprintf("%d webhooks; at most %d", len(n.Webhooks), maxWebhooks)})
	}
	allowPrivate := s.opts.Platform.Query.Alerts.AllowPrivateWebhookTargets
	for i, raw := range n.Webhooks {
		if err := notify.CheckURL(raw, allowPrivate); err != nil {
			bad = append(bad, httpapi.InvalidParam{Name: "notify.webhooks[" + strconv.Itoa(i) + "]", Reason: err.Error()})
		}
	}
	switch {
	case len(n.Emails) > 0 && !s.opts.EmailEnabled:
		bad = append(bad, httpapi.InvalidParam{Name: "notify.emails", Reason: "email notifications are not configured on this installation (query.alerts.sendgrid)"})
	case len(n.Emails) > maxEmails:
		bad = append(bad, httpapi.InvalidParam{Name: "notify.emails", Reason: fmt.Sprintf("%d addresses; at most %d", len(n.Emails), maxEmails)})
	}
	for i, e := range n.Emails {
		if a, err := mail.ParseAddress(e); err != nil || a.Address != e {
			bad = append(bad, httpapi.InvalidParam{Name: "notify.emails[" + strconv.Itoa(i) + "]", Reason: "not an email address"})
		}
	}
	return bad
}

// alertRuleJSON is an alert rule as the API answers it.
type alertRuleJSON struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Query     json.RawMessage `json:"query"`
	Condition struct {
		Operator  string  `json:"operator"`
		Threshold float64 `json:"threshold"`
		Window    string  `json:"window"`
	} `json:"condition"`
	Enabled   bool      `json:"enabled"`
	Notify    Notify    `json:"notify"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func alertRuleOut(r metastore.AlertRule) alertRuleJSON {
	out := alertRuleJSON{ID: r.ID, Name: r.Name, Enabled: r.Enabled, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Query: r.Query}
	if def, err := decodeRuleDefinition(r.Query); err == nil {
		out.Query, _ = json.Marshal(def.Query)
		out.Notify = def.Notify
	}
	out.Condition.Operator, out.Condition.Threshold = r.Condition.Operator, r.Condition.Threshold
	out.Condition.Window = r.Condition.Window.Duration.String()
	return out
}

func (s *Server) handleListAlertRules(w http.ResponseWriter, r *http.Request) {
	opts, ok := pageOptions(w, r, metastore.MaxPageSize)
	if !ok {
		return
	}
	pg, err := s.store.ListAlertRules(r.Context(), principalOf(r).TenantID, opts)
	if err != nil {
		s.fail(w, r, "alert rule", err)
		return
	}
	writeJSON(w, http.StatusOK, page[alertRuleJSON]{Items: mapItems(pg.Items, alertRuleOut), Next: pg.Next})
}

func (s *Server) handleCreateAlertRule(w http.ResponseWriter, r *http.Request) {
	var body alertRuleBody
	if !decodeBody(w, r, &body) {
		return
	}
	spec, bad := s.alertRuleSpec(body)
	if len(bad) > 0 {
		badRequest(w, r, "invalid alert rule", bad...)
		return
	}
	rule, err := s.store.CreateAlertRule(r.Context(), principalOf(r).TenantID, spec)
	if err != nil {
		s.fail(w, r, "alert rule", err)
		return
	}
	w.Header().Set("Location", APIPrefix+"/alert-rules/"+rule.ID)
	writeJSON(w, http.StatusCreated, alertRuleOut(rule))
}

func (s *Server) handleGetAlertRule(w http.ResponseWriter, r *http.Request) {
	rule, err := s.store.GetAlertRule(r.Context(), principalOf(r).TenantID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, "alert rule "+r.PathValue("id"), err)
		return
	}
	writeJSON(w, http.StatusOK, alertRuleOut(rule))
}

func (s *Server) handleUpdateAlertRule(w http.ResponseWriter, r *http.Request) {
	var body alertRuleBody
	if !decodeBody(w, r, &body) {
		return
	}
	spec, bad := s.alertRuleSpec(body)
	if len(bad) > 0 {
		badRequest(w, r, "invalid alert rule", bad...)
		return
	}
	rule, err := s.store.UpdateAlertRule(r.Context(), principalOf(r).TenantID, r.PathValue("id"), spec)
	if err != nil {
		s.fail(w, r, "alert rule "+r.PathValue("id"), err)
		return
	}
	writeJSON(w, http.StatusOK, alertRuleOut(rule))
}

func (s *Server) handleDeleteAlertRule(w http.ResponseWriter, r *http.Request) {
	if err := s.store.DeleteAlertRule(r.Context(), principalOf(r).TenantID, r.PathValue("id")); err != nil {
		s.fail(w, r, "alert rule "+r.PathValue("id"), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// alertJSON is one firing of a rule.
type alertJSON struct {
	ID         string     `json:"id"`
	RuleID     string     `json:"ruleId"`
	RuleName   string     `json:"ruleName"`
	State      string     `json:"state"`
	Value      *float64   `json:"value,omitempty"`
	FiredAt    time.Time  `json:"firedAt"`
	ResolvedAt *time.Time `json:"resolvedAt,omitempty"`
}

func alertOut(a metastore.Alert) alertJSON {
	out := alertJSON{ID: a.ID, RuleID: a.RuleID, RuleName: a.RuleName, State: a.State, FiredAt: a.FiredAt, ResolvedAt: a.ResolvedAt}
	if !math.IsNaN(a.Value) { // NaN is "no value"
		v := a.Value
		out.Value = &v
	}
	return out
}

func (s *Server) handleListAlerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var opts metastore.AlertListOptions
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > metastore.MaxAlertsLimit {
			badRequest(w, r, "invalid limit", httpapi.InvalidParam{Name: "limit", Reason: fmt.Sprintf("%q is not a whole number from 1 to %d", l, metastore.MaxAlertsLimit)})
			return
		}
		opts.Limit = n
	}
	if since := q.Get("resolvedSince"); since != "" {
		t, err := time.Parse(time.RFC3339, since)
		if err != nil {
			badRequest(w, r, "invalid resolvedSince", httpapi.InvalidParam{Name: "resolvedSince", Reason: "not an RFC 3339 time"})
			return
		}
		opts.ResolvedSince = t
	}
	list, err := s.store.ListAlerts(r.Context(), principalOf(r).TenantID, opts)
	if err != nil {
		s.fail(w, r, "alert", err)
		return
	}
	writeJSON(w, http.StatusOK, page[alertJSON]{Items: mapItems(list, alertOut)})
}
