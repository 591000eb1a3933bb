package naming

import "testing"

func TestTenantNamespace(t *testing.T) {
	for _, tc := range []struct{ tenant, want string }{
		{"acme", "tenant-acme"},
		{"a", "tenant-a"},
		{"big-co-2", "tenant-big-co-2"},
	} {
		if got := TenantNamespace(tc.tenant); got != tc.want {
			t.Errorf("TenantNamespace(%q) = %q, want %q", tc.tenant, got, tc.want)
		}
	}
}

func TestTenantLabels(t *testing.T) {
	got := TenantLabels("acme")
	if got[TenantLabel] != "acme" || got[ManagedByLabel] != ManagedByValue || len(got) != 2 {
		t.Errorf("TenantLabels(acme) = %v", got)
	}
	got[TenantLabel] = "changed"
	if TenantLabels("acme")[TenantLabel] != "acme" {
		t.Error("TenantLabels returns a shared map")
	}
}

func TestTenantFromNamespace(t *testing.T) {
	for _, tc := range []struct {
		namespace, tenant string
		ok                bool
	}{
		{"tenant-acme", "acme", true},
		{TenantNamespace("big-co"), "big-co", true},
		{"tenant-", "", false},
		{"default", "", false},
		{"kube-system", "", false},
	} {
		got, ok := TenantFromNamespace(tc.namespace)
		if got != tc.tenant || ok != tc.ok {
			t.Errorf("TenantFromNamespace(%q) = %q, %v; want %q, %v", tc.namespace, got, ok, tc.tenant, tc.ok)
		}
	}
}
