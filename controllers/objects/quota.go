package objects

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/naming"
)

// Names of the namespace guard objects.
const (
	ResourceQuotaName = "shoal-plan-quota"
	NetworkPolicyName = "shoal-tenant-isolation"
)

// ResourceQuota bounds what the tenant namespace may run, from the tenant's plan.
func ResourceQuota(t *v1alpha1.Tenant, plan config.Plan) *corev1.ResourceQuota {
	q := plan.Quota
	return &corev1.ResourceQuota{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ResourceQuota"},
		ObjectMeta: childMeta(t, ResourceQuotaName),
		Spec: corev1.ResourceQuotaSpec{
			Hard: corev1.ResourceList{
				corev1.ResourceRequestsCPU:     q.CPU,
				corev1.ResourceRequestsMemory:  q.Memory,
				corev1.ResourceLimitsMemory:    q.Memory,
				corev1.ResourcePods:            *resource.NewQuantity(q.Pods, resource.DecimalSI),
				corev1.ResourceRequestsStorage: q.Storage,
			},
		},
	}
}

// NetworkPolicy isolates the tenant namespace: pods accept traffic from their own
// namespace and from the platform's namespace only; the ingest and query pods of a
// Dedicated tenant are reached through the platform's ingress, which runs there.
// Egress is left open: the runtime talks to Kafka, ClickHouse and S3 wherever they are.
func NetworkPolicy(t *v1alpha1.Tenant, platformNamespace string) *networkingv1.NetworkPolicy {
	peers := []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}
	if platformNamespace != "" {
		peers = append(peers, networkingv1.NetworkPolicyPeer{
			NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: platformNamespace},
			},
		})
	}
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: childMeta(t, NetworkPolicyName),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: peers}},
		},
	}
}

// childMeta is the metadata of an object the tenant owns in its namespace.
func childMeta(t *v1alpha1.Tenant, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:            name,
		Namespace:       naming.TenantNamespace(t.Name),
		Labels:          naming.TenantLabels(t.Name),
		OwnerReferences: []metav1.OwnerReference{tenantOwner(t)},
	}
}
