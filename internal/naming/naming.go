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

// topicPrefix starts every tenant topic, so the processor can subscribe to all of them
// with one pattern (TopicPattern).
const topicPrefix = "shoal-events-"

// Topic is the Kafka topic of a tenant's events. Tenant names are DNS labels, so the topic
// is also a valid Kubernetes object name (the Strimzi KafkaTopic is named after it).
func Topic(tenant string) string { return topicPrefix + tenant }

// TenantFromTopic is the tenant whose topic this is.
func TenantFromTopic(topic string) (string, bool) {
	tenant, ok := strings.CutPrefix(topic, topicPrefix)
	if !ok || tenant == "" {
		return "", false
	}
	return tenant, true
}

// TopicPattern matches every tenant topic and no other.
const TopicPattern = `^shoal-events-[a-z0-9]([-a-z0-9]*[a-z0-9])?$`

// Database is the ClickHouse database of a tenant. ClickHouse identifiers cannot hold '-',
// which tenant names can; '_' cannot appear in a tenant name, so the mapping is one to one.
func Database(tenant string) string { return "tenant_" + strings.ReplaceAll(tenant, "-", "_") }

// ClickHouseUser is the ClickHouse user limited to the tenant's database.
func ClickHouseUser(tenant string) string { return Database(tenant) }

// LakePrefix is the key prefix of a tenant's objects in the lake bucket:
// <retention-class>/tenant=<name>/, with the class lower-cased so lifecycle rules can
// match on it.
func LakePrefix(class, tenant string) string {
	return strings.ToLower(class) + "/tenant=" + tenant + "/"
}

// IngestKeySecret is the Secret in the tenant namespace holding the plaintext write key.
func IngestKeySecret(tenant string) string { return tenant + "-ingest-key" }

// ClickHouseSecret is the Secret in the tenant namespace holding the tenant's ClickHouse
// user, password, database and address, for the runtime pods.
func ClickHouseSecret(tenant string) string { return tenant + "-clickhouse" }

// DedicatedClickHouseUser is the user a Dedicated tenant's installation defines, for the
// operator and the tenant's runtime: the whole installation is the tenant's.
const DedicatedClickHouseUser = "shoal"

// ClickHouseInstallation is the name of a Dedicated tenant's Altinity installation in its
// namespace.
const ClickHouseInstallation = "clickhouse"

// PipelineFinalizer holds a Pipeline until its rollup table and view are dropped.
const PipelineFinalizer = Domain + "/pipeline-cleanup"

// maxPipelinePart bounds the readable part of a rollup name taken from the pipeline name.
const maxPipelinePart = 40

// PipelineTable is the rollup table, in the tenant's database, of one build of a
// pipeline: specHash (lower-case hex, from the pipeline's name and spec) tells builds
// apart, so a rebuild writes a new table while the old one still serves. Pipeline names
// may hold '-' and '.', which become '_'; the hash keeps names that map alike distinct.
func PipelineTable(pipeline, specHash string) string {
	part := strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, pipeline)
	if len(part) > maxPipelinePart {
		part = part[:maxPipelinePart]
	}
	return "pipeline_" + part + "_" + specHash
}

// PipelineView is the materialized view feeding PipelineTable.
func PipelineView(pipeline, specHash string) string { return PipelineTable(pipeline, specHash) + "_mv" }

// ProcessorGroup is the Kafka consumer group of the processor serving a tenant: the
// shared processor's (SharedProcessorGroup) for Shared tenants, the tenant's own for
// Dedicated ones.
func ProcessorGroup(tenant string, dedicated bool) string {
	if dedicated {
		return SharedProcessorGroup + "-" + tenant
	}
	return SharedProcessorGroup
}

// SharedProcessorGroup is the consumer group of the processor serving Shared tenants.
const SharedProcessorGroup = "shoal-process"
