package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/naming"
)

// What follows is shared by the controllers that sync objects of a tenant's namespace
// into the metastore: Dashboard and DataSource.

// Retry intervals of the synced kinds.
const (
	// syncTenantRetry looks again at a tenant that is not ready, in case its event was
	// missed; the Tenant watch normally comes first.
	syncTenantRetry = 30 * time.Second
	// syncNameTakenRetry looks again at a name taken by a row made through the API, whose
	// deletion no watch reports.
	syncNameTakenRetry = time.Minute
	// DefaultSyncResyncInterval is how often a synced object is synced again, so a row
	// lost from the store (a restore, a manual delete) comes back.
	DefaultSyncResyncInterval = 5 * time.Minute
)

// managedBy is how the metastore names the object owning a row.
func managedBy(obj client.Object) string { return obj.GetNamespace() + "/" + obj.GetName() }

// syncTenant finds the tenant owning the objects of namespace. A non-empty problem says
// why the tenant cannot take them yet (no error: the Tenant watch brings the object back
// when that changes); err is a failure to read the Tenant.
func syncTenant(ctx context.Context, c client.Client, namespace string) (tenant, problem string, err error) {
	name, ok := naming.TenantFromNamespace(namespace)
	if !ok {
		return "", fmt.Sprintf("namespace %s is not a tenant namespace (tenant-<name>)", namespace), nil
	}
	t := &v1alpha1.Tenant{}
	if err := c.Get(ctx, types.NamespacedName{Name: name}, t); err != nil {
		if apierrors.IsNotFound(err) {
			return "", fmt.Sprintf("tenant %s does not exist", name), nil
		}
		return "", "", fromBackend(backendKubernetes, fmt.Errorf("reading tenant %s: %w", name, err))
	}
	if !t.DeletionTimestamp.IsZero() {
		return "", fmt.Sprintf("tenant %s is being deleted", name), nil
	}
	if !metadataReady(t) {
		why := "not reconciled yet"
		if c := meta.FindStatusCondition(t.Status.Conditions, v1alpha1.TenantMetadataReady); c != nil {
			why = c.Message
		}
		return "", fmt.Sprintf("the metadata of tenant %s is not stored yet: %s", name, why), nil
	}
	return name, "", nil
}

func metadataReady(t *v1alpha1.Tenant) bool {
	return meta.IsStatusConditionTrue(t.Status.Conditions, v1alpha1.TenantMetadataReady)
}

// tenantMetadataChanged passes the Tenant events that can change what syncTenant says:
// creation, deletion, MetadataReady flipping, the deletion timestamp appearing.
func tenantMetadataChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			before, ok1 := e.ObjectOld.(*v1alpha1.Tenant)
			after, ok2 := e.ObjectNew.(*v1alpha1.Tenant)
			if !ok1 || !ok2 {
				return false
			}
			return metadataReady(before) != metadataReady(after) ||
				before.DeletionTimestamp.IsZero() != after.DeletionTimestamp.IsZero()
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// tenantObjects maps a Tenant to the objects its namespace holds of one kind.
func tenantObjects(c client.Client, list func() client.ObjectList) func(context.Context, client.Object) []reconcile.Request {
	return func(ctx context.Context, obj client.Object) []reconcile.Request {
		return namespaceObjects(ctx, c, list(), naming.TenantNamespace(obj.GetName()))
	}
}

// namespaceObjects lists the objects of a kind in a namespace, narrowed by opts, as
// requests.
func namespaceObjects(ctx context.Context, c client.Client, list client.ObjectList, namespace string, opts ...client.ListOption) []reconcile.Request {
	if err := c.List(ctx, list, append(opts, client.InNamespace(namespace))...); err != nil {
		return nil
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(items))
	for _, item := range items {
		if o, ok := item.(client.Object); ok {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
		}
	}
	return reqs
}

// setSyncReadyCondition summarises conds (Synced and Valid, in that order) into Ready:
// True only when all are; otherwise the reason of the first that is not, and what each
// says.
func setSyncReadyCondition(conds *[]metav1.Condition, generation int64, summarised ...string) {
	reason, message := "", ""
	for _, condType := range summarised {
		c := meta.FindStatusCondition(*conds, condType)
		switch {
		case c == nil:
			if reason == "" {
				reason = v1alpha1.ReasonInProgress
			}
			message = joinMessage(message, condType+": not reconciled yet")
		case c.Status != metav1.ConditionTrue:
			if reason == "" {
				reason = c.Reason
			}
			message = joinMessage(message, condType+": "+c.Message)
		}
	}
	if reason == "" {
		setCondition(conds, generation, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSynced, "synced and valid")
		return
	}
	setCondition(conds, generation, v1alpha1.ConditionReady, metav1.ConditionFalse, reason, message)
}

func joinMessage(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
