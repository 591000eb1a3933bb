// Package naming derives the name of everything Shoal creates for a tenant (namespace,
// labels, finalizers and, as later phases arrive, topics, databases and lake prefixes)
// so every component agrees on them.
package naming

import "strings"

const (
	// Domain prefixes Shoal's labels, annotations and finalizers.
	Domain = "analytics.shoal.dev"

	// TenantLabel is set on everything created for a tenant; its value is the tenant name.
	TenantLabel = Domain + "/tenant"

	// ManagedByLabel marks objects the operator manages.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of ManagedByLabel.
	ManagedByValue = "shoal"

	// TenantFinalizer holds a Tenant until what it owns is cleaned up.
	TenantFinalizer = Domain + "/tenant-cleanup"

	// tenantNamespacePrefix is put before the tenant name to form its namespace.
	tenantNamespacePrefix = "tenant-"
)

// TenantNamespace is the namespace that holds a tenant's objects.
func TenantNamespace(tenant string) string {
	return tenantNamespacePrefix + tenant
}

// TenantLabels are the labels of every object created for a tenant.
func TenantLabels(tenant string) map[string]string {
	return map[string]string{
		TenantLabel:    tenant,
		ManagedByLabel: ManagedByValue,
	}
}

// TenantFromNamespace returns the tenant whose namespace name this is.
func TenantFromNamespace(namespace string) (string, bool) {
	tenant, ok := strings.CutPrefix(namespace, tenantNamespacePrefix)
	if !ok || tenant == "" {
		return "", false
	}
	return tenant, true
}
