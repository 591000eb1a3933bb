package controllers

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/naming"
)

// patchStatusOf writes after's status when it differs from before's, with an optimistic
// lock, and records an event per condition transition. status and conditions read a
// kind's status and its conditions. An object deleted meanwhile is not an error: there is
// nothing left to report on.
func patchStatusOf[T client.Object](ctx context.Context, c client.Client, rec events.EventRecorder, before, after T,
	status func(T) any, conditions func(T) []metav1.Condition) error {
	if equality.Semantic.DeepEqual(status(before), status(after)) {
		return nil
	}
	if err := c.Status().Patch(ctx, after, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("patching status: %w", err)
	}
	recordTransitions(rec, after, conditions(before), conditions(after))
	return nil
}

// removeFinalizer lets a deleted object go once what it owned is released; an object
// already gone is not an error.
func removeFinalizer(ctx context.Context, c client.Client, obj client.Object, finalizer string) error {
	patched := obj.DeepCopyObject().(client.Object)
	controllerutil.RemoveFinalizer(patched, finalizer)
	if err := c.Patch(ctx, patched, client.MergeFrom(obj)); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("removing finalizer: %w", err))
	}
	return nil
}

// ensureFinalizer stores finalizer on obj before anything it owns is created, so a quick
// delete cannot leave that behind, and returns the object as stored.
func ensureFinalizer[T client.Object](ctx context.Context, c client.Client, obj T, finalizer string) (T, error) {
	if controllerutil.ContainsFinalizer(obj, finalizer) {
		return obj, nil
	}
	patched := obj.DeepCopyObject().(T)
	controllerutil.AddFinalizer(patched, finalizer)
	if err := c.Patch(ctx, patched, client.MergeFrom(obj)); err != nil {
		return obj, fmt.Errorf("adding finalizer: %w", err)
	}
	return patched, nil
}

// deleteManagedRow is the deletion of an object synced into the metastore: its row is
// deleted (when its namespace is a tenant's; otherwise none was written), then the
// finalizer removed. A failing store is reported in Ready and retried. conditions are
// obj's own, so setting one marks obj.
func deleteManagedRow[T client.Object](ctx context.Context, c client.Client, obj T, finalizer string, conditions *[]metav1.Condition,
	deleteRow func(ctx context.Context, tenant, managedBy string) error, patchStatus func(ctx context.Context, before, after T) error) (reconcile.Result, error) {
	if !controllerutil.ContainsFinalizer(obj, finalizer) {
		return reconcile.Result{}, nil
	}
	if tenant, ok := naming.TenantFromNamespace(obj.GetNamespace()); ok {
		if err := deleteRow(ctx, tenant, managedBy(obj)); err != nil {
			err = fromBackend(backendMetastore, err)
			before := obj.DeepCopyObject().(T)
			setCondition(conditions, obj.GetGeneration(), v1alpha1.ConditionReady, metav1.ConditionFalse, failureReason(err),
				"deleting: "+err.Error()+"; retrying")
			return reconcile.Result{}, errors.Join(err, patchStatus(ctx, before, obj))
		}
	}
	return reconcile.Result{}, removeFinalizer(ctx, c, obj, finalizer)
}
