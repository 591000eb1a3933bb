package controllers

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/billing"
)

// reconcileBilling keeps the tenant's Stripe subscription on its plan's price and records
// its state. A Stripe outage fails only this phase: the tenant is served meanwhile, and
// the last known state stays in the status.
func (r *TenantReconciler) reconcileBilling(ctx context.Context, s *tenantScope) (reconcile.Result, error) {
	t := s.tenant
	if !r.billingEnabled() {
		setBillingReadyCondition(t, false, nil)
		return reconcile.Result{}, nil
	}
	if r.checkedRecently(t, v1alpha1.TenantBillingReady, "") {
		return reconcile.Result{}, nil
	}
	state, err := r.Backends.Billing.EnsureSubscription(ctx, customer(t), t.Spec.Plan, billingIDs(t))
	err = fromBackend(backendStripe, err)
	if err == nil {
		t.Status.Billing = billingStatus(state)
	}
	setBillingReadyCondition(t, true, err)
	if err == nil {
		r.checkPassed(t, v1alpha1.TenantBillingReady, "")
	}
	return reconcile.Result{}, err
}

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

// billingIDs are the Stripe objects the tenant's status records; empty before billing
// created them.
func billingIDs(t *v1alpha1.Tenant) billing.IDs {
	if b := t.Status.Billing; b != nil {
		return billing.IDs{CustomerID: b.CustomerID, SubscriptionID: b.SubscriptionID}
	}
	return billing.IDs{}
}
