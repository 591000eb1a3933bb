package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/controllers/objects"
	"github.com/shoal-dev/shoal/internal/naming"
)

// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete

// runtimeNeeds are the phases whose work the runtime serves from: it waits for them.
func runtimeNeeds() []string {
	return []string{v1alpha1.TenantTopicReady, v1alpha1.TenantDatabaseReady, v1alpha1.TenantMetadataReady}
}

// reconcileRuntime serves the tenant. A Shared tenant is served by the shared runtime,
// which finds it through its metastore row; a Dedicated tenant gets its own ingest,
// process and query Deployments, Services, autoscalers and disruption budgets.
func (r *TenantReconciler) reconcileRuntime(ctx context.Context, s *tenantScope) (reconcile.Result, error) {
	t := s.tenant
	waiting := unmetConditions(t, runtimeNeeds())
	if isolation(t) == v1alpha1.IsolationShared {
		t.Status.Endpoints = &v1alpha1.EndpointsStatus{
			Ingest: objects.SharedRuntimeEndpoint(objects.RoleIngest, r.Platform.Operator.Namespace),
			Query:  objects.SharedRuntimeEndpoint(objects.RoleQuery, r.Platform.Operator.Namespace),
		}
		setRuntimeReadyCondition(t, runtimeObservation{shared: true, waitingFor: waiting}, nil)
		return reconcile.Result{}, nil
	}

	// The Deployments are applied even while their dependencies come up: their pods
	// wait in readiness, and a Dedicated tenant's installation takes minutes anyway.
	obs := runtimeObservation{waitingFor: waiting}
	err := r.applyDedicatedRuntime(ctx, t)
	if err == nil {
		obs.deployments, err = r.readRuntimeDeployments(ctx, t)
	}
	err = fromBackend(backendKubernetes, err)
	t.Status.Endpoints = &v1alpha1.EndpointsStatus{
		Ingest: objects.RuntimeEndpoint(t, objects.RoleIngest),
		Query:  objects.RuntimeEndpoint(t, objects.RoleQuery),
	}
	setRuntimeReadyCondition(t, obs, err)
	return reconcile.Result{}, err
}

func (r *TenantReconciler) applyDedicatedRuntime(ctx context.Context, t *v1alpha1.Tenant) error {
	files, err := r.applyRuntimeFiles(ctx, t)
	if err != nil {
		return err
	}
	for _, role := range objects.RuntimeRoles() {
		objs := []client.Object{objects.RuntimeDeployment(t, role, r.Platform.Runtime, files), objects.RuntimeDisruptionBudget(t, role)}
		if role.Serves() {
			objs = append(objs, objects.RuntimeService(t, role), objects.RuntimeAutoscaler(t, role))
		}
		for _, obj := range objs {
			if err := apply(ctx, r.Client, obj); err != nil {
				return err
			}
		}
	}
	return nil
}

// applyRuntimeFiles puts into the tenant's namespace what its runtime pods read: the
// platform config and, when the platform names one, a copy of its credentials Secret.
// The copy follows the original on every reconcile and resync.
func (r *TenantReconciler) applyRuntimeFiles(ctx context.Context, t *v1alpha1.Tenant) (objects.RuntimeFiles, error) {
	doc, err := r.Platform.RuntimeDocument()
	if err != nil {
		return objects.RuntimeFiles{}, err
	}
	secrets := []*corev1.Secret{objects.RuntimeConfigSecret(t, doc)}
	if name := r.Platform.Runtime.CredentialsSecret; name != "" {
		// The operator's namespace is outside the cache, which holds tenant objects only.
		src := corev1.Secret{}
		key := types.NamespacedName{Namespace: r.Platform.Operator.Namespace, Name: name}
		if err := r.reader().Get(ctx, key, &src); err != nil {
			return objects.RuntimeFiles{}, fmt.Errorf("reading the platform's credentials Secret %s (runtime.credentialsSecret): %w", key, err)
		}
		secrets = append(secrets, objects.RuntimeCredentialsSecret(t, objects.RuntimeCredentials(r.Platform, src.Data)))
	}
	for _, s := range secrets {
		if err := apply(ctx, r.Client, s); err != nil {
			return objects.RuntimeFiles{}, err
		}
	}
	return objects.RuntimeFiles{Hash: objects.RuntimeFilesHash(secrets...), Credentials: len(secrets) > 1}, nil
}

// reader reads past the cache when there is an API reader.
func (r *TenantReconciler) reader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

func (r *TenantReconciler) readRuntimeDeployments(ctx context.Context, t *v1alpha1.Tenant) ([]appsv1.Deployment, error) {
	deps := make([]appsv1.Deployment, 0, len(objects.RuntimeRoles()))
	for _, role := range objects.RuntimeRoles() {
		dep := appsv1.Deployment{}
		key := types.NamespacedName{Namespace: naming.TenantNamespace(t.Name), Name: objects.RuntimeName(role)}
		if err := r.Client.Get(ctx, key, &dep); err != nil {
			return nil, fmt.Errorf("reading Deployment %s: %w", key, err)
		}
		deps = append(deps, dep)
	}
	return deps, nil
}

// unmetConditions lists the conditions among types that are not True.
func unmetConditions(t *v1alpha1.Tenant, types []string) []string {
	var unmet []string
	for _, ct := range types {
		if !meta.IsStatusConditionTrue(t.Status.Conditions, ct) {
			unmet = append(unmet, ct)
		}
	}
	return unmet
}

// deploymentAvailable reports whether a Deployment's current generation runs all its
// replicas available, and otherwise how far it is.
func deploymentAvailable(d *appsv1.Deployment) (bool, string) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	if d.Status.ObservedGeneration < d.Generation {
		return false, fmt.Sprintf("Deployment %s: generation %d not yet observed", d.Name, d.Generation)
	}
	if d.Status.AvailableReplicas < want {
		return false, fmt.Sprintf("Deployment %s: %d of %d replicas available", d.Name, d.Status.AvailableReplicas, want)
	}
	return true, ""
}

// runtimeObservation is what the runtime phase saw.
type runtimeObservation struct {
	shared      bool
	waitingFor  []string
	deployments []appsv1.Deployment
}
