package controllers

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/controllers/objects"
	"github.com/shoal-dev/shoal/internal/billing"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/naming"
)

// reconcileMetadata stores the tenant's row (with its suspension), its owners and the hash
// of its ingest key in the metastore, and the key itself in the tenant's Secret. A
// deleted Secret gets a new key, and the old one is revoked.
func (r *TenantReconciler) reconcileMetadata(ctx context.Context, s *tenantScope) (reconcile.Result, error) {
	t := s.tenant
	susp := suspensionOf(t)
	// The key Secret is read from the cache: a deleted one must be replaced at once.
	data, err := r.secretData(ctx, t, naming.IngestKeySecret(t.Name))
	if err != nil {
		setMetadataReadyCondition(t, err)
		return reconcile.Result{}, err
	}
	ids := billingIDs(t)
	// The subscription is part of what is checked: the row follows it once billing
	// created it.
	if data != nil && r.checkedRecently(t, v1alpha1.TenantMetadataReady, susp.reason+"/"+ids.SubscriptionID) {
		return reconcile.Result{}, nil
	}
	store := r.Backends.Metastore
	err = fromBackend(backendMetastore, store.UpsertTenant(ctx, metastore.TenantRecord{
		ID:              t.Name,
		DisplayName:     t.Spec.DisplayName,
		Plan:            t.Spec.Plan,
		Isolation:       string(isolation(t)),
		Suspended:       susp.suspended,
		SuspendedReason: susp.message,
		LakeClass:       string(lakeClass(t)),
		// Those billing has recorded in the status so far; a later reconcile stores new ones.
		BillingCustomerID:     ids.CustomerID,
		BillingSubscriptionID: ids.SubscriptionID,
	}))
	if err == nil {
		setSuspendedCondition(t, susp)
		err = fromBackend(backendMetastore, store.EnsureOwners(ctx, t.Name, t.Spec.Owners))
	}
	if err == nil {
		err = r.ensureIngestKey(ctx, t, data)
	}
	if err == nil {
		t.Status.IngestKeySecret = naming.IngestKeySecret(t.Name)
	}
	setMetadataReadyCondition(t, err)
	if err == nil {
		r.checkPassed(t, v1alpha1.TenantMetadataReady, susp.reason)
	}
	return reconcile.Result{}, err
}

// ensureIngestKey keeps the Secret's key when the metastore can adopt it, and otherwise
// writes the new key the metastore minted.
func (r *TenantReconciler) ensureIngestKey(ctx context.Context, t *v1alpha1.Tenant, data map[string][]byte) error {
	existing := string(data[objects.IngestKeySecretKey])
	key, _, err := r.Backends.Metastore.EnsureIngestKey(ctx, t.Name, existing)
	if err != nil {
		return fromBackend(backendMetastore, err)
	}
	if data != nil && key == existing {
		return nil
	}
	return fromBackend(backendKubernetes, apply(ctx, r.Client, objects.IngestKeySecret(t, key)))
}

func isolation(t *v1alpha1.Tenant) v1alpha1.Isolation {
	if t.Spec.Isolation == "" {
		return v1alpha1.IsolationShared
	}
	return t.Spec.Isolation
}

// suspension is whether the tenant is refused service, and why.
type suspension struct {
	suspended bool
	reason    string
	message   string
}

// suspensionOf decides from the spec and the last known subscription state. The spec
// wins, so an operator can suspend a tenant whose billing is fine.
func suspensionOf(t *v1alpha1.Tenant) suspension {
	switch b := t.Status.Billing; {
	case t.Spec.Suspended:
		return suspension{true, v1alpha1.ReasonSuspendedBySpec, "spec.suspended is true"}
	case b != nil && billing.ShouldSuspend(b.State):
		return suspension{true, v1alpha1.ReasonSuspendedByBilling, "Stripe subscription " + b.SubscriptionID + " is " + b.State}
	}
	return suspension{false, v1alpha1.ReasonActive, "the tenant is served"}
}
