package objects

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/naming"
)

func TestNamespace(t *testing.T) {
	tenant := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme", UID: "uid-1"}}
	ns := Namespace(tenant)

	if ns.Name != "tenant-acme" {
		t.Errorf("name = %q, want tenant-acme", ns.Name)
	}
	for key, want := range map[string]string{
		naming.TenantLabel:                   "acme",
		naming.ManagedByLabel:                naming.ManagedByValue,
		"pod-security.kubernetes.io/enforce": "restricted",
	} {
		if got := ns.Labels[key]; got != want {
			t.Errorf("label %s = %q, want %q", key, got, want)
		}
	}
	if len(ns.OwnerReferences) != 1 {
		t.Fatalf("owner references = %v, want one", ns.OwnerReferences)
	}
	ref := ns.OwnerReferences[0]
	if ref.Kind != "Tenant" || ref.Name != "acme" || ref.UID != "uid-1" || ref.APIVersion != "analytics.shoal.dev/v1alpha1" {
		t.Errorf("owner reference = %+v", ref)
	}
	if ref.Controller == nil || !*ref.Controller {
		t.Error("owner reference is not the controller reference")
	}
}
