package objects

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/config"
)

func dedicatedTenant() *v1alpha1.Tenant {
	return &v1alpha1.Tenant{
		ObjectMeta: metav1.ObjectMeta{Name: "globex", UID: "u1"},
		Spec: v1alpha1.TenantSpec{
			Isolation: v1alpha1.IsolationDedicated,
			Dedicated: &v1alpha1.DedicatedSpec{
				ClickHouse: v1alpha1.DedicatedClickHouse{Shards: 2, Replicas: 3, Storage: resource.MustParse("50Gi")},
				Runtime:    v1alpha1.DedicatedRuntime{IngestReplicas: 3, ProcessReplicas: 4, QueryReplicas: 2},
			},
		},
	}
}

func testRuntime() config.Runtime {
	p := &config.Platform{}
	p.Default()
	return p.Runtime
}

func TestRuntimeDeployment(t *testing.T) {
	tenant := dedicatedTenant()
	for _, tc := range []struct {
		role         RuntimeRole
		wantReplicas *int32
		wantPorts    []string
	}{
		{RoleIngest, nil, []string{"http", "health"}},
		{RoleProcess, ptr(int32(4)), []string{"health"}},
		{RoleQuery, nil, []string{"http", "health"}},
	} {
		t.Run(string(tc.role), func(t *testing.T) {
			d := RuntimeDeployment(tenant, tc.role, testRuntime())
			if d.Name != "shoal-"+string(tc.role) || d.Namespace != "tenant-globex" || !metav1.IsControlledBy(d, tenant) {
				t.Errorf("metadata = %+v", d.ObjectMeta)
			}
			switch {
			case tc.wantReplicas == nil && d.Spec.Replicas != nil:
				t.Errorf("replicas = %d, want unset (the autoscaler owns it)", *d.Spec.Replicas)
			case tc.wantReplicas != nil && (d.Spec.Replicas == nil || *d.Spec.Replicas != *tc.wantReplicas):
				t.Errorf("replicas = %v, want %d", d.Spec.Replicas, *tc.wantReplicas)
			}
			sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("selector %v does not match the pod labels %v", d.Spec.Selector, d.Spec.Template.Labels)
			}
			c := d.Spec.Template.Spec.Containers[0]
			if !slices.Equal(c.Args, []string{string(tc.role), "--tenant", "globex"}) || c.Image != "shoal:latest" {
				t.Errorf("container = %s %v", c.Image, c.Args)
			}
			var ports []string
			for _, p := range c.Ports {
				ports = append(ports, p.Name)
			}
			if !slices.Equal(ports, tc.wantPorts) {
				t.Errorf("ports = %v, want %v", ports, tc.wantPorts)
			}
			sc := c.SecurityContext
			if sc == nil || *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
				t.Errorf("container security context is not restricted: %+v", sc)
			}
			if c.Resources.Requests.Cpu().IsZero() {
				t.Error("no CPU request: the autoscaler needs one")
			}
		})
	}
}

func TestRuntimeAutoscalerAndBudget(t *testing.T) {
	tenant := dedicatedTenant()
	for _, tc := range []struct {
		role     RuntimeRole
		min, max int32
	}{
		{RoleIngest, 3, 12},
		{RoleQuery, 2, 8},
	} {
		hpa := RuntimeAutoscaler(tenant, tc.role)
		if *hpa.Spec.MinReplicas != tc.min || hpa.Spec.MaxReplicas != tc.max || hpa.Spec.ScaleTargetRef.Name != RuntimeName(tc.role) {
			t.Errorf("%s autoscaler = min %d max %d target %s", tc.role, *hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas, hpa.Spec.ScaleTargetRef.Name)
		}
		pdb := RuntimeDisruptionBudget(tenant, tc.role)
		if pdb.Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("%s budget maxUnavailable = %v", tc.role, pdb.Spec.MaxUnavailable)
		}
		svc := RuntimeService(tenant, tc.role)
		if svc.Spec.Selector["app.kubernetes.io/component"] != string(tc.role) || svc.Spec.Ports[0].Port != 80 {
			t.Errorf("%s service = %+v", tc.role, svc.Spec)
		}
	}
	if got := RuntimeEndpoint(tenant, RoleIngest); got != "http://shoal-ingest.tenant-globex.svc" {
		t.Errorf("endpoint = %s", got)
	}
	if RoleProcess.Serves() || !RoleIngest.Serves() || !RoleQuery.Serves() {
		t.Error("Serves: only ingest and query answer requests")
	}
}

func TestClickHouseInstallationSize(t *testing.T) {
	chi := ClickHouseInstallation(dedicatedTenant())
	if chi.GetNamespace() != "tenant-globex" || chi.GetName() != "clickhouse" || chi.GetKind() != "ClickHouseInstallation" {
		t.Errorf("identity = %s %s/%s", chi.GetKind(), chi.GetNamespace(), chi.GetName())
	}
	clusters := chi.Object["spec"].(map[string]any)["configuration"].(map[string]any)["clusters"].([]any)
	layout := clusters[0].(map[string]any)["layout"].(map[string]any)
	if layout["shardsCount"] != int64(2) || layout["replicasCount"] != int64(3) {
		t.Errorf("layout = %v", layout)
	}
}

func ptr[T any](v T) *T { return &v }
