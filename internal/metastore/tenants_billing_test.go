package metastore

import (
	"errors"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/testbackends"
)

// TestTenantBilling runs the billing state's steps in order on one row: what the Tenant
// controller writes, what the query API reads back, and which writes are skipped.
func TestTenantBilling(t *testing.T) {
	db := newDB(t, testbackends.StartPostgres(t))
	ctx := ctxFor(t)
	// xmin is the transaction that last wrote the row: unchanged means not written.
	xmin := func() string {
		t.Helper()
		var x string
		if err := db.sql.QueryRow(ctx, "SELECT xmin::text FROM tenants WHERE id = 'acme'").Scan(&x); err != nil {
			t.Fatal(err)
		}
		return x
	}
	get := func() TenantRecord {
		t.Helper()
		rec, err := db.store.GetTenant(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}

	rec := TenantRecord{ID: "acme", Plan: "team", Isolation: IsolationShared, BillingCustomerID: "cus_1", BillingSubscriptionID: "sub_1"}
	if err := db.store.UpsertTenant(ctx, rec); err != nil {
		t.Fatal(err)
	}
	// A new row names its subscription at once; it has not been read yet.
	if got := get().Billing(); got != (TenantBilling{CustomerID: "cus_1", SubscriptionID: "sub_1"}) {
		t.Fatalf("created row: billing %+v", got)
	}
	// Afterwards the ids belong to SetTenantBilling: the metadata upsert leaves them.
	rec.BillingCustomerID, rec.BillingSubscriptionID = "", ""
	if err := db.store.UpsertTenant(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if got := get().Billing(); got.SubscriptionID != "sub_1" || got.CustomerID != "cus_1" {
		t.Fatalf("an upsert of an existing row changed its billing ids: %+v", got)
	}

	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	read := time.Date(2026, 3, 15, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))
	active := TenantBilling{CustomerID: "cus_1", SubscriptionID: "sub_1", Status: "active",
		PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0), CheckedAt: read}
	pastDue := active
	pastDue.Status, pastDue.CheckedAt = "past_due", read.Add(10*time.Minute)
	rereadPastDue := pastDue
	rereadPastDue.CheckedAt = pastDue.CheckedAt.Add(5 * time.Minute)
	noPeriod := TenantBilling{CustomerID: "cus_2", SubscriptionID: "sub_2", Status: "incomplete", CheckedAt: read.Add(time.Hour)}

	for _, step := range []struct {
		name        string
		set         TenantBilling
		write       bool // the row is written
		moveUpdated bool // updated_at moves: the subscription changed
	}{
		{"first read", active, true, true},
		{"the same read again", active, false, false},
		{"the status changed", pastDue, true, true},
		{"read again, unchanged", rereadPastDue, true, false},
		{"no period from the provider", noPeriod, true, true},
		{"billing turned off", TenantBilling{}, true, true},
		{"still off", TenantBilling{}, false, false},
	} {
		beforeX, before := xmin(), get()
		if err := db.store.SetTenantBilling(ctx, "acme", step.set); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		after := get()
		want := step.set
		want.CheckedAt = columnTimeValue(want.CheckedAt)
		if got := after.Billing(); !sameBilling(got, want) {
			t.Errorf("%s: stored %+v, want %+v", step.name, got, want)
		}
		if wrote := xmin() != beforeX; wrote != step.write {
			t.Errorf("%s: row written = %v, want %v", step.name, wrote, step.write)
		}
		if moved := !after.UpdatedAt.Equal(before.UpdatedAt); moved != step.moveUpdated {
			t.Errorf("%s: updated_at moved = %v, want %v", step.name, moved, step.moveUpdated)
		}
	}

	if err := db.store.SetTenantBilling(ctx, "globex", active); !errors.Is(err, ErrNotFound) {
		t.Errorf("billing of a tenant without a row: %v, want ErrNotFound", err)
	}
	if err := db.store.SetTenantBilling(ctx, "acme", TenantBilling{Status: "active", CheckedAt: read}); err == nil {
		t.Error("a status without a subscription id was stored")
	}
}

// columnTimeValue is t as the column gives it back.
func columnTimeValue(t time.Time) time.Time {
	if p := columnTime(t); p != nil {
		return *p
	}
	return time.Time{}
}

func sameBilling(a, b TenantBilling) bool {
	return a.CustomerID == b.CustomerID && a.SubscriptionID == b.SubscriptionID && a.Status == b.Status &&
		a.PeriodStart.Equal(b.PeriodStart) && a.PeriodEnd.Equal(b.PeriodEnd) && a.CheckedAt.Equal(b.CheckedAt) &&
		a.PeriodStart.IsZero() == b.PeriodStart.IsZero() && a.CheckedAt.IsZero() == b.CheckedAt.IsZero()
}
