package controllers

import (
	"context"
	"errors"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/lake"
)

// reconcileStorage makes the tenant's lake prefix exist under its retention class. The
// bucket and its lifecycle rules (one per class, whatever the tenant count) are set up by
// the first reconcile that gets that far.
func (r *TenantReconciler) reconcileStorage(ctx context.Context, s *tenantScope) (reconcile.Result, error) {
	t := s.tenant
	if r.checkedRecently(t, v1alpha1.TenantStorageReady, string(lakeClass(t))) {
		return reconcile.Result{}, nil
	}
	err := r.lakeSetup.do(func() error { return r.setUpLake(ctx) })
	prefix := ""
	if err == nil {
		prefix, err = r.Backends.Lake.EnsureTenantPrefix(ctx, lakeClass(t), t.Name)
	}
	err = fromBackend(backendLake, err)
	if err == nil {
		t.Status.Storage = &v1alpha1.StorageStatus{Bucket: r.Backends.Lake.Bucket(), Prefix: prefix}
	}
	setStorageReadyCondition(t, t.Status.Storage, err)
	if err == nil {
		r.checkPassed(t, v1alpha1.TenantStorageReady, string(lakeClass(t)))
	}
	return reconcile.Result{}, err
}

// setUpLake creates the bucket and its lifecycle rules. A server without lifecycle rules
// is logged and tolerated: retention then needs the server's own means.
func (r *TenantReconciler) setUpLake(ctx context.Context) error {
	if err := r.Backends.Lake.EnsureBucket(ctx); err != nil {
		return err
	}
	changed, err := r.Backends.Lake.EnsureLifecycle(ctx)
	switch {
	case errors.Is(err, lake.ErrLifecycleUnsupported):
		log.FromContext(ctx).Info("the lake's S3 server has no lifecycle rules; lake retention is not enforced by the bucket", "bucket", r.Backends.Lake.Bucket())
	case err != nil:
		return err
	case changed:
		log.FromContext(ctx).Info("updated the lake bucket's lifecycle rules", "bucket", r.Backends.Lake.Bucket())
	}
	return nil
}

func lakeClass(t *v1alpha1.Tenant) v1alpha1.LakeClass {
	if t.Spec.Retention.LakeClass == "" {
		return v1alpha1.LakeStandard
	}
	return t.Spec.Retention.LakeClass
}

// onceOK runs a function until it succeeds once; concurrent callers wait for the running
// attempt instead of starting their own.
type onceOK struct {
	mu   sync.Mutex
	done bool
}

func (o *onceOK) do(fn func() error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return nil
	}
	if err := fn(); err != nil {
		return err
	}
	o.done = true
	return nil
}
