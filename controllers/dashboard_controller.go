package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/httpapi"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/naming"
)

// DashboardFinalizer holds a Dashboard until its row is deleted from the metastore.
const DashboardFinalizer = naming.Domain + "/dashboard-cleanup"

// dashboardPipelineIndex indexes Dashboards by the pipelines their widgets read.
const dashboardPipelineIndex = "spec.widgets.query.pipeline"

// DashboardStore is the metastore as the Dashboard controller uses it; *metastore.Store
// implements it.
type DashboardStore interface {
	SyncDashboard(ctx context.Context, tenantID, managedBy string, spec metastore.DashboardSpec) (metastore.SyncResult, error)
	DeleteManagedDashboard(ctx context.Context, tenantID, managedBy string) error
	GetDashboardByShareToken(ctx context.Context, token string) (metastore.Dashboard, error)
}

// DashboardReconciler syncs Dashboard objects into the metastore, where the query API
// serves them read-only, and checks their widget queries against the namespace's
// Pipelines.
type DashboardReconciler struct {
	Client client.Client
	// APIReader reads share Secrets past the cache; nil reads the cache.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Store     DashboardStore
	// BaseURL is the query API's public URL (https://analytics.example.com): status.url
	// is <BaseURL>/dashboards/<id> and a share link <BaseURL>/public/<token>. Empty
	// leaves both out.
	BaseURL string
	// ResyncInterval is how often a dashboard is synced again, restoring a row lost from
	// the store. Default DefaultSyncResyncInterval.
	ResyncInterval time.Duration
}

// +kubebuilder:rbac:groups=analytics.shoal.dev,resources=dashboards,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=analytics.shoal.dev,resources=dashboards/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=analytics.shoal.dev,resources=dashboards/finalizers,verbs=update
// +kubebuilder:rbac:groups=analytics.shoal.dev,resources=pipelines,verbs=get;list;watch
// +kubebuilder:rbac:groups=analytics.shoal.dev,resources=tenants,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch;delete

// Reconcile syncs one Dashboard. It writes the status once, when it changed.
func (r *DashboardReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	d := &v1alpha1.Dashboard{}
	if err := r.Client.Get(ctx, req.NamespacedName, d); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !d.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, d)
	}
	d, err := ensureFinalizer(ctx, r.Client, d, DashboardFinalizer)
	if err != nil {
		return reconcile.Result{}, err
	}
	before := d.DeepCopy()
	d.Status.ObservedGeneration = d.Generation

	var obs dashboardObservation
	obs.widgets, obs.pipelinesErr = r.checkWidgets(ctx, d)
	tenant, problem, err := syncTenant(ctx, r.Client, d.Namespace)
	obs.tenantProblem, obs.syncErr = problem, err
	if problem == "" && err == nil {
		var secret string
		if obs.id, secret, obs.syncErr = r.sync(ctx, d, tenant); obs.syncErr == nil {
			d.Status.ShareSecret = secret
		}
	}
	if obs.id != "" {
		d.Status.DashboardID = obs.id
		d.Status.URL = httpapi.DashboardURL(r.BaseURL, obs.id)
	}
	setDashboardConditions(d, obs)
	if err := r.patchStatus(ctx, before, d); err != nil {
		if apierrors.IsConflict(err) {
			// Reconciled from a stale cache; the newer version is on its way.
			return reconcile.Result{RequeueAfter: time.Second}, nil
		}
		return reconcile.Result{}, errors.Join(obs.syncErr, err)
	}
	return r.result(obs)
}

// result decides what comes after a reconcile: a terminal error for a spec the store
// refuses (its fix is a spec change, which brings the dashboard back), a slow retry for a
// taken name, a retry with backoff for a failing backend, and a resync otherwise.
func (r *DashboardReconciler) result(obs dashboardObservation) (reconcile.Result, error) {
	var (
		invalid *metastore.InvalidError
		taken   *shareSecretTakenError
	)
	switch {
	case obs.tenantProblem != "":
		return reconcile.Result{RequeueAfter: syncTenantRetry}, nil
	case errors.As(obs.syncErr, &invalid):
		return reconcile.Result{}, reconcile.TerminalError(obs.syncErr)
	case errors.Is(obs.syncErr, metastore.ErrNameTaken), errors.As(obs.syncErr, &taken):
		return reconcile.Result{RequeueAfter: syncNameTakenRetry}, nil
	case obs.syncErr != nil:
		return reconcile.Result{}, obs.syncErr
	case obs.pipelinesErr != nil:
		return reconcile.Result{}, obs.pipelinesErr
	}
	return reconcile.Result{RequeueAfter: orDefault(r.ResyncInterval, DefaultSyncResyncInterval)}, nil
}

// sync writes the dashboard to the store (nothing when its content is unchanged) and
// keeps its share Secret; it returns the row's id and the Secret's name.
func (r *DashboardReconciler) sync(ctx context.Context, d *v1alpha1.Dashboard, tenant string) (id, secret string, err error) {
	spec, err := dashboardSpec(d)
	if err != nil {
		return "", "", err
	}
	res, err := r.Store.SyncDashboard(ctx, tenant, managedBy(d), spec)
	if err != nil {
		return "", "", fromBackend(backendMetastore, err)
	}
	if res.Wrote {
		log.FromContext(ctx).Info("synced dashboard into the metastore", "id", res.ID)
	}
	secret, err = r.syncShare(ctx, d, tenant, spec, res)
	return res.ID, secret, err
}

// checkWidgets checks the widgets' queries against the Pipelines of the namespace.
func (r *DashboardReconciler) checkWidgets(ctx context.Context, d *v1alpha1.Dashboard) ([]string, error) {
	list := &v1alpha1.PipelineList{}
	if err := r.Client.List(ctx, list, client.InNamespace(d.Namespace)); err != nil {
		return nil, fromBackend(backendKubernetes, fmt.Errorf("listing pipelines: %w", err))
	}
	pipelines := make(map[string]*v1alpha1.Pipeline, len(list.Items))
	for i := range list.Items {
		pipelines[list.Items[i].Name] = &list.Items[i]
	}
	return widgetProblems(d.Spec.Widgets, pipelines), nil
}

// reconcileDelete deletes the dashboard's row, then the finalizer. A failing store is
// reported in Ready and retried; the row of a namespace that is not a tenant's was
// never written.
func (r *DashboardReconciler) reconcileDelete(ctx context.Context, d *v1alpha1.Dashboard) (reconcile.Result, error) {
	return deleteManagedRow(ctx, r.Client, d, DashboardFinalizer, &d.Status.Conditions, r.Store.DeleteManagedDashboard, r.patchStatus)
}

// patchStatus writes the status when it changed, with an optimistic lock, and records
// an event per condition transition.
func (r *DashboardReconciler) patchStatus(ctx context.Context, before, after *v1alpha1.Dashboard) error {
	return patchStatusOf(ctx, r.Client, r.Recorder, before, after,
		func(o *v1alpha1.Dashboard) any { return o.Status },
		func(o *v1alpha1.Dashboard) []metav1.Condition { return o.Status.Conditions })
}

// SetupWithManager registers the reconciler. Pipelines are watched so a dashboard is
// checked again when a pipeline it reads appears, changes or goes; Tenants so it syncs
// once its tenant's metadata is stored; its share Secret so a deleted one is replaced.
func (r *DashboardReconciler) SetupWithManager(ctx context.Context, mgr manager.Manager, maxConcurrent int) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.Dashboard{}, dashboardPipelineIndex, func(obj client.Object) []string {
		return widgetPipelines(obj.(*v1alpha1.Dashboard))
	}); err != nil {
		return fmt.Errorf("indexing dashboards by pipeline: %w", err)
	}
	c := mgr.GetClient()
	pipelineDashboards := func(ctx context.Context, obj client.Object) []reconcile.Request {
		return namespaceObjects(ctx, c, &v1alpha1.DashboardList{}, obj.GetNamespace(), client.MatchingFields{dashboardPipelineIndex: obj.GetName()})
	}
	notCreated := builder.WithPredicates(predicate.Funcs{CreateFunc: func(event.CreateEvent) bool { return false }})
	return builder.ControllerManagedBy(mgr).
		For(&v1alpha1.Dashboard{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.Pipeline{}, handler.EnqueueRequestsFromMapFunc(pipelineDashboards),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.Tenant{}, handler.EnqueueRequestsFromMapFunc(tenantObjects(c, func() client.ObjectList { return &v1alpha1.DashboardList{} })),
			builder.WithPredicates(tenantMetadataChanged())).
		Owns(&corev1.Secret{}, notCreated).
		WithOptions(controller.Options{MaxConcurrentReconciles: maxConcurrent}).
		Named("dashboard").
		Complete(r)
}
