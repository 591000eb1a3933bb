package metastore

import (
	"testing"

	"github.com/shoal-dev/shoal/internal/testbackends"
)

func TestTenantBillingIDs(t *testing.T) {
	db := newDB(t, testbackends.StartPostgres(t))
	ctx := ctxFor(t)
	rec := TenantRecord{ID: "acme", Plan: "team", Isolation: IsolationShared}
	if err := db.store.UpsertTenant(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if got, err := db.store.GetTenant(ctx, "acme"); err != nil || got.BillingCustomerID != "" || got.BillingSubscriptionID != "" {
		t.Fatalf("before billing: %+v, %v", got, err)
	}
	rec.BillingCustomerID, rec.BillingSubscriptionID = "cus_1", "sub_1"
	if err := db.store.UpsertTenant(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, err := db.store.GetTenant(ctx, "acme")
	if err != nil || got.BillingCustomerID != "cus_1" || got.BillingSubscriptionID != "sub_1" {
		t.Fatalf("after billing: %+v, %v", got, err)
	}
	// Nothing changed: updated_at stays.
	if err := db.store.UpsertTenant(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if again, err := db.store.GetTenant(ctx, "acme"); err != nil || !again.UpdatedAt.Equal(got.UpdatedAt) {
		t.Errorf("an unchanged upsert moved updated_at: %v -> %v (%v)", got.UpdatedAt, again.UpdatedAt, err)
	}
}
