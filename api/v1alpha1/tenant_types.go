package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Isolation says whether a tenant shares the platform's ClickHouse cluster and runtime or
// gets its own.
// +kubebuilder:validation:Enum=Shared;Dedicated
type Isolation string

// Isolation modes.
const (
	// IsolationShared gives the tenant a database on the shared ClickHouse cluster and
	// serves it from the shared runtime.
	IsolationShared Isolation = "Shared"
	// IsolationDedicated gives the tenant its own ClickHouseInstallation and runtime pods.
	IsolationDedicated Isolation = "Dedicated"
)

// DeletionPolicy says what happens to a tenant's data when its Tenant is deleted.
// +kubebuilder:validation:Enum=Retain;Archive;Delete
type DeletionPolicy string

// Deletion policies.
const (
	// DeletionRetain keeps the topic, database and lake data.
	DeletionRetain DeletionPolicy = "Retain"
	// DeletionArchive exports the tenant's ClickHouse data to the lake, then drops it.
	DeletionArchive DeletionPolicy = "Archive"
	// DeletionDelete drops everything the tenant owned.
	DeletionDelete DeletionPolicy = "Delete"
)

// LakeClass is a retention class of the S3 data lake. The platform maps each class to
// bucket lifecycle rules, so the number of rules does not grow with the number of tenants.
// +kubebuilder:validation:Enum=Standard;Extended;Compliance
type LakeClass string

// Lake retention classes.
const (
	LakeStandard   LakeClass = "Standard"
	LakeExtended   LakeClass = "Extended"
	LakeCompliance LakeClass = "Compliance"
)

// TenantSpec is the desired state of a tenant.
// +kubebuilder:validation:XValidation:rule="!has(self.dedicated) || self.isolation == 'Dedicated'",message="spec.dedicated is only allowed with isolation: Dedicated"
// +kubebuilder:validation:XValidation:rule="self.isolation != 'Dedicated' || has(self.dedicated)",message="isolation: Dedicated requires spec.dedicated (ClickHouse and runtime sizing)"
type TenantSpec struct {
	// DisplayName is the tenant's human-readable name, shown in the dashboard UI and on
	// invoices.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	DisplayName string `json:"displayName"`

	// Plan names an entry of the platform's plan catalog (the operator's config file). It
	// sets rate limits, quotas and the Stripe price. Changing it re-applies the limits.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Plan string `json:"plan"`

	// Isolation is Shared (a database on the shared ClickHouse cluster, served by the
	// shared runtime) or Dedicated (its own ClickHouseInstallation and runtime pods). It
	// cannot be changed after creation.
	// +optional
	// +kubebuilder:default=Shared
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="isolation cannot be changed after creation; moving a tenant between Shared and Dedicated is a promotion, which Shoal does not support yet"
	Isolation Isolation `json:"isolation,omitempty"`

	// Owners are the e-mail addresses of the tenant's first owners. They become users with
	// the owner role and can invite others.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MaxLength=254
	// +kubebuilder:validation:items:Pattern=`^[^@\s]+@[^@\s]+\.[^@\s]+$`
	Owners []string `json:"owners"`

	// Retention says how long raw events are kept and which lake retention class holds the
	// tenant's archive.
	// +optional
	// +kubebuilder:default={}
	Retention Retention `json:"retention,omitempty"`

	// Kafka sizes the tenant's event topic.
	// +optional
	// +kubebuilder:default={}
	Kafka KafkaSpec `json:"kafka,omitempty"`

	// Dedicated sizes the tenant's own ClickHouse installation and runtime. Required with
	// isolation Dedicated and refused with Shared.
	// +optional
	Dedicated *DedicatedSpec `json:"dedicated,omitempty"`

	// Suspended stops the tenant's ingest and queries with a clear error while keeping all
	// of its data. Setting it back to false restores service.
	// +optional
	// +kubebuilder:default=false
	Suspended bool `json:"suspended,omitempty"`

	// DeletionPolicy says what happens to the tenant's data when the Tenant is deleted:
	// Retain keeps topic, database and lake data; Archive exports the database to the lake,
	// then drops it; Delete drops everything.
	// +optional
	// +kubebuilder:default=Retain
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// Retention of a tenant's data.
type Retention struct {
	// RawEventsDays is how many days raw events stay queryable in ClickHouse. Rollups of
	// Pipelines are kept independently of it.
	// +optional
	// +kubebuilder:default=90
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3650
	RawEventsDays int32 `json:"rawEventsDays,omitempty"`

	// LakeClass is the retention class of the tenant's S3 lake prefix: Standard, Extended
	// or Compliance. The platform maps each class to bucket lifecycle rules.
	// +optional
	// +kubebuilder:default=Standard
	LakeClass LakeClass `json:"lakeClass,omitempty"`
}

// KafkaSpec sizes a tenant's event topic.
type KafkaSpec struct {
	// Partitions of the tenant's topic; more partitions allow more parallel processing.
	// Partitions can be added later but never removed.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=256
	// +kubebuilder:validation:XValidation:rule="self >= oldSelf",message="kafka partitions can only grow: Kafka cannot remove partitions from a topic"
	Partitions int32 `json:"partitions,omitempty"`

	// RetentionHours is how long events stay in the topic after they were processed, for
	// replays.
	// +optional
	// +kubebuilder:default=168
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=2160
	RetentionHours int32 `json:"retentionHours,omitempty"`
}

// DedicatedSpec sizes a Dedicated tenant's own ClickHouse installation and runtime.
type DedicatedSpec struct {
	// ClickHouse sizes the tenant's ClickHouseInstallation.
	// +required
	ClickHouse DedicatedClickHouse `json:"clickhouse"`

	// Runtime sizes the tenant's ingest, process and query Deployments.
	// +optional
	// +kubebuilder:default={}
	Runtime DedicatedRuntime `json:"runtime,omitempty"`
}

// DedicatedClickHouse sizes a ClickHouseInstallation.
type DedicatedClickHouse struct {
	// Shards of the installation.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16
	Shards int32 `json:"shards,omitempty"`

	// Replicas of each shard.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=5
	Replicas int32 `json:"replicas,omitempty"`

	// Storage is the volume size of each replica, between 1Gi and 16Ti. It can grow but
	// not shrink.
	// +required
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).compareTo(quantity('1Gi')) >= 0 && quantity(string(self)).compareTo(quantity('16Ti')) <= 0",message="storage must be between 1Gi and 16Ti"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).compareTo(quantity(string(oldSelf))) >= 0",message="storage can grow but not shrink"
	Storage resource.Quantity `json:"storage"`
}

// DedicatedRuntime sizes a Dedicated tenant's runtime Deployments. Each count is the
// minimum; the autoscaler may add up to four times as many pods under load.
type DedicatedRuntime struct {
	// IngestReplicas is the minimum number of ingest pods.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=50
	IngestReplicas int32 `json:"ingestReplicas,omitempty"`

	// ProcessReplicas is the number of processor pods; more than the topic's partitions
	// leaves the extra pods idle.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=50
	ProcessReplicas int32 `json:"processReplicas,omitempty"`

	// QueryReplicas is the minimum number of query API pods.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=50
	QueryReplicas int32 `json:"queryReplicas,omitempty"`
}

// Tenant condition types, one per provisioning phase, plus Ready.
const (
	// TenantNamespaceReady is True when the tenant's namespace exists and is labelled.
	TenantNamespaceReady = "NamespaceReady"
	// TenantTopicReady is True when the tenant's Kafka topic exists and serves.
	TenantTopicReady = "TopicReady"
	// TenantDatabaseReady is True when the tenant's ClickHouse database, tables and user
	// exist (for Dedicated tenants: once their installation is Completed).
	TenantDatabaseReady = "DatabaseReady"
	// TenantStorageReady is True when the tenant's lake prefix exists.
	TenantStorageReady = "StorageReady"
	// TenantMetadataReady is True when the tenant's row, owners and ingest key are in the
	// metastore and the key Secret exists.
	TenantMetadataReady = "MetadataReady"
	// TenantBillingReady is True when the tenant's Stripe subscription is on its plan's
	// price, or when billing is off.
	TenantBillingReady = "BillingReady"
	// TenantRuntimeReady is True when the tenant is served: registered with the shared
	// runtime, or (Dedicated) its ingest, process and query Deployments are available.
	TenantRuntimeReady = "RuntimeReady"
	// TenantSuspended is True while the tenant is refused service: spec.suspended, or a
	// subscription past due, unpaid or canceled. It is not a phase: a suspended tenant
	// can be Ready.
	TenantSuspended = "Suspended"
	// TenantDataReleased is set while a tenant is deleted, True once its topic, database
	// and lake data were kept, archived or dropped as spec.deletionPolicy says.
	TenantDataReleased = "DataReleased"
)

// Tenant condition reasons. They are stable: alerts and scripts may match on them.
const (
	ReasonNamespaceCreated  = "NamespaceCreated"
	ReasonNamespaceConflict = "NamespaceConflict"
	ReasonNamespaceError    = "NamespaceError"
	ReasonNamespaceDeleting = "NamespaceTerminating"
	ReasonUnknownPlan       = "UnknownPlan"
	ReasonProvisioned       = "Provisioned"
	ReasonPhaseNotReady     = "PhaseNotReady"
	ReasonDeleting          = "Deleting"
	ReasonDeletionStuck     = "DeletionStuck"
	ReasonReconcileError    = "ReconcileError"
	// ReasonBackendUnavailable: a backend could not be reached; the reconcile retries.
	ReasonBackendUnavailable = "BackendUnavailable"
	// ReasonBackendError: a backend refused a request; the message says why.
	ReasonBackendError = "BackendError"
	// ReasonInProgress: the backend accepted the request and is still working on it.
	ReasonInProgress       = "InProgress"
	ReasonTopicReady       = "TopicReady"
	ReasonDatabaseReady    = "DatabaseReady"
	ReasonPrefixReady      = "PrefixReady"
	ReasonMetadataStored   = "MetadataStored"
	ReasonSubscribed       = "Subscribed"
	ReasonBillingDisabled  = "BillingDisabled"
	ReasonRuntimeAvailable = "RuntimeAvailable"
	ReasonRegistered       = "RegisteredWithSharedRuntime"
	ReasonWaiting          = "WaitingForDependency"
	// Suspended reasons.
	ReasonSuspendedBySpec    = "SuspendedBySpec"
	ReasonSuspendedByBilling = "SuspendedByBilling"
	ReasonActive             = "Active"
	// DataReleased reasons, one per deletion policy.
	ReasonDataRetained = "Retained"
	ReasonDataArchived = "Archived"
	ReasonDataDeleted  = "Deleted"
)

// TenantStatus is the observed state of a tenant.
type TenantStatus struct {
	// Conditions: one per provisioning phase (NamespaceReady, TopicReady, DatabaseReady,
	// StorageReady, MetadataReady, BillingReady, RuntimeReady), Suspended, and Ready,
	// which is True only when every phase is.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the spec generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Namespace is the tenant's namespace, where its Pipelines, Dashboards and DataSources
	// live.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`

	// Topic is the tenant's Kafka topic.
	// +optional
	Topic *TopicStatus `json:"topic,omitempty"`

	// Database is the tenant's ClickHouse database and how to reach it.
	// +optional
	Database *DatabaseStatus `json:"database,omitempty"`

	// Storage is where the tenant's data lake objects go.
	// +optional
	Storage *StorageStatus `json:"storage,omitempty"`

	// Endpoints are the URLs the tenant sends events to and queries.
	// +optional
	Endpoints *EndpointsStatus `json:"endpoints,omitempty"`

	// IngestKeySecret is the Secret in the tenant namespace that holds the ingest write
	// key (key "key"). Only a hash of it is stored anywhere else.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	IngestKeySecret string `json:"ingestKeySecret,omitempty"`

	// Billing is the tenant's Stripe customer and subscription.
	// +optional
	Billing *BillingStatus `json:"billing,omitempty"`
}

// TopicStatus is the tenant's Kafka topic as last observed.
type TopicStatus struct {
	// Name of the topic.
	// +required
	// +kubebuilder:validation:MaxLength=249
	Name string `json:"name"`
	// Partitions the topic has.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Partitions int32 `json:"partitions,omitempty"`
}

// DatabaseStatus is the tenant's ClickHouse database.
type DatabaseStatus struct {
	// Name of the database.
	// +required
	// +kubebuilder:validation:MaxLength=128
	Name string `json:"name"`
	// User is the ClickHouse user limited to the database.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	User string `json:"user,omitempty"`
	// Address is host:port of the ClickHouse native protocol serving the database.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Address string `json:"address,omitempty"`
	// CredentialsSecret in the tenant namespace holds user and password.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	CredentialsSecret string `json:"credentialsSecret,omitempty"`
}

// StorageStatus is where the tenant's lake data lives.
type StorageStatus struct {
	// Bucket holding every tenant's prefix.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Bucket string `json:"bucket"`
	// Prefix of the tenant's objects in the bucket, under its retention class.
	// +required
	// +kubebuilder:validation:MaxLength=1024
	Prefix string `json:"prefix"`
}

// EndpointsStatus are the tenant's service URLs.
type EndpointsStatus struct {
	// Ingest is the base URL of the ingest API (POST /api/v1/events/ingest).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Ingest string `json:"ingest,omitempty"`
	// Query is the base URL of the query API.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Query string `json:"query,omitempty"`
}

// BillingStatus is the tenant's Stripe subscription as last read.
type BillingStatus struct {
	// CustomerID is the Stripe customer (cus_...).
	// +optional
	// +kubebuilder:validation:MaxLength=255
	CustomerID string `json:"customerID,omitempty"`
	// SubscriptionID is the Stripe subscription (sub_...).
	// +optional
	// +kubebuilder:validation:MaxLength=255
	SubscriptionID string `json:"subscriptionID,omitempty"`
	// State is Stripe's subscription status (active, trialing, past_due, unpaid,
	// canceled, ...).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	State string `json:"state,omitempty"`
	// PriceID is the Stripe price the subscription bills.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	PriceID string `json:"priceID,omitempty"`
	// CurrentPeriodEnd is when the current billing period ends.
	// +optional
	CurrentPeriodEnd *metav1.Time `json:"currentPeriodEnd,omitempty"`
}

// Tenant is a customer of the analytics platform. Applying one provisions its namespace,
// event topic, ClickHouse database, lake prefix, metadata, billing and runtime.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=tnt,categories=shoal
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 56 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="tenant name must be a DNS label of at most 56 characters (lowercase letters, digits and '-'): it becomes the namespace tenant-<name>"
// +kubebuilder:printcolumn:name="Plan",type=string,JSONPath=`.spec.plan`
// +kubebuilder:printcolumn:name="Isolation",type=string,JSONPath=`.spec.isolation`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Suspended",type=string,JSONPath=`.status.conditions[?(@.type=="Suspended")].status`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.status.namespace`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Tenant struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired state of the tenant.
	// +required
	Spec TenantSpec `json:"spec"`

	// Status is the observed state of the tenant, written by the operator.
	// +optional
	Status TenantStatus `json:"status,omitempty"`
}

// TenantList is a list of Tenants.
// +kubebuilder:object:root=true
type TenantList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Tenant `json:"items"`
}
