package controllers

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/kafka"
)

// TestTopicPhaseStrimziMode runs the topic phase in strimzi mode against the real
// KafkaTopic schema. The suite's operator runs in direct mode, so this phase is driven
// by hand on a tenant the API server never sees; the test plays the topic operator.
func TestTopicPhaseStrimziMode(t *testing.T) {
	if len(env.UpstreamCRDs) == 0 {
		t.Fatal("the upstream Strimzi CRDs are needed (../shared/crds/strimzi beside the repository): KafkaTopics are checked against the real schema")
	}
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kafka-strimzi-phase"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	platform := *reconciler.Platform
	platform.Kafka.Mode = kafka.ModeStrimzi
	platform.Kafka.Strimzi = kafka.StrimziConfig{Namespace: ns.Name, Cluster: "events"}
	topics, err := kafka.NewStrimzi(env.Client, platform.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	r := &TenantReconciler{Client: env.Client, Platform: &platform, Backends: Backends{Topics: topics}}
	tenant := sharedTenant("strimzi-phase", "free")
	tenant.Spec.Kafka.Partitions = 6
	s := &tenantScope{tenant: tenant}

	res, err := r.reconcileTopic(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter == 0 {
		t.Error("a topic the topic operator has not applied yet is not looked at again")
	}
	wantCondition(t, tenant, v1alpha1.TenantTopicReady, metav1.ConditionFalse, v1alpha1.ReasonInProgress, "topic shoal-events-strimzi-phase is not ready yet")

	key := client.ObjectKey{Namespace: ns.Name, Name: "shoal-events-strimzi-phase"}
	kt := &unstructured.Unstructured{}
	kt.SetGroupVersionKind(kafka.KafkaTopicGVK())
	if err := env.Client.Get(ctx, key, kt); err != nil {
		t.Fatalf("no KafkaTopic written: %v", err)
	}
	if p, _, _ := unstructured.NestedInt64(kt.Object, "spec", "partitions"); p != 6 {
		t.Errorf("KafkaTopic partitions %d, want 6", p)
	}
	status := map[string]any{
		"observedGeneration": kt.GetGeneration(),
		"topicName":          key.Name,
		"conditions": []any{map[string]any{
			"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z",
		}},
	}
	if err := unstructured.SetNestedField(kt.Object, status, "status"); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Status().Update(ctx, kt); err != nil {
		t.Fatal(err)
	}
	if _, err := r.reconcileTopic(ctx, s); err != nil {
		t.Fatal(err)
	}
	wantCondition(t, tenant, v1alpha1.TenantTopicReady, metav1.ConditionTrue, v1alpha1.ReasonTopicReady, "shoal-events-strimzi-phase has 6 partitions")
	if tenant.Status.Topic == nil || tenant.Status.Topic.Name != key.Name {
		t.Errorf("status.topic = %+v", tenant.Status.Topic)
	}
}
