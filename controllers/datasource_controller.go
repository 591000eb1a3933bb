package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/naming"
)

// DataSourceFinalizer holds a DataSource until its row is deleted from the metastore.
const DataSourceFinalizer = naming.Domain + "/datasource-cleanup"

// dataSourceSecretIndex indexes DataSources by the Secret holding their credentials.
const dataSourceSecretIndex = "spec.credentialsSecretRef.name"

// DataSourceStore is the metastore's data sources as the DataSource controller uses
// them; *metastore.DataSources (Store.DataSources(keyring)) implements it, sealing the
// credentials with the keyring's current key.
type DataSourceStore interface {
	Sync(ctx context.Context, tenantID, managedBy string, spec metastore.DataSourceSpec) (metastore.SyncResult, error)
	DeleteManaged(ctx context.Context, tenantID, managedBy string) error
}

// DataSourceReconciler syncs DataSource objects into the metastore, with their
// credentials read from a Secret and sealed, and checks their configuration. Running the
// connectors is not its job.
type DataSourceReconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	Store    DataSourceStore
	// ResyncInterval is how often a data source is synced again, restoring a row lost
	// from the store and re-sealing credentials after a key rotation. Default
	// DefaultSyncResyncInterval.
	ResyncInterval time.Duration
}

// +kubebuilder:rbac:groups=analytics.shoal.dev,resources=datasources,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=analytics.shoal.dev,resources=datasources/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=analytics.shoal.dev,resources=datasources/finalizers,verbs=update

// Reconcile syncs one DataSource. It writes the status once, when it changed.
func (r *DataSourceReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	ds := &v1alpha1.DataSource{}
	if err := r.Client.Get(ctx, req.NamespacedName, ds); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !ds.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, ds)
	}
	ds, err := ensureFinalizer(ctx, r.Client, ds, DataSourceFinalizer)
	if err != nil {
		return reconcile.Result{}, err
	}
	before := ds.DeepCopy()
	ds.Status.ObservedGeneration = ds.Generation

	obs := r.observe(ctx, ds)
	if obs.id != "" {
		ds.Status.DataSourceID = obs.id
		ds.Status.HasCredentials = obs.hasCredentials
	}
	setDataSourceConditions(ds, obs)
	if err := r.patchStatus(ctx, before, ds); err != nil {
		if apierrors.IsConflict(err) {
			// Reconciled from a stale cache; the newer version is on its way.
			return reconcile.Result{RequeueAfter: time.Second}, nil
		}
		return reconcile.Result{}, errors.Join(obs.syncErr, err)
	}
	return r.result(obs)
}

// observe checks the configuration, the tenant and the credentials Secret, and syncs
// when all three are fine.
func (r *DataSourceReconciler) observe(ctx context.Context, ds *v1alpha1.DataSource) dataSourceObservation {
	var obs dataSourceObservation
	obs.configErrs, obs.syncErr = dataSourceConfigErrors(ds)
	if obs.syncErr != nil || len(obs.configErrs) > 0 {
		return obs
	}
	var tenant string
	if tenant, obs.tenantProblem, obs.syncErr = syncTenant(ctx, r.Client, ds.Namespace); obs.tenantProblem != "" || obs.syncErr != nil {
		return obs
	}
	var creds map[string]string
	if creds, obs.secretProblem, obs.syncErr = r.credentials(ctx, ds); obs.secretProblem != "" || obs.syncErr != nil {
		return obs
	}
	spec, err := dataSourceSpec(ds, creds)
	if err != nil {
		obs.syncErr = err
		return obs
	}
	res, err := r.Store.Sync(ctx, tenant, managedBy(ds), spec)
	if err != nil {
		obs.syncErr = fromBackend(backendMetastore, err)
		return obs
	}
	if res.Wrote {
		log.FromContext(ctx).Info("synced data source into the metastore", "id", res.ID)
	}
	obs.id, obs.hasCredentials = res.ID, len(creds) > 0
	return obs
}

// credentials reads the Secret spec.credentialsSecretRef names; nil without one. A
// missing Secret is a problem, not an error: the Secret watch brings the data source
// back when it is created.
func (r *DataSourceReconciler) credentials(ctx context.Context, ds *v1alpha1.DataSource) (map[string]string, string, error) {
	ref := ds.Spec.CredentialsSecretRef
	if ref == nil {
		return nil, "", nil
	}
	s := &corev1.Secret{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: ds.Namespace, Name: ref.Name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Sprintf("the credentials Secret %s does not exist in namespace %s", ref.Name, ds.Namespace), nil
		}
		return nil, "", fromBackend(backendKubernetes, fmt.Errorf("reading credentials Secret %s: %w", ref.Name, err))
	}
	return secretCredentials(s), "", nil
}

// result: an invalid configuration or a spec the store refuses is terminal (the spec
// change that fixes it brings the object back), a taken name is retried slowly, a
// missing tenant or Secret is looked at again in case its event was missed, a failing
// backend is retried with backoff, and a synced data source is synced again later.
func (r *DataSourceReconciler) result(obs dataSourceObservation) (reconcile.Result, error) {
	var invalid *metastore.InvalidError
	switch {
	case len(obs.configErrs) > 0:
		return reconcile.Result{}, reconcile.TerminalError(fmt.Errorf("invalid configuration: %w", obs.configErrs.ToAggregate()))
	case errors.As(obs.syncErr, &invalid):
		return reconcile.Result{}, reconcile.TerminalError(obs.syncErr)
	case errors.Is(obs.syncErr, metastore.ErrNameTaken):
		return reconcile.Result{RequeueAfter: syncNameTakenRetry}, nil
	case obs.syncErr != nil:
		return reconcile.Result{}, obs.syncErr
	case obs.tenantProblem != "", obs.secretProblem != "":
		return reconcile.Result{RequeueAfter: syncTenantRetry}, nil
	}
	return reconcile.Result{RequeueAfter: orDefault(r.ResyncInterval, DefaultSyncResyncInterval)}, nil
}

// reconcileDelete deletes the data source's row, then the finalizer; a failing store is
// reported in Ready and retried.
func (r *DataSourceReconciler) reconcileDelete(ctx context.Context, ds *v1alpha1.DataSource) (reconcile.Result, error) {
	return deleteManagedRow(ctx, r.Client, ds, DataSourceFinalizer, &ds.Status.Conditions, r.Store.DeleteManaged, r.patchStatus)
}

// patchStatus writes the status when it changed, with an optimistic lock, and records
// an event per condition transition.
func (r *DataSourceReconciler) patchStatus(ctx context.Context, before, after *v1alpha1.DataSource) error {
	return patchStatusOf(ctx, r.Client, r.Recorder, before, after,
		func(o *v1alpha1.DataSource) any { return o.Status },
		func(o *v1alpha1.DataSource) []metav1.Condition { return o.Status.Conditions })
}

// SetupWithManager registers the reconciler. Secrets are watched through an index of
// the DataSources naming them, so creating or changing a credentials Secret syncs its
// data sources at once; Tenants so a data source syncs once its tenant's metadata is
// stored.
func (r *DataSourceReconciler) SetupWithManager(ctx context.Context, mgr manager.Manager, maxConcurrent int) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.DataSource{}, dataSourceSecretIndex, func(obj client.Object) []string {
		if ref := obj.(*v1alpha1.DataSource).Spec.CredentialsSecretRef; ref != nil {
			return []string{ref.Name}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("indexing data sources by Secret: %w", err)
	}
	c := mgr.GetClient()
	secretDataSources := func(ctx context.Context, obj client.Object) []reconcile.Request {
		return namespaceObjects(ctx, c, &v1alpha1.DataSourceList{}, obj.GetNamespace(), client.MatchingFields{dataSourceSecretIndex: obj.GetName()})
	}
	return builder.ControllerManagedBy(mgr).
		For(&v1alpha1.DataSource{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(secretDataSources)).
		Watches(&v1alpha1.Tenant{}, handler.EnqueueRequestsFromMapFunc(tenantObjects(c, func() client.ObjectList { return &v1alpha1.DataSourceList{} })),
			builder.WithPredicates(tenantMetadataChanged())).
		WithOptions(controller.Options{MaxConcurrentReconciles: maxConcurrent}).
		Named("datasource").
		Complete(r)
}
