package controllers

import (
	"context"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/controllers/objects"
	"github.com/shoal-dev/shoal/internal/naming"
)

// TestClickHouseInstallationMatchesUpstreamSchema applies the installation built for the
// Dedicated sample to an API server that has the Altinity CRD, so a field the real schema
// does not know, or of the wrong type, fails here.
func TestClickHouseInstallationMatchesUpstreamSchema(t *testing.T) {
	if len(env.UpstreamCRDs) == 0 {
		t.Skip("the upstream Altinity CRD is not beside the repository (../shared/crds)")
	}
	ctx := context.Background()
	tenant := dedicatedSampleWithNamespace(t, "chi-schema")

	chi := objects.ClickHouseInstallation(tenant)
	// Owner references to a tenant that does not exist are fine for the schema check.
	if err := apply(ctx, env.Client, chi); err != nil {
		t.Fatalf("the Altinity schema refused the installation: %v", err)
	}
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(objects.ClickHouseInstallationGVK)
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(chi), got); err != nil {
		t.Fatal(err)
	}
	clusters, _, _ := unstructured.NestedSlice(got.Object, "spec", "configuration", "clusters")
	if len(clusters) != 1 {
		t.Fatalf("clusters = %v", clusters)
	}
	layout := clusters[0].(map[string]any)["layout"].(map[string]any)
	if layout["shardsCount"] != int64(2) || layout["replicasCount"] != int64(2) {
		t.Errorf("layout = %v, want the sample's 2 shards x 2 replicas", layout)
	}
	storage, _, _ := unstructured.NestedSlice(got.Object, "spec", "templates", "volumeClaimTemplates")
	req := storage[0].(map[string]any)["spec"].(map[string]any)["resources"].(map[string]any)["requests"].(map[string]any)
	if req["storage"] != "500Gi" {
		t.Errorf("storage request = %v, want 500Gi", req["storage"])
	}
	if done, _ := objects.ClickHouseInstallationCompleted(got); done {
		t.Error("a fresh installation reads as Completed")
	}
	if err := unstructured.SetNestedField(got.Object, "Completed", "status", "status"); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Status().Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(chi), got); err != nil {
		t.Fatal(err)
	}
	if done, status := objects.ClickHouseInstallationCompleted(got); !done {
		t.Errorf("after the status update: completed = false (%q)", status)
	}
}

// TestRuntimeObjectsAccepted applies every runtime object built for the Dedicated sample
// to the API server, which validates Deployments, Services, autoscalers and budgets.
func TestRuntimeObjectsAccepted(t *testing.T) {
	ctx := context.Background()
	tenant := dedicatedSampleWithNamespace(t, "runtime-schema")

	rt := testPlatform().Runtime
	for _, role := range objects.RuntimeRoles() {
		built := []client.Object{objects.RuntimeDeployment(tenant, role, rt, objects.RuntimeFiles{Hash: "h", Credentials: true}), objects.RuntimeDisruptionBudget(tenant, role)}
		if role.Serves() {
			built = append(built, objects.RuntimeService(tenant, role), objects.RuntimeAutoscaler(tenant, role))
		}
		for _, obj := range built {
			if err := apply(ctx, env.Client, obj); err != nil {
				t.Errorf("%s: %v", role, err)
			}
		}
	}
}

// dedicatedSampleWithNamespace returns the Dedicated sample renamed, with its namespace
// made by hand (no Tenant object exists, so no controller acts on it); the namespace is
// deleted when the test ends.
func dedicatedSampleWithNamespace(t *testing.T, name string) *v1alpha1.Tenant {
	t.Helper()
	ctx := context.Background()
	objs, err := env.DecodeFile(filepath.Join(env.Root, "config", "samples", "analytics_v1alpha1_tenant_dedicated.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tenant := objs[0].(*v1alpha1.Tenant)
	tenant.Name = name
	tenant.UID = types.UID("uid-" + name)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: naming.TenantNamespace(name)}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), ns) })
	return tenant
}
