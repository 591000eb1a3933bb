package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MetricType is an aggregation over events.
// +kubebuilder:validation:Enum=count;sum;avg;min;max;uniq;quantile
type MetricType string

// Metric types.
const (
	MetricCount    MetricType = "count"
	MetricSum      MetricType = "sum"
	MetricAvg      MetricType = "avg"
	MetricMin      MetricType = "min"
	MetricMax      MetricType = "max"
	MetricUniq     MetricType = "uniq"
	MetricQuantile MetricType = "quantile"
)

// PipelineSpec defines a metric: which events, which aggregations, by which dimensions and
// at which time granularities.
type PipelineSpec struct {
	// Source selects the events the pipeline aggregates.
	// +required
	Source PipelineSource `json:"source"`

	// Metrics are the aggregations computed per time bucket and dimension values.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	Metrics []Metric `json:"metrics"`

	// Dimensions are the event fields results can be grouped and filtered by.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=10
	Dimensions []FieldRef `json:"dimensions,omitempty"`

	// Granularities are the time bucket sizes kept: minute, hour and/or day.
	// +optional
	// +listType=set
	// +kubebuilder:default={hour}
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=3
	Granularities []Granularity `json:"granularities,omitempty"`

	// Backfill says whether events stored before the pipeline existed are aggregated too.
	// +optional
	// +kubebuilder:default={}
	Backfill Backfill `json:"backfill,omitempty"`
}

// PipelineSource selects events.
type PipelineSource struct {
	// EventTypes are the event_type values the pipeline reads.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	EventTypes []string `json:"eventTypes"`

	// Filter keeps only the events for which every filter matches.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	Filter []Filter `json:"filter,omitempty"`
}

// Metric is one aggregation.
// +kubebuilder:validation:XValidation:rule="self.type == 'count' || has(self.field)",message="field is required for sum, avg, min, max, uniq and quantile metrics"
// +kubebuilder:validation:XValidation:rule="self.type != 'count' || !has(self.field)",message="count metrics take no field"
// +kubebuilder:validation:XValidation:rule="(self.type == 'quantile') == has(self.quantiles)",message="quantiles is required for quantile metrics and allowed only there"
type Metric struct {
	// Name identifies the metric in queries and dashboards.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z][a-z0-9_]*$`
	Name string `json:"name"`

	// Type is the aggregation: count, sum, avg, min, max, uniq (distinct values) or
	// quantile.
	// +required
	Type MetricType `json:"type"`

	// Field is the event field aggregated; required for every type but count. Numeric
	// aggregations read the property as a number.
	// +optional
	Field FieldRef `json:"field,omitempty"`

	// Quantiles to compute for a quantile metric, as decimals between 0 and 1, for example
	// "0.5", "0.95", "0.99".
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=5
	// +kubebuilder:validation:items:Pattern=`^0\.[0-9]{1,4}$`
	Quantiles []string `json:"quantiles,omitempty"`
}

// Backfill of a pipeline from stored raw events.
// +kubebuilder:validation:XValidation:rule="!has(self.enabled) || self.enabled || !has(self.since)",message="backfill.since is only allowed when backfill is enabled"
type Backfill struct {
	// Enabled aggregates the raw events already stored when the pipeline is created or
	// rebuilt.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// Since limits the backfill to events at or after this time; all stored events when
	// unset.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
}

// PipelineStatus is the observed state of a pipeline.
type PipelineStatus struct {
	// Conditions, with a Ready summary.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the spec generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Database is the tenant's ClickHouse database holding the rollup tables.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Database string `json:"database,omitempty"`

	// Active is the rollup queries read: fully backfilled, fed by its view. During a
	// rebuild it is still the previous spec's, until Pending replaces it.
	// +optional
	Active *RollupStatus `json:"active,omitempty"`

	// Pending is the rollup being built (created, then backfilled) for the current spec;
	// it becomes Active once its backfill is complete.
	// +optional
	Pending *RollupStatus `json:"pending,omitempty"`

	// Retired are rollup tables replaced by a rebuild, dropped (with their views) once no
	// query can still be reading them.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	Retired []RetiredRollup `json:"retired,omitempty"`
}

// RollupStatus is one build of a pipeline's rollup: a table and the materialized view
// feeding it, for one version of the spec.
type RollupStatus struct {
	// Table is the rollup table, in status.database.
	// +required
	// +kubebuilder:validation:MaxLength=128
	Table string `json:"table"`

	// View is the materialized view feeding Table from the events table.
	// +required
	// +kubebuilder:validation:MaxLength=128
	View string `json:"view"`

	// SpecHash identifies the pipeline name and spec the rollup was built for.
	// +required
	// +kubebuilder:validation:MaxLength=64
	SpecHash string `json:"specHash"`

	// Generation is the pipeline generation the rollup was built for.
	// +optional
	Generation int64 `json:"generation,omitempty"`

	// Cutoff splits the events: the view aggregates those received at or after it, the
	// backfill those received before. Kept so a restarted operator backfills exactly what
	// the view leaves out.
	// +required
	Cutoff metav1.Time `json:"cutoff"`

	// Dimensions and Metrics the table holds: what queries may ask of it, which during a
	// rebuild may differ from the spec.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	Dimensions []FieldRef `json:"dimensions,omitempty"`
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MaxLength=63
	Metrics []string `json:"metrics,omitempty"`
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=3
	Granularities []Granularity `json:"granularities,omitempty"`

	// Backfill is the progress of the backfill of stored events.
	// +optional
	Backfill BackfillStatus `json:"backfill,omitempty"`
}

// BackfillStatus is the progress of a backfill. It runs one chunk (a month of event
// timestamps) at a time, oldest first; a chunk interrupted by a restart is redone from
// scratch, so no event is counted twice.
type BackfillStatus struct {
	// Phase is Disabled, WaitingForProcessor, Running or Complete.
	// +optional
	// +kubebuilder:validation:Enum=Disabled;WaitingForProcessor;Running;Complete
	Phase BackfillPhase `json:"phase,omitempty"`

	// TotalChunks is the number of chunks, once known.
	// +optional
	TotalChunks int32 `json:"totalChunks,omitempty"`

	// CompletedChunks is the number of chunks done.
	// +optional
	CompletedChunks int32 `json:"completedChunks,omitempty"`

	// LastChunk is the last chunk done, as YYYY-MM; the next one is later.
	// +optional
	// +kubebuilder:validation:MaxLength=7
	LastChunk string `json:"lastChunk,omitempty"`

	// Events is the number of stored events aggregated so far.
	// +optional
	Events int64 `json:"events,omitempty"`

	// CompletedAt is when the backfill finished.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
}

// BackfillPhase is where a backfill is.
type BackfillPhase string

// Backfill phases.
const (
	BackfillDisabled            BackfillPhase = "Disabled"
	BackfillWaitingForProcessor BackfillPhase = "WaitingForProcessor"
	BackfillRunning             BackfillPhase = "Running"
	BackfillComplete            BackfillPhase = "Complete"
)

// RetiredRollup is a replaced rollup waiting to be dropped.
type RetiredRollup struct {
	// Table and View to drop.
	// +required
	// +kubebuilder:validation:MaxLength=128
	Table string `json:"table"`
	// +required
	// +kubebuilder:validation:MaxLength=128
	View string `json:"view"`
	// Since is when it was replaced; it is dropped a grace period later.
	// +required
	Since metav1.Time `json:"since"`
}

// Pipeline condition types.
const (
	// PipelineTableReady: the rollup table and view of the current spec exist.
	PipelineTableReady = "TableReady"
	// PipelineBackfillComplete: the current spec's rollup holds the stored events too
	// (or backfill is disabled).
	PipelineBackfillComplete = "BackfillComplete"
)

// Pipeline condition reasons (with the shared ones: ReasonBackendError,
// ReasonBackendUnavailable, ReasonInProgress).
const (
	ReasonTenantNotReady      = "TenantNotReady"
	ReasonInvalidSpec         = "InvalidSpec"
	ReasonTableCreated        = "TableCreated"
	ReasonWaitingForProcessor = "WaitingForProcessor"
	ReasonBackfilling         = "Backfilling"
	ReasonBackfilled          = "Backfilled"
	ReasonBackfillDisabled    = "BackfillDisabled"
	ReasonRebuilding          = "Rebuilding"
	ReasonServing             = "Serving"
)

// Pipeline is a metric definition in a tenant's namespace. It becomes a rollup table and a
// materialized view in the tenant's ClickHouse database, backfilled from raw events.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pipe,categories=shoal
// +kubebuilder:printcolumn:name="Event Types",type=string,JSONPath=`.spec.source.eventTypes`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Table",type=string,JSONPath=`.status.active.table`
// +kubebuilder:printcolumn:name="Backfill",type=string,JSONPath=`.status.pending.backfill.phase`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Pipeline struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the metric definition.
	// +required
	Spec PipelineSpec `json:"spec"`

	// Status is the observed state of the pipeline, written by the operator.
	// +optional
	Status PipelineStatus `json:"status,omitempty"`
}

// PipelineList is a list of Pipelines.
// +kubebuilder:object:root=true
type PipelineList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Pipeline `json:"items"`
}
