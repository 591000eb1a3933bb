package controllers

import (
	"context"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/kafka"
)

// inProgressRetry is how soon a phase whose backend is still working looks again, in case
// no watch reports the change.
const inProgressRetry = 10 * time.Second

// +kubebuilder:rbac:groups=kafka.strimzi.io,resources=kafkatopics,verbs=get;list;watch;create;update;patch;delete

// reconcileTopic creates the tenant's topic, grows its partitions and restores its
// configs; a deleted topic comes back.
func (r *TenantReconciler) reconcileTopic(ctx context.Context, s *tenantScope) (reconcile.Result, error) {
	t := s.tenant
	if r.checkedRecently(t, v1alpha1.TenantTopicReady, "") {
		return reconcile.Result{}, nil
	}
	spec := kafka.DesiredTopic(t, r.Platform.Kafka)
	st, err := r.Backends.Topics.Ensure(ctx, spec)
	err = fromBackend(backendKafka, err)
	if err == nil || st.Name != "" {
		t.Status.Topic = &v1alpha1.TopicStatus{Name: spec.Name, Partitions: st.Partitions}
	}
	setTopicReadyCondition(t, st, err)
	if err == nil && st.Ready {
		r.checkPassed(t, v1alpha1.TenantTopicReady, "")
	}
	if err == nil && !st.Ready {
		return reconcile.Result{RequeueAfter: inProgressRetry}, nil
	}
	return reconcile.Result{}, err
}
