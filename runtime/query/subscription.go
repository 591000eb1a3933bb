package query

import (
	"context"
	"net/http"
	"time"

	"github.com/shoal-dev/shoal/internal/billing"
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

type billingJSON struct {
	Enabled bool `json:"enabled"`
	// Status is the subscription's status at the billing provider, "billing disabled"
	// when billing is off, or "unavailable" when the provider could not be reached.
	Status string `json:"status"`
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
	out.Billing = billingJSON{Status: "billing disabled"}
	if s.opts.Subscriptions != nil {
		out.Billing.Enabled = true
		sub, err := s.opts.Subscriptions.Subscription(ctx, t.ID)
		switch {
		case err != nil:
			s.log.WarnContext(ctx, "reading the subscription failed", "tenant", t.ID, "err", err)
			out.Billing.Status = "unavailable"
		default:
			out.Billing.Status = sub.Status
			if !sub.PeriodStart.IsZero() && sub.PeriodEnd.After(sub.PeriodStart) {
				out.Period = periodJSON{Start: sub.PeriodStart.UTC(), End: sub.PeriodEnd.UTC(), Source: "billing"}
			}
		}
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

// TenantBillingIDs reads the Stripe ids the Tenant controller stored on a tenant's row;
// *metastore.Store implements it.
type TenantBillingIDs interface {
	GetTenant(ctx context.Context, id string) (metastore.TenantRecord, error)
}

// SubscriptionSource reads one subscription from the billing provider; *billing.Billing
// implements it.
type SubscriptionSource interface {
	Subscription(ctx context.Context, subscriptionID string) (billing.State, error)
}

// StripeSubscriptions is the SubscriptionReader over Stripe: the tenant's subscription
// id from the metastore, its status and period from Stripe.
type StripeSubscriptions struct {
	Tenants TenantBillingIDs
	Billing SubscriptionSource
}

// SubscriptionPending is the status of a tenant whose subscription billing has not
// created yet.
const SubscriptionPending = "pending"

// Subscription reads the tenant's subscription.
func (s StripeSubscriptions) Subscription(ctx context.Context, tenantID string) (Subscription, error) {
	t, err := s.Tenants.GetTenant(ctx, tenantID)
	if err != nil {
		return Subscription{}, err
	}
	if t.BillingSubscriptionID == "" {
		return Subscription{Status: SubscriptionPending}, nil
	}
	st, err := s.Billing.Subscription(ctx, t.BillingSubscriptionID)
	if err != nil {
		return Subscription{}, err
	}
	return Subscription{Status: st.Status, PeriodStart: st.CurrentPeriodStart, PeriodEnd: st.CurrentPeriodEnd}, nil
}
