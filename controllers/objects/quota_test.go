package objects

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/naming"
)

func TestResourceQuota(t *testing.T) {
	tenant := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme", UID: "u"}}
	plan := config.Plan{Name: "team", Quota: config.Quota{
		CPU: resource.MustParse("8"), Memory: resource.MustParse("16Gi"), Pods: 30, Storage: resource.MustParse("200Gi"),
	}}
	q := ResourceQuota(tenant, plan)
	if q.Namespace != "tenant-acme" || q.Name != ResourceQuotaName || q.Labels[naming.TenantLabel] != "acme" {
		t.Errorf("metadata = %+v", q.ObjectMeta)
	}
	for name, want := range map[corev1.ResourceName]string{
		corev1.ResourceRequestsCPU:     "8",
		corev1.ResourceRequestsMemory:  "16Gi",
		corev1.ResourceLimitsMemory:    "16Gi",
		corev1.ResourcePods:            "30",
		corev1.ResourceRequestsStorage: "200Gi",
	} {
		got := q.Spec.Hard[name]
		if got.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("hard[%s] = %s, want %s", name, got.String(), want)
		}
	}
	if !metav1.IsControlledBy(q, tenant) {
		t.Error("quota is not controlled by the tenant")
	}
}

func TestNetworkPolicy(t *testing.T) {
	tenant := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}}
	for _, tc := range []struct {
		name, platformNamespace string
		wantPeers               int
	}{
		{"with platform namespace", "shoal-system", 2},
		{"own namespace only", "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			np := NetworkPolicy(tenant, tc.platformNamespace)
			if np.Namespace != "tenant-acme" || len(np.Spec.Ingress) != 1 {
				t.Fatalf("policy = %+v", np)
			}
			peers := np.Spec.Ingress[0].From
			if len(peers) != tc.wantPeers {
				t.Fatalf("peers = %+v, want %d", peers, tc.wantPeers)
			}
			if peers[0].PodSelector == nil || len(peers[0].PodSelector.MatchLabels) != 0 || peers[0].NamespaceSelector != nil {
				t.Errorf("first peer should be every pod of the same namespace: %+v", peers[0])
			}
			if tc.wantPeers == 2 && peers[1].NamespaceSelector.MatchLabels[corev1.LabelMetadataName] != tc.platformNamespace {
				t.Errorf("platform peer = %+v", peers[1])
			}
		})
	}
}
