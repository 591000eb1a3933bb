package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/controllers/objects"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/kafka"
	"github.com/shoal-dev/shoal/internal/naming"
)

// TenantReconciler provisions what a Tenant needs and removes it when the Tenant goes.
type TenantReconciler struct {
	Client client.Client
	// APIReader reads past the cache. Secrets missing from the cache are read again
	// through it: a Secret created a moment ago may not be cached yet, and taking it for
	// missing would mint a second password or key. Nil reads only the cache.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Platform  *config.Platform
	Backends  Backends
	// ResyncInterval is how often a Ready tenant is checked against the backends, whose
	// drift (a deleted topic, a dropped table) no watch reports. Default 5 minutes.
	ResyncInterval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	lakeSetup onceOK
	checks    backendChecks
}

// DefaultResyncInterval is the drift check interval when none is set.
const DefaultResyncInterval = 5 * time.Minute

// tenantScope carries one reconcile's state from phase to phase.
type tenantScope struct {
	tenant    *v1alpha1.Tenant
	plan      config.Plan
	namespace *corev1.Namespace
}

// tenantPhase is one step of provisioning. It records what it saw in the scope and its
// condition on the tenant. Its error is retried with backoff.
type tenantPhase func(ctx context.Context, s *tenantScope) (reconcile.Result, error)

// +kubebuilder:rbac:groups=analytics.shoal.dev,resources=tenants,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=analytics.shoal.dev,resources=tenants/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=analytics.shoal.dev,resources=tenants/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=resourcequotas,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one Tenant closer to its spec.
func (r *TenantReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	tenant := &v1alpha1.Tenant{}
	if err := r.Client.Get(ctx, req.NamespacedName, tenant); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	before := tenant.DeepCopy()
	s := &tenantScope{tenant: tenant}

	if !tenant.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, s, before)
	}

	// The finalizer must be stored before anything is created, or a quick delete could
	// leave what was created behind.
	if controllerutil.AddFinalizer(tenant, naming.TenantFinalizer) {
		if err := r.Client.Patch(ctx, tenant, client.MergeFrom(before)); err != nil {
			return reconcile.Result{}, fmt.Errorf("adding finalizer: %w", err)
		}
		before = tenant.DeepCopy()
	}

	// The plan and the namespace come first: every later phase needs them. The later
	// phases are independent of each other (the runtime phase waits for the ones it needs
	// by their conditions), so one backend's outage does not stop the others.
	result, phaseErr := r.runPhases(ctx, s, []tenantPhase{
		r.reconcilePlan,
		r.reconcileNamespace,
	})
	if phaseErr == nil && s.namespace.DeletionTimestamp == nil {
		var res reconcile.Result
		res, phaseErr = r.runIndependentPhases(ctx, s, []tenantPhase{
			r.reconcileTopic,
			r.reconcileDatabase,
			r.reconcileStorage,
			r.reconcileBilling,
			r.reconcileMetadata,
			r.reconcileRuntime,
		})
		result = soonest(result, res)
		if phaseErr == nil && result.RequeueAfter == 0 {
			result.RequeueAfter = r.resyncInterval()
		}
	}
	setReadyCondition(tenant, phaseErr)
	tenant.Status.ObservedGeneration = tenant.Generation
	tenant.Status.Namespace = naming.TenantNamespace(tenant.Name)

	if err := r.patchStatus(ctx, before, tenant); err != nil {
		if apierrors.IsConflict(err) {
			// Reconciled from a stale cache; the newer version is on its way.
			return reconcile.Result{RequeueAfter: time.Second}, nil
		}
		return reconcile.Result{}, errors.Join(phaseErr, err)
	}
	return result, phaseErr
}

// runPhases runs phases in order and stops at the first error: each phase needs what the
// ones before it made. The soonest requeue any phase asked for wins.
func (r *TenantReconciler) runPhases(ctx context.Context, s *tenantScope, phases []tenantPhase) (reconcile.Result, error) {
	var result reconcile.Result
	for _, phase := range phases {
		res, err := phase(ctx, s)
		if err != nil {
			return result, err
		}
		result = soonest(result, res)
	}
	return result, nil
}

// runIndependentPhases runs every phase whatever the others did and joins their errors.
func (r *TenantReconciler) runIndependentPhases(ctx context.Context, s *tenantScope, phases []tenantPhase) (reconcile.Result, error) {
	var (
		result reconcile.Result
		errs   []error
	)
	for _, phase := range phases {
		res, err := phase(ctx, s)
		errs = append(errs, err)
		result = soonest(result, res)
	}
	return result, errors.Join(errs...)
}

// soonest merges two results: the soonest requeue wins.
func soonest(a, b reconcile.Result) reconcile.Result {
	if b.RequeueAfter > 0 && (a.RequeueAfter == 0 || b.RequeueAfter < a.RequeueAfter) {
		a.RequeueAfter = b.RequeueAfter
	}
	return a
}

// checkedRecently reports whether a phase found its backend as specified within the
// resync interval, for the tenant's generation and detail, so its calls can be skipped.
func (r *TenantReconciler) checkedRecently(t *v1alpha1.Tenant, condType, detail string) bool {
	return r.checks.fresh(t, condType, detail, r.now(), r.resyncInterval())
}

func (r *TenantReconciler) checkPassed(t *v1alpha1.Tenant, condType, detail string) {
	r.checks.passed(t, condType, detail, r.now())
}

func (r *TenantReconciler) resyncInterval() time.Duration {
	if r.ResyncInterval > 0 {
		return r.ResyncInterval
	}
	return DefaultResyncInterval
}

// reconcilePlan resolves spec.plan against the platform's catalog.
func (r *TenantReconciler) reconcilePlan(_ context.Context, s *tenantScope) (reconcile.Result, error) {
	plan, ok := r.Platform.Plan(s.tenant.Spec.Plan)
	if !ok {
		return reconcile.Result{}, reconcile.TerminalError(&unknownPlanError{plan: s.tenant.Spec.Plan, known: r.Platform.PlanNames()})
	}
	s.plan = plan
	return reconcile.Result{}, nil
}

// namespaceRetry is how soon a tenant whose namespace is still terminating looks again,
// in case the namespace's deletion event was missed.
const namespaceRetry = 5 * time.Second

// reconcileNamespace creates the tenant's namespace with its plan's ResourceQuota and the
// NetworkPolicy that isolates it, restores what drifted, and refuses to take over a
// namespace of the same name that is not the tenant's.
func (r *TenantReconciler) reconcileNamespace(ctx context.Context, s *tenantScope) (reconcile.Result, error) {
	ns, err := r.ensureNamespace(ctx, s.tenant)
	if err == nil && ns.DeletionTimestamp == nil {
		err = r.applyNamespaceGuards(ctx, s)
	}
	s.namespace = ns
	setNamespaceReadyCondition(s.tenant, ns, err)
	if err != nil {
		return reconcile.Result{}, err
	}
	if ns.DeletionTimestamp != nil {
		// Someone deleted the namespace; it is made again once it is gone.
		return reconcile.Result{RequeueAfter: namespaceRetry}, nil
	}
	return reconcile.Result{}, nil
}

// applyNamespaceGuards applies the plan's quota and the isolation policy.
func (r *TenantReconciler) applyNamespaceGuards(ctx context.Context, s *tenantScope) error {
	for _, obj := range []client.Object{
		objects.ResourceQuota(s.tenant, s.plan),
		objects.NetworkPolicy(s.tenant, r.Platform.Operator.Namespace),
	} {
		if err := apply(ctx, r.Client, obj); err != nil {
			return err
		}
	}
	return nil
}

func (r *TenantReconciler) ensureNamespace(ctx context.Context, t *v1alpha1.Tenant) (*corev1.Namespace, error) {
	want := objects.Namespace(t)
	ns := &corev1.Namespace{}
	err := r.Client.Get(ctx, types.NamespacedName{Name: want.Name}, ns)
	switch {
	case apierrors.IsNotFound(err):
		if err := r.Client.Create(ctx, want); err != nil {
			return nil, fmt.Errorf("creating namespace %s: %w", want.Name, err)
		}
		log.FromContext(ctx).Info("created namespace", "namespace", want.Name)
		return want, nil
	case err != nil:
		return nil, fmt.Errorf("reading namespace %s: %w", want.Name, err)
	}

	if owner := ns.Labels[naming.TenantLabel]; owner != t.Name {
		return nil, reconcile.TerminalError(&namespaceConflictError{namespace: ns.Name, owner: owner})
	}
	if ns.DeletionTimestamp != nil {
		return ns, nil
	}
	patched := ns.DeepCopy()
	for k, v := range want.Labels {
		if patched.Labels[k] != v {
			if patched.Labels == nil {
				patched.Labels = map[string]string{}
			}
			patched.Labels[k] = v
		}
	}
	if !equality.Semantic.DeepEqual(ns.Labels, patched.Labels) {
		if err := r.Client.Patch(ctx, patched, client.MergeFrom(ns)); err != nil {
			return nil, fmt.Errorf("restoring labels of namespace %s: %w", ns.Name, err)
		}
		return patched, nil
	}
	return ns, nil
}

// reconcileDelete releases the tenant's data as its deletion policy says, then removes
// its namespace, then its finalizer. A failing backend or a namespace that does not go
// away is reported in Ready, with what holds it, and retried; once that passed the
// deletion timeout Ready says DeletionStuck. Dropping the finalizer early would lose
// track of what is left.
func (r *TenantReconciler) reconcileDelete(ctx context.Context, s *tenantScope, before *v1alpha1.Tenant) (reconcile.Result, error) {
	t := s.tenant
	if !controllerutil.ContainsFinalizer(t, naming.TenantFinalizer) {
		return reconcile.Result{}, nil
	}
	// Setting the deletion timestamp bumps the generation.
	t.Status.ObservedGeneration = t.Generation

	err := r.cleanUp(ctx, t)
	var ns *corev1.Namespace
	if err == nil {
		if keepsNamespace(t) {
			err = r.releaseNamespace(ctx, t)
		} else {
			ns, err = r.deleteNamespace(ctx, t)
		}
	}
	if err != nil || ns != nil {
		if ns != nil {
			setNamespaceReadyCondition(t, ns, nil)
		}
		waited := r.now().Sub(t.DeletionTimestamp.Time)
		timeout := r.Platform.Operator.DeletionTimeout.Duration
		setDeletingCondition(t, ns, err, waited, timeout)
		if perr := r.patchStatus(ctx, before, t); perr != nil {
			return reconcile.Result{}, perr
		}
		if err != nil {
			log.FromContext(ctx).Error(err, "tenant cleanup failed; retrying")
		}
		// The namespace's removal wakes this tenant through the watch; the requeue makes
		// sure a failed step is retried and the timeout is noticed.
		return reconcile.Result{RequeueAfter: deletionRetry(waited, timeout)}, nil
	}
	if err := r.patchStatus(ctx, before, t); err != nil {
		return reconcile.Result{}, err
	}
	before = t.DeepCopy()

	controllerutil.RemoveFinalizer(t, naming.TenantFinalizer)
	if err := r.Client.Patch(ctx, t, client.MergeFrom(before)); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(fmt.Errorf("removing finalizer: %w", err))
	}
	r.checks.forget(t.UID)
	fate := "removed"
	if keepsNamespace(t) {
		fate = "kept"
	}
	r.Recorder.Eventf(t, nil, corev1.EventTypeNormal, v1alpha1.ReasonDeleting, "Delete", "cleanup finished; namespace %s %s", naming.TenantNamespace(t.Name), fate)
	return reconcile.Result{}, nil
}

// deletionRetry backs off as a deletion drags on, from 1s to 30s, and wakes up in time
// to notice the deletion timeout.
func deletionRetry(waited, timeout time.Duration) time.Duration {
	wait := min(max(waited/4, time.Second), 30*time.Second)
	if left := timeout - waited; left > 0 && left < wait {
		wait = left
	}
	return wait
}

// keepsNamespace: a Dedicated tenant's database lives in its namespace, so retaining its
// data keeps the namespace.
func keepsNamespace(t *v1alpha1.Tenant) bool {
	return isolation(t) == v1alpha1.IsolationDedicated && deletionPolicy(t) == v1alpha1.DeletionRetain
}

// releaseNamespace lets a retained namespace outlive its Tenant: without the owner
// reference the garbage collector leaves it. Its tenant label stays, so a Tenant of the
// same name created later takes it back.
func (r *TenantReconciler) releaseNamespace(ctx context.Context, t *v1alpha1.Tenant) error {
	ns := &corev1.Namespace{}
	name := naming.TenantNamespace(t.Name)
	if err := r.Client.Get(ctx, types.NamespacedName{Name: name}, ns); err != nil {
		return client.IgnoreNotFound(fromBackend(backendKubernetes, fmt.Errorf("reading namespace %s: %w", name, err)))
	}
	kept := ns.DeepCopy()
	refs := kept.OwnerReferences[:0]
	for _, ref := range kept.OwnerReferences {
		if ref.UID != t.UID {
			refs = append(refs, ref)
		}
	}
	if len(refs) == len(ns.OwnerReferences) {
		return nil
	}
	kept.OwnerReferences = refs
	if err := r.Client.Patch(ctx, kept, client.MergeFrom(ns)); err != nil {
		return fromBackend(backendKubernetes, fmt.Errorf("releasing namespace %s: %w", name, err))
	}
	return nil
}

// deleteNamespace starts the deletion of the tenant's namespace and returns it while it
// still exists; nil once it is gone. A namespace of that name that is not the tenant's is
// left alone.
func (r *TenantReconciler) deleteNamespace(ctx context.Context, t *v1alpha1.Tenant) (*corev1.Namespace, error) {
	ns := &corev1.Namespace{}
	name := naming.TenantNamespace(t.Name)
	if err := r.Client.Get(ctx, types.NamespacedName{Name: name}, ns); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading namespace %s: %w", name, err)
	}
	if ns.Labels[naming.TenantLabel] != t.Name {
		return nil, nil
	}
	if ns.DeletionTimestamp == nil {
		if err := r.Client.Delete(ctx, ns, client.PropagationPolicy("Background")); err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("deleting namespace %s: %w", name, err)
		}
		log.FromContext(ctx).Info("deleting namespace", "namespace", name)
		if err := r.Client.Get(ctx, types.NamespacedName{Name: name}, ns); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("reading namespace %s: %w", name, err)
		}
	}
	return ns, nil
}

// patchStatus writes the status once, and only when it changed, then records an event for
// every condition that changed. The patch carries the resource version it was derived
// from: a reconcile of a stale cached copy fails with a conflict instead of writing (and
// announcing) transitions that already happened.
func (r *TenantReconciler) patchStatus(ctx context.Context, before, after *v1alpha1.Tenant) error {
	return patchStatusOf(ctx, r.Client, r.Recorder, before, after,
		func(o *v1alpha1.Tenant) any { return o.Status },
		func(o *v1alpha1.Tenant) []metav1.Condition { return o.Status.Conditions })
}

func (r *TenantReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// SetupWithManager registers the reconciler. Namespaces are watched so a deleted or
// relabelled tenant namespace is repaired at once, and a conflicting one is noticed when
// it goes; what the tenant owns is watched so its deletion is repaired at once. The
// Altinity and Strimzi kinds are watched when the API server has them.
func (r *TenantReconciler) SetupWithManager(mgr manager.Manager, maxConcurrent int) error {
	// Objects the operator creates announce themselves; only their later changes (drift)
	// and deletions need a reconcile. A Tenant's status patch is the operator's own
	// write, so only spec, label and annotation changes wake it.
	notCreated := builder.WithPredicates(predicate.Funcs{CreateFunc: func(event.CreateEvent) bool { return false }})
	b := builder.ControllerManagedBy(mgr).
		For(&v1alpha1.Tenant{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(namespaceToTenant), notCreated).
		Owns(&corev1.ResourceQuota{}, notCreated).
		Owns(&networkingv1.NetworkPolicy{}, notCreated).
		Owns(&corev1.Secret{}, notCreated).
		Owns(&appsv1.Deployment{}, notCreated)
	for _, gvk := range []schema.GroupVersionKind{objects.ClickHouseInstallationGVK, kafka.KafkaTopicGVK()} {
		if _, err := mgr.GetRESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			mgr.GetLogger().Info("not watching a kind the API server does not serve", "kind", gvk.String())
			continue
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		b = b.Watches(u, handler.EnqueueRequestsFromMapFunc(labelToTenant), notCreated)
	}
	return b.WithOptions(controller.Options{MaxConcurrentReconciles: maxConcurrent}).
		Named("tenant").
		Complete(r)
}

// labelToTenant maps an object labelled with its tenant (KafkaTopics live in the Strimzi
// namespace, so owner references cannot be used) to that tenant.
func labelToTenant(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetLabels()[naming.TenantLabel]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
}

// namespaceToTenant maps a namespace to the tenant whose name it has.
func namespaceToTenant(_ context.Context, obj client.Object) []reconcile.Request {
	name, ok := naming.TenantFromNamespace(obj.GetName())
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
}
