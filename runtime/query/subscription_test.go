package query

import (
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/auth"
	"github.com/shoal-dev/shoal/internal/metastore"
)

func TestBillingOf(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, 1, 0)
	read := time.Date(2026, 3, 15, 11, 55, 0, 0, time.FixedZone("CET", 3600))
	row := func(b metastore.TenantBilling) metastore.TenantRecord {
		return metastore.TenantRecord{ID: "acme", BillingCustomerID: b.CustomerID, BillingSubscriptionID: b.SubscriptionID,
			BillingStatus: b.Status, BillingPeriodStart: b.PeriodStart, BillingPeriodEnd: b.PeriodEnd, BillingCheckedAt: b.CheckedAt}
	}
	for _, tc := range []struct {
		name       string
		billing    metastore.TenantBilling
		enabled    bool
		status     string
		checked    bool
		wantPeriod bool
	}{
		{"no subscription", metastore.TenantBilling{}, false, BillingDisabled, false, false},
		{"subscription not read yet", metastore.TenantBilling{CustomerID: "cus_1", SubscriptionID: "sub_1"}, true, SubscriptionPending, false, false},
		{"read", metastore.TenantBilling{SubscriptionID: "sub_1", Status: "active", PeriodStart: start, PeriodEnd: end, CheckedAt: read}, true, "active", true, true},
		{"read, no period", metastore.TenantBilling{SubscriptionID: "sub_1", Status: "trialing", CheckedAt: read}, true, "trialing", true, false},
		{"read, period ends before it starts", metastore.TenantBilling{SubscriptionID: "sub_1", Status: "active", PeriodStart: end, PeriodEnd: start, CheckedAt: read}, true, "active", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, period := billingOf(row(tc.billing))
			if got.Enabled != tc.enabled || got.Status != tc.status {
				t.Errorf("billing %+v, want enabled=%v status %q", got, tc.enabled, tc.status)
			}
			switch {
			case tc.checked && (got.CheckedAt == nil || !got.CheckedAt.Equal(read) || got.CheckedAt.Location() != time.UTC):
				t.Errorf("checkedAt %v, want %v in UTC", got.CheckedAt, read)
			case !tc.checked && got.CheckedAt != nil:
				t.Errorf("checkedAt %v, want none", got.CheckedAt)
			}
			switch {
			case tc.wantPeriod && (period == nil || !period.Start.Equal(start) || !period.End.Equal(end) || period.Source != "billing"):
				t.Errorf("period %+v, want the billing period %v - %v", period, start, end)
			case !tc.wantPeriod && period != nil:
				t.Errorf("period %+v, want none (the calendar month)", period)
			}
		})
	}
}

// TestSubscriptionFromTheRow: the endpoint answers what the Tenant controller stored on
// the tenant's row, with no billing provider configured on this server.
func TestSubscriptionFromTheRow(t *testing.T) {
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	e := newEnv(t, func(o *Options) { o.Now = func() time.Time { return now } })
	ctx := ctxFor(t)
	read := func(tenant string) subscriptionJSON {
		t.Helper()
		a := e.do("GET", "/api/v1/tenants/me/subscription", e.token(tenant, auth.RoleOwner), nil)
		var got subscriptionJSON
		a.json(t, &got)
		if a.status != 200 {
			t.Fatalf("%s: %d %s", tenant, a.status, a.body)
		}
		return got
	}

	if err := e.store.SetTenantBilling(ctx, "acme", metastore.TenantBilling{CustomerID: "cus_acme", SubscriptionID: "sub_acme"}); err != nil {
		t.Fatal(err)
	}
	if got := read("acme"); !got.Billing.Enabled || got.Billing.Status != SubscriptionPending || got.Billing.CheckedAt != nil || got.Period.Source != "calendar-month" {
		t.Errorf("subscription not read yet: billing %+v, period %+v", got.Billing, got.Period)
	}

	start, end := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 10, 0, 0, 0, 0, time.UTC)
	checked := now.Add(-3 * time.Minute)
	if err := e.store.SetTenantBilling(ctx, "acme", metastore.TenantBilling{CustomerID: "cus_acme", SubscriptionID: "sub_acme",
		Status: "past_due", PeriodStart: start, PeriodEnd: end, CheckedAt: checked}); err != nil {
		t.Fatal(err)
	}
	got := read("acme")
	if !got.Billing.Enabled || got.Billing.Status != "past_due" || got.Billing.CheckedAt == nil || !got.Billing.CheckedAt.Equal(checked) {
		t.Errorf("stored subscription: billing %+v, want past_due checked at %v", got.Billing, checked)
	}
	if got.Period.Source != "billing" || !got.Period.Start.Equal(start) || !got.Period.End.Equal(end) {
		t.Errorf("period %+v, want the stored billing period", got.Period)
	}
	if !got.Usage.From.Equal(start) || !got.Usage.To.Equal(now) || got.Usage.EventsIngested == nil {
		t.Errorf("usage %+v, want counted from the billing period's start to now", got.Usage)
	}

	// Billing off (the operator cleared the row) reads as today.
	if err := e.store.SetTenantBilling(ctx, "acme", metastore.TenantBilling{}); err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"acme", "globex"} {
		if got := read(tenant); got.Billing.Enabled || got.Billing.Status != BillingDisabled || got.Billing.CheckedAt != nil || got.Period.Source != "calendar-month" {
			t.Errorf("%s without billing: billing %+v, period %+v", tenant, got.Billing, got.Period)
		}
	}
}
