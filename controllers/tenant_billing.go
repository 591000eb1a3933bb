package controllers

import (
	"context"
	"errors"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/billing"
	"github.com/shoal-dev/shoal/internal/metastore"
)

// reconcileBilling keeps the tenant's Stripe subscription on its plan's price and records
// its state in the status and, for the query API, on the tenant's metastore row: the
// operator is the only component that talks to Stripe. A Stripe outage fails only this
// phase: the tenant is served meanwhile, and the last known state stays in both places,
// the row saying when it was read.
func (r *TenantReconciler) reconcileBilling(ctx context.Context, s *tenantScope) (reconcile.Result, error) {
	t := s.tenant
	if !r.billingEnabled() {
		setBillingReadyCondition(t, false, nil)
		return reconcile.Result{}, r.clearBilling(ctx, t)
	}
	if r.checkedRecently(t, v1alpha1.TenantBillingReady, "") {
		return reconcile.Result{}, nil
	}
	state, err := r.Backends.Billing.EnsureSubscription(ctx, customer(t), t.Spec.Plan, billingIDs(t))
	err = fromBackend(backendStripe, err)
	stored := false
	if err == nil {
		t.Status.Billing = billingStatus(state)
		stored, err = r.storeBilling(ctx, t, billingRecord(state, r.now()))
	}
	setBillingReadyCondition(t, true, err)
	switch {
	case err != nil:
		return reconcile.Result{}, err
	case !stored:
		// The row is created by the metadata phase, after this one, on a new tenant's
		// first reconcile: the state is stored on the next.
		return reconcile.Result{RequeueAfter: billingRowRetry}, nil
	}
	r.checkPassed(t, v1alpha1.TenantBillingReady, "")
	return reconcile.Result{}, nil
}

// billingRowRetry is how soon a tenant whose row did not exist yet stores its billing
// state.
const billingRowRetry = time.Second

// storeBilling writes the tenant's billing state on its row; false when the row does not
// exist yet.
func (r *TenantReconciler) storeBilling(ctx context.Context, t *v1alpha1.Tenant, b metastore.TenantBilling) (bool, error) {
	err := r.Backends.Metastore.SetTenantBilling(ctx, t.Name, b)
	if errors.Is(err, metastore.ErrNotFound) {
		return false, nil
	}
	return err == nil, fromBackend(backendMetastore, err)
}

// clearBilling empties the billing state on the row while billing is off, so the query
// API says so even for a tenant billed before. The check is skipped like a backend's.
func (r *TenantReconciler) clearBilling(ctx context.Context, t *v1alpha1.Tenant) error {
	if r.checkedRecently(t, v1alpha1.TenantBillingReady, billingOff) {
		return nil
	}
	// No row yet is nothing to clear.
	if _, err := r.storeBilling(ctx, t, metastore.TenantBilling{}); err != nil {
		return err
	}
	r.checkPassed(t, v1alpha1.TenantBillingReady, billingOff)
	return nil
}

// billingOff is the billing check's detail while billing is off, so turning billing on
// checks at once.
const billingOff = "off"

func (r *TenantReconciler) billingEnabled() bool {
	return r.Backends.Billing != nil && r.Backends.Billing.Enabled()
}

// customer is who the tenant's subscription bills. The UID tells apart a tenant deleted
// and created again under the same name.
func customer(t *v1alpha1.Tenant) billing.Customer {
	c := billing.Customer{TenantID: string(t.UID), Name: t.Spec.DisplayName}
	if len(t.Spec.Owners) > 0 {
		c.Email = t.Spec.Owners[0]
	}
	return c
}

func billingStatus(s billing.State) *v1alpha1.BillingStatus {
	b := &v1alpha1.BillingStatus{
		CustomerID:     s.CustomerID,
		SubscriptionID: s.SubscriptionID,
		State:          s.Status,
		PriceID:        s.PriceID,
	}
	if !s.CurrentPeriodEnd.IsZero() {
		end := metav1.NewTime(s.CurrentPeriodEnd.UTC().Truncate(time.Second))
		b.CurrentPeriodEnd = &end
	}
	return b
}

// billingRecord is what the metastore row keeps of state, read at checkedAt.
func billingRecord(s billing.State, checkedAt time.Time) metastore.TenantBilling {
	return metastore.TenantBilling{
		CustomerID:     s.CustomerID,
		SubscriptionID: s.SubscriptionID,
		Status:         s.Status,
		PeriodStart:    s.CurrentPeriodStart,
		PeriodEnd:      s.CurrentPeriodEnd,
		CheckedAt:      checkedAt,
	}
}

// billingIDs are the Stripe objects the tenant's status records; empty before billing
// created them.
func billingIDs(t *v1alpha1.Tenant) billing.IDs {
	if b := t.Status.Billing; b != nil {
		return billing.IDs{CustomerID: b.CustomerID, SubscriptionID: b.SubscriptionID}
	}
	return billing.IDs{}
}
