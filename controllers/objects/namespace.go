// Package objects holds pure builders that turn Shoal's custom resources into the
// Kubernetes objects the reconcilers apply. They read nothing and write nothing, so every
// rule about what an object looks like is tested without an API server.
package objects

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/naming"
)

// Pod Security admission labels: tenant namespaces run only restricted pods, since tenants
// never get to choose what runs there.
const (
	podSecurityEnforce = "pod-security.kubernetes.io/enforce"
	podSecurityWarn    = "pod-security.kubernetes.io/warn"
	podSecurityLevel   = "restricted"
)

// Namespace builds a tenant's namespace: named and labelled from the naming package and
// controlled by the Tenant, so it shows up as the tenant's in `kubectl get -o yaml`.
func Namespace(t *v1alpha1.Tenant) *corev1.Namespace {
	return &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{
			Name:            naming.TenantNamespace(t.Name),
			Labels:          NamespaceLabels(t),
			OwnerReferences: []metav1.OwnerReference{tenantOwner(t)},
		},
	}
}

// NamespaceLabels are the labels a tenant namespace must carry; the reconciler restores
// them when someone removes or changes one.
func NamespaceLabels(t *v1alpha1.Tenant) map[string]string {
	labels := naming.TenantLabels(t.Name)
	labels[podSecurityEnforce] = podSecurityLevel
	labels[podSecurityWarn] = podSecurityLevel
	return labels
}

func tenantOwner(t *v1alpha1.Tenant) metav1.OwnerReference {
	controller := true
	block := true
	return metav1.OwnerReference{
		APIVersion:         v1alpha1.GroupVersion.String(),
		Kind:               "Tenant",
		Name:               t.Name,
		UID:                t.UID,
		Controller:         &controller,
		BlockOwnerDeletion: &block,
	}
}
