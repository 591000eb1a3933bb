package controllers

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/billing"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/testenv"
)

// stripeState reads the subscription straight from stripe-mock, bypassing the test's
// status overrides, for what the row should hold.
func stripeState(t *testing.T, subscriptionID string) billing.State {
	t.Helper()
	bill, ok := billingStates.Subscriptions.(*billing.Billing)
	if !ok {
		t.Fatalf("the suite's billing is %T, not the Stripe adapter", billingStates.Subscriptions)
	}
	st, err := bill.Subscription(context.Background(), subscriptionID)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestBillingStateIsStoredOnTheRow: the reconciled tenant's row holds the subscription as
// stripe-mock has it and when it was read; a status change reaches the row, and while
// Stripe is down the row keeps the last state with its old read time.
func TestBillingStateIsStoredOnTheRow(t *testing.T) {
	ctx := context.Background()
	store := metastoreClient(t)
	if err := env.Client.Create(ctx, sharedTenant("billrow", "team")); err != nil {
		t.Fatal(err)
	}
	defer deleteTenant(t, "billrow")
	created := time.Now()
	got := waitCondition(t, "billrow", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)
	st := got.Status.Billing
	if st == nil || st.SubscriptionID == "" {
		t.Fatalf("status.billing = %+v", st)
	}
	want := stripeState(t, st.SubscriptionID)

	// rowBilling waits until the row's billing state passes ok.
	rowBilling := func(what string, ok func(metastore.TenantBilling) error) metastore.TenantBilling {
		t.Helper()
		var b metastore.TenantBilling
		testenv.Eventually(t, waitTimeout, func() error {
			rec, err := store.GetTenant(ctx, "billrow")
			if err != nil {
				return err
			}
			b = rec.Billing()
			if err := ok(b); err != nil {
				return fmt.Errorf("%s: row billing %+v: %w", what, b, err)
			}
			return nil
		})
		return b
	}

	first := rowBilling("after reconcile", func(b metastore.TenantBilling) error {
		switch {
		case b.CustomerID != st.CustomerID || b.SubscriptionID != st.SubscriptionID:
			return fmt.Errorf("ids, want %s/%s", st.CustomerID, st.SubscriptionID)
		case b.Status != st.State || b.Status != want.Status:
			return fmt.Errorf("status, want %q", want.Status)
		case !b.PeriodStart.Equal(want.CurrentPeriodStart) || !b.PeriodEnd.Equal(want.CurrentPeriodEnd):
			return fmt.Errorf("period, want %v - %v", want.CurrentPeriodStart, want.CurrentPeriodEnd)
		case b.CheckedAt.Before(created.Add(-time.Second)) || b.CheckedAt.After(time.Now()):
			return errors.New("checkedAt is not the time of this reconcile")
		}
		return nil
	})
	if want.CurrentPeriodEnd.IsZero() || st.CurrentPeriodEnd == nil || !st.CurrentPeriodEnd.Time.Equal(first.PeriodEnd) {
		t.Errorf("stripe-mock's period end %v, status %v, row %v: want all the same and set", want.CurrentPeriodEnd, st.CurrentPeriodEnd, first.PeriodEnd)
	}

	t.Run("a status change reaches the row", func(t *testing.T) {
		billingStates.forced.Store(string(got.UID), "past_due")
		defer billingStates.forced.Delete(string(got.UID))
		rowBilling("forced past_due", func(b metastore.TenantBilling) error {
			if b.Status != "past_due" || !b.CheckedAt.After(first.CheckedAt) || !b.PeriodEnd.Equal(first.PeriodEnd) {
				return errors.New("want past_due, a later read and the same period")
			}
			return nil
		})
	})

	t.Run("Stripe down keeps the last state and its read time", func(t *testing.T) {
		billingStates.down.Store(string(got.UID), fmt.Errorf("request to Stripe: %w", context.DeadlineExceeded))
		defer billingStates.down.Delete(string(got.UID))
		waitCondition(t, "billrow", v1alpha1.TenantBillingReady, metav1.ConditionFalse, v1alpha1.ReasonBackendUnavailable)
		before, err := store.GetTenant(ctx, "billrow")
		if err != nil {
			t.Fatal(err)
		}
		// Two resyncs: the phase is retried against the "down" Stripe meanwhile.
		time.Sleep(2 * testResync)
		after, err := store.GetTenant(ctx, "billrow")
		if err != nil {
			t.Fatal(err)
		}
		if a, b := after.Billing(), before.Billing(); a.Status == "" || !a.CheckedAt.Equal(b.CheckedAt) {
			t.Errorf("while Stripe is down the row went from %+v to %+v", b, a)
		}
	})
}

// TestBillingPhaseStoresOnTheRow calls the phase directly, on the suite's PostgreSQL and
// stripe-mock, for what the running controller passes through too quickly to observe: a
// tenant without a row yet, and billing turned off for a tenant billed before.
func TestBillingPhaseStoresOnTheRow(t *testing.T) {
	ctx := context.Background()
	store := metastoreClient(t)
	const id = "billphase"
	t.Cleanup(func() { _ = store.DeleteTenant(context.Background(), id) })
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	tenant := sharedTenant(id, "team")
	tenant.UID = types.UID("billphase-uid")
	r := &TenantReconciler{Platform: reconciler.Platform, Backends: Backends{Metastore: store, Billing: reconciler.Backends.Billing},
		Now: func() time.Time { return now }}
	scope := &tenantScope{tenant: tenant}

	res, err := r.reconcileBilling(ctx, scope)
	if err != nil || res.RequeueAfter != billingRowRetry {
		t.Fatalf("without a row: %+v, %v; want a requeue after %v", res, err, billingRowRetry)
	}
	if tenant.Status.Billing == nil || tenant.Status.Billing.SubscriptionID == "" {
		t.Fatalf("status.billing = %+v", tenant.Status.Billing)
	}
	if err := store.UpsertTenant(ctx, metastore.TenantRecord{ID: id, Plan: "team", Isolation: metastore.IsolationShared}); err != nil {
		t.Fatal(err)
	}
	if res, err := r.reconcileBilling(ctx, scope); err != nil || res.RequeueAfter != 0 {
		t.Fatalf("with a row: %+v, %v", res, err)
	}
	rec, err := store.GetTenant(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if b := rec.Billing(); b.SubscriptionID != tenant.Status.Billing.SubscriptionID || b.Status != tenant.Status.Billing.State || !b.CheckedAt.Equal(now) {
		t.Fatalf("row billing %+v, want status.billing %+v read at %v", b, tenant.Status.Billing, now)
	}

	off, err := billing.New(billing.Config{})
	if err != nil || off.Enabled() {
		t.Fatalf("billing without a key: enabled=%v, %v", off.Enabled(), err)
	}
	r.Backends.Billing = off
	if _, err := r.reconcileBilling(ctx, scope); err != nil {
		t.Fatal(err)
	}
	if rec, err = store.GetTenant(ctx, id); err != nil || rec.Billing() != (metastore.TenantBilling{}) {
		t.Errorf("billing off: row billing %+v (%v), want none", rec.Billing(), err)
	}
}
