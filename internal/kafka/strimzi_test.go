package kafka

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/internal/testenv"
)

// startAPIServer starts a kube-apiserver with the upstream Strimzi CRD, so every
// KafkaTopic written is checked by the real schema.
func startAPIServer(t *testing.T) *testenv.Env {
	t.Helper()
	env, err := testenv.Start()
	if err != nil {
		t.Fatalf("starting the API server: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the API server: %v", err)
		}
	})
	if len(env.UpstreamCRDs) == 0 {
		t.Fatal("the upstream Strimzi CRDs are needed (../shared/crds/strimzi beside the repository, or SHOAL_UPSTREAM_CRDS): strimzi mode is tested against the real KafkaTopic schema")
	}
	return env
}

// operatorSetsStatus plays the Strimzi topic operator: it writes the KafkaTopic's status
// through the status subresource, as having applied the current generation.
func operatorSetsStatus(t *testing.T, c client.Client, key client.ObjectKey, ready, reason, message string) {
	t.Helper()
	obj := newKafkaTopic()
	if err := c.Get(context.Background(), key, obj); err != nil {
		t.Fatal(err)
	}
	status := map[string]any{
		"observedGeneration": obj.GetGeneration(),
		"topicName":          key.Name,
		"conditions": []any{map[string]any{
			"type": "Ready", "status": ready, "reason": reason, "message": message,
			"lastTransitionTime": "2026-01-01T00:00:00Z",
		}},
	}
	if err := unstructured.SetNestedField(obj.Object, status, "status"); err != nil {
		t.Fatal(err)
	}
	if err := c.Status().Update(context.Background(), obj); err != nil {
		t.Fatalf("setting the KafkaTopic status: %v", err)
	}
}

func TestStrimzi(t *testing.T) {
	env := startAPIServer(t)
	ctx := context.Background()
	const ns, topic = "kafka", "shoal-events-acme"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	s, err := NewStrimzi(env.Client, Config{Mode: ModeStrimzi, ReplicationFactor: 3, Strimzi: StrimziConfig{Namespace: ns, Cluster: "main"}})
	if err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKey{Namespace: ns, Name: topic}
	spec := func(partitions int32) TopicSpec {
		sp := testSpec(topic, partitions)
		sp.Replicas = 3
		sp.Config[ConfigMinInsyncReplicas] = "2"
		return sp
	}
	get := func(t *testing.T) *unstructured.Unstructured {
		t.Helper()
		obj := newKafkaTopic()
		if err := env.Client.Get(ctx, key, obj); err != nil {
			t.Fatalf("reading the KafkaTopic: %v", err)
		}
		return obj
	}

	steps := []struct {
		name       string
		setup      func(t *testing.T)
		spec       TopicSpec
		ready      bool
		partitions int32
		messageHas string
		check      func(t *testing.T, obj *unstructured.Unstructured)
	}{
		{
			name: "create: accepted by the schema, not ready until the operator says so",
			spec: spec(3), partitions: 3, messageHas: "waiting for the Strimzi topic operator",
			check: func(t *testing.T, obj *unstructured.Unstructured) {
				wantSpec := map[string]any{
					"topicName": topic, "partitions": int64(3), "replicas": int64(3),
					"config": map[string]any{"retention.ms": "86400000", "cleanup.policy": "delete", "min.insync.replicas": "2"},
				}
				if got := obj.Object["spec"]; !reflect.DeepEqual(got, wantSpec) {
					t.Errorf("spec = %v, want %v", got, wantSpec)
				}
				wantLabels := map[string]string{StrimziClusterLabel: "main", naming.TenantLabel: "acme", naming.ManagedByLabel: naming.ManagedByValue}
				if got := obj.GetLabels(); !reflect.DeepEqual(got, wantLabels) {
					t.Errorf("labels = %v, want %v", got, wantLabels)
				}
			},
		},
		{
			name: "operator reports a failure: not ready, with its message",
			setup: func(t *testing.T) {
				operatorSetsStatus(t, env.Client, key, "False", "KafkaError", "Replication factor: 3 larger than available brokers: 1")
			},
			spec: spec(3), partitions: 3, messageHas: "KafkaError: Replication factor: 3 larger than available brokers: 1",
		},
		{
			name:  "operator reports ready",
			setup: func(t *testing.T) { operatorSetsStatus(t, env.Client, key, "True", "", "") },
			spec:  spec(3), ready: true, partitions: 3,
		},
		{
			name: "an unchanged spec writes nothing",
			spec: spec(3), ready: true, partitions: 3,
			check: func(t *testing.T, obj *unstructured.Unstructured) {
				if obj.GetGeneration() != 1 {
					t.Errorf("generation %d after ensuring the same spec, want 1", obj.GetGeneration())
				}
			},
		},
		{
			name: "partitions grow: spec updated, not ready until the operator applies it",
			spec: spec(6), partitions: 6, messageHas: "apply generation 2",
			check: func(t *testing.T, obj *unstructured.Unstructured) {
				if p, _, _ := unstructured.NestedInt64(obj.Object, "spec", "partitions"); p != 6 {
					t.Errorf("spec.partitions = %d, want 6", p)
				}
			},
		},
		{
			name:  "operator applies the growth",
			setup: func(t *testing.T) { operatorSetsStatus(t, env.Client, key, "True", "", "") },
			spec:  spec(6), ready: true, partitions: 6,
		},
		{
			name: "decrease refused, spec keeps 6",
			spec: spec(4), ready: true, partitions: 6, messageHas: "cannot remove partitions, so it keeps 6",
			check: func(t *testing.T, obj *unstructured.Unstructured) {
				if p, _, _ := unstructured.NestedInt64(obj.Object, "spec", "partitions"); p != 6 {
					t.Errorf("spec.partitions = %d, want 6", p)
				}
			},
		},
		{
			name: "config drift repaired",
			setup: func(t *testing.T) {
				obj := get(t)
				if err := unstructured.SetNestedField(obj.Object, "1000", "spec", "config", ConfigRetentionMs); err != nil {
					t.Fatal(err)
				}
				if err := env.Client.Update(ctx, obj); err != nil {
					t.Fatal(err)
				}
				operatorSetsStatus(t, env.Client, key, "True", "", "")
			},
			spec: spec(6), partitions: 6, messageHas: "waiting",
			check: func(t *testing.T, obj *unstructured.Unstructured) {
				if v, _, _ := unstructured.NestedString(obj.Object, "spec", "config", ConfigRetentionMs); v != "86400000" {
					t.Errorf("spec.config.retention.ms = %q, want 86400000", v)
				}
			},
		},
	}
	for _, step := range steps {
		ok := t.Run(step.name, func(t *testing.T) {
			if step.setup != nil {
				step.setup(t)
			}
			st, err := s.Ensure(ctx, step.spec)
			if err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			if st.Name != topic || st.Ready != step.ready || st.Partitions != step.partitions {
				t.Errorf("Ensure = %+v, want ready=%v partitions=%d", st, step.ready, step.partitions)
			}
			if step.messageHas == "" && st.Message != "" || !strings.Contains(st.Message, step.messageHas) {
				t.Errorf("message %q, want it to contain %q", st.Message, step.messageHas)
			}
			desc, found, err := s.Describe(ctx, topic)
			if err != nil || !found || desc.Ready != step.ready || desc.Partitions != step.partitions {
				t.Errorf("Describe = %+v found=%v err=%v, want ready=%v partitions=%d", desc, found, err, step.ready, step.partitions)
			}
			if step.check != nil {
				step.check(t, get(t))
			}
		})
		if !ok {
			t.FailNow()
		}
	}

	t.Run("the real schema refuses zero partitions, and that is not retryable", func(t *testing.T) {
		_, err := s.Ensure(ctx, testSpec("shoal-events-zero", 0))
		t.Logf("refused: %v", err)
		if err == nil {
			t.Fatal("Ensure with 0 partitions succeeded; the Strimzi schema wants at least 1")
		}
		if IsUnavailable(err) {
			t.Errorf("IsUnavailable(%v) = true for a refused spec", err)
		}
		for _, want := range []string{"shoal-events-zero", "Strimzi cluster kafka/main"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
		}
	})

	t.Run("delete, then describe reports missing, delete again is fine", func(t *testing.T) {
		for i := range 2 {
			if err := s.Delete(ctx, topic); err != nil {
				t.Fatalf("Delete #%d: %v", i+1, err)
			}
		}
		if st, found, err := s.Describe(ctx, topic); err != nil || found {
			t.Errorf("Describe after Delete = %+v found=%v err=%v, want missing", st, found, err)
		}
	})

	t.Run("a KafkaTopic deleted by hand comes back", func(t *testing.T) {
		st, err := s.Ensure(ctx, spec(6))
		if err != nil || st.Partitions != 6 || st.Ready {
			t.Fatalf("Ensure after deletion = %+v, %v; want 6 partitions, not ready yet", st, err)
		}
		get(t)
	})

	// Last: it stops the API server.
	t.Run("API server down gives an unavailable error within the request timeout", func(t *testing.T) {
		short, err := NewStrimzi(env.Client, Config{
			Mode: ModeStrimzi, Strimzi: StrimziConfig{Namespace: ns, Cluster: "main"},
			RequestTimeout: metav1.Duration{Duration: 2 * time.Second},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Stop(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = short.Ensure(ctx, spec(6))
		t.Logf("API server down: Ensure failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
		if err == nil || !IsUnavailable(err) {
			t.Errorf("Ensure with the API server down: %v, want an unavailable error", err)
		}
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Errorf("Ensure took %s with the API server down, want it bounded by the 2s request timeout", elapsed)
		}
	})
}
