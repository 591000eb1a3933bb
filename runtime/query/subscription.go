package query

import (
	"net/http"
	"time"

	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/metastore"
)

// subscriptionJSON is GET /tenants/me/subscription.
type subscriptionJSON struct {
	Tenant string `json:"tenant"`
	Plan   struct {
		Name        string `json:"name"`
		DisplayName string `json:"displayName,omitempty"`
	} `json:"plan"`
	// State is whether the platform serves the tenant: active or suspended.
	State           string      `json:"state"`
	SuspendedReason string      `json:"suspendedReason,omitempty"`
	Billing         billingJSON `json:"billing"`
	Period          periodJSON  `json:"period"`
	Limits          *limitsJSON `json:"limits,omitempty"`
	Usage           usageJSON   `json:"usage"`
}

// billingJSON is the subscription as the Tenant controller last read it from the billing
// provider and stored on the tenant's row: this server never asks the provider, so it
// needs no key for it.
type billingJSON struct {
	// Enabled is whether the tenant has a subscription.
	Enabled bool `json:"enabled"`
	// Status is the subscription's status at the billing provider, SubscriptionPending
	// before the operator first read it, or BillingDisabled.
	Status string `json:"status"`
	// CheckedAt is when the operator last read the subscription; absent while pending or
	// disabled. A reader judges the status's freshness by it: the operator rereads every
	// resync interval, and an old time means it could not.
	CheckedAt *time.Time `json:"checkedAt,omitempty"`
}

// Billing statuses that are not the provider's.
const (
	// SubscriptionPending: the tenant has a subscription whose state the operator has
	// not stored yet.
	SubscriptionPending = "pending"
	// BillingDisabled: the tenant has no subscription; billing is off.
	BillingDisabled = "billing disabled"
)

// billingOf reads the billing state of the tenant's row, and the billing period when the
// row holds one (start before end).
func billingOf(t metastore.TenantRecord) (billingJSON, *periodJSON) {
	b := t.Billing()
	switch {
	case b.SubscriptionID == "":
		return billingJSON{Status: BillingDisabled}, nil
	case b.CheckedAt.IsZero() || b.Status == "":
		return billingJSON{Enabled: true, Status: SubscriptionPending}, nil
	}
	checked := b.CheckedAt.UTC()
	out := billingJSON{Enabled: true, Status: b.Status, CheckedAt: &checked}
	if b.PeriodStart.IsZero() || !b.PeriodEnd.After(b.PeriodStart) {
		return out, nil
	}
	return out, &periodJSON{Start: b.PeriodStart.UTC(), End: b.PeriodEnd.UTC(), Source: "billing"}
}

type periodJSON struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Source is "billing" (the subscription's period) or "calendar-month" (UTC) when
	// billing is off or did not say.
	Source string `json:"source"`
}

type limitsJSON struct {
	Ingest config.IngestLimits `json:"ingest"`
	Quota  struct {
		CPU     string `json:"cpu"`
		Memory  string `json:"memory"`
		Pods    int64  `json:"pods"`
		Storage string `json:"storage"`
	} `json:"quota"`
	// RequestsPerSecond and Burst are this API's rate limit.
	RequestsPerSecond float64 `json:"apiRequestsPerSecond"`
	Burst             int     `json:"apiBurst"`
}

type usageJSON struct {
	// EventsIngested counts events received in the period so far; absent when it could
	// not be counted (Error says why).
	EventsIngested *uint64   `json:"eventsIngested,omitempty"`
	From           time.Time `json:"from"`
	To             time.Time `json:"to"`
	Error          string    `json:"error,omitempty"`
}

func (s *Server) handleSubscription(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principalOf(r)
	t, err := s.store.GetTenant(ctx, p.TenantID)
	if err != nil {
		s.fail(w, r, "tenant", err)
		return
	}
	now := s.opts.Now().UTC()
	var out subscriptionJSON
	out.Tenant = t.ID
	out.Plan.Name = t.Plan
	out.State = "active"
	if t.Suspended {
		out.State, out.SuspendedReason = "suspended", t.SuspendedReason
	}
	monthStart := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	out.Period = periodJSON{Start: monthStart, End: monthStart.AddDate(0, 1, 0), Source: "calendar-month"}
	var period *periodJSON
	if out.Billing, period = billingOf(t); period != nil {
		out.Period = *period
	}
	if plan, ok := s.opts.Platform.Plan(t.Plan); ok {
		out.Plan.DisplayName = plan.DisplayName
		l := &limitsJSON{Ingest: plan.Ingest, RequestsPerSecond: s.rate.PerSecond, Burst: s.rate.Burst}
		l.Quota.CPU, l.Quota.Memory, l.Quota.Storage = plan.Quota.CPU.String(), plan.Quota.Memory.String(), plan.Quota.Storage.String()
		l.Quota.Pods = plan.Quota.Pods
		out.Limits = l
	}
	out.Usage = usageJSON{From: out.Period.Start, To: now}
	if now.After(out.Period.End) {
		out.Usage.To = out.Period.End
	}
	if s.opts.Usage == nil {
		out.Usage.Error = "usage is not counted by this server"
	} else {
		n, err := s.opts.Usage.EventsIngested(ctx, t.ID, out.Usage.From, out.Usage.To)
		if err != nil {
			s.log.WarnContext(ctx, "counting usage failed", "tenant", t.ID, "err", err)
			out.Usage.Error = "usage could not be counted now"
		} else {
			out.Usage.EventsIngested = &n
		}
	}
	writeJSON(w, http.StatusOK, out)
}
