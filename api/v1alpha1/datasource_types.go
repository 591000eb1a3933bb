package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DataSourceType is where a data source reads events from.
// +kubebuilder:validation:Enum=http;postgres;s3;webhook
type DataSourceType string

// Data source types.
const (
	DataSourceHTTP     DataSourceType = "http"
	DataSourcePostgres DataSourceType = "postgres"
	DataSourceS3       DataSourceType = "s3"
	DataSourceWebhook  DataSourceType = "webhook"
)

// DataSourceSpec describes an external source whose records become events of the tenant.
// +kubebuilder:validation:XValidation:rule="(self.type == 'http') == has(self.http)",message="the http block is required for type http and allowed only there"
// +kubebuilder:validation:XValidation:rule="(self.type == 'postgres') == has(self.postgres)",message="the postgres block is required for type postgres and allowed only there"
// +kubebuilder:validation:XValidation:rule="(self.type == 's3') == has(self.s3)",message="the s3 block is required for type s3 and allowed only there"
// +kubebuilder:validation:XValidation:rule="(self.type == 'webhook') != has(self.schedule)",message="schedule is required for polled sources (http, postgres, s3) and not allowed for webhook, which is pushed to"
// +kubebuilder:validation:XValidation:rule="self.type != 'postgres' || has(self.credentialsSecretRef)",message="postgres sources need credentialsSecretRef, a Secret holding the password"
type DataSourceSpec struct {
	// Type is http (poll a JSON API), postgres (poll a query), s3 (read new objects) or
	// webhook (receive pushed records).
	// +required
	Type DataSourceType `json:"type"`

	// Schedule is how often a polled source runs, as a cron expression ("*/5 * * * *") or
	// "@every <duration>" ("@every 15m"). Not used by webhook sources.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=100
	// +kubebuilder:validation:Pattern=`^(@every [0-9]+(s|m|h)|@hourly|@daily|(\S+\s+){4}\S+)$`
	Schedule string `json:"schedule,omitempty"`

	// CredentialsSecretRef names a Secret in the same namespace holding the source's
	// credentials (for example `password`, `token`, `accessKeyID`/`secretAccessKey`). They
	// are stored encrypted and never returned by the API.
	// +optional
	CredentialsSecretRef *SecretRef `json:"credentialsSecretRef,omitempty"`

	// HTTP configures an http source.
	// +optional
	HTTP *HTTPSource `json:"http,omitempty"`

	// Postgres configures a postgres source.
	// +optional
	Postgres *PostgresSource `json:"postgres,omitempty"`

	// S3 configures an s3 source.
	// +optional
	S3 *S3Source `json:"s3,omitempty"`

	// Mapping turns a source record into an event.
	// +required
	Mapping EventMapping `json:"mapping"`
}

// SecretRef names a Secret in the object's namespace.
type SecretRef struct {
	// Name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// HTTPSource polls a JSON API.
type HTTPSource struct {
	// URL to fetch; http or https.
	// +required
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'http' || url(self).getScheme() == 'https')",message="url must be an http or https URL"
	URL string `json:"url"`

	// RecordsPath is the dot path of the array of records in the response body; the body
	// itself when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	RecordsPath string `json:"recordsPath,omitempty"`
}

// PostgresSource polls a PostgreSQL query.
type PostgresSource struct {
	// Host of the server, with an optional port.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Host string `json:"host"`

	// Database to connect to.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Database string `json:"database"`

	// Query returns the records. It must select the cursor column and may use $1, the last
	// cursor value, to read only new rows.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Query string `json:"query"`

	// CursorColumn is the increasing column that tells which rows were already read.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	CursorColumn string `json:"cursorColumn"`
}

// S3Format is the encoding of objects read from S3.
// +kubebuilder:validation:Enum=ndjson;csv;parquet
type S3Format string

// S3Source reads new objects under a prefix.
type S3Source struct {
	// Bucket to read.
	// +required
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	Bucket string `json:"bucket"`

	// Prefix of the objects to read.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Prefix string `json:"prefix,omitempty"`

	// Region of the bucket.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Region string `json:"region,omitempty"`

	// Format of the objects: ndjson, csv or parquet.
	// +optional
	// +kubebuilder:default=ndjson
	Format S3Format `json:"format,omitempty"`
}

// EventMapping says which record fields become the event's type, time and id.
// +kubebuilder:validation:XValidation:rule="has(self.eventType) != has(self.eventTypeField)",message="set exactly one of eventType (a fixed type) and eventTypeField (read from each record)"
type EventMapping struct {
	// EventType is a fixed event_type for every record.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	EventType string `json:"eventType,omitempty"`

	// EventTypeField is the record field holding the event_type.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	EventTypeField string `json:"eventTypeField,omitempty"`

	// TimestampField is the record field holding the event time (RFC 3339 or epoch
	// milliseconds); the sync time when unset.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	TimestampField string `json:"timestampField,omitempty"`

	// IDField is the record field holding a stable id, so a record read twice becomes one
	// event. Without it, ids are derived from the record's content.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	IDField string `json:"idField,omitempty"`

	// UserIDField is the record field holding the event's user_id.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	UserIDField string `json:"userIdField,omitempty"`
}

// DataSourceStatus is the observed state of a data source.
type DataSourceStatus struct {
	// Conditions, with a Ready summary.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the spec generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// DataSourceID is the data source's id in the metadata store, set once it is synced.
	// +optional
	// +kubebuilder:validation:MaxLength=36
	DataSourceID string `json:"dataSourceID,omitempty"`

	// HasCredentials reports whether the metadata store holds credentials (sealed) for the
	// source, read from spec.credentialsSecretRef at the last sync.
	// +optional
	HasCredentials bool `json:"hasCredentials,omitempty"`
}

// Reasons of a DataSource's conditions (with those of ConditionSynced and ConditionValid).
const (
	// ReasonConfigValid and ReasonInvalidConfig are the Valid reasons of a DataSource.
	ReasonConfigValid   = "ConfigValid"
	ReasonInvalidConfig = "InvalidConfig"
	// ReasonSecretNotFound: spec.credentialsSecretRef names a Secret that does not exist.
	ReasonSecretNotFound = "SecretNotFound"
)

// DataSource is an external source of events for a tenant, kept in git in the tenant's
// namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dsrc,categories=shoal
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type DataSource struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec describes the source.
	// +required
	Spec DataSourceSpec `json:"spec"`

	// Status is the observed state of the data source, written by the operator.
	// +optional
	Status DataSourceStatus `json:"status,omitempty"`
}

// DataSourceList is a list of DataSources.
// +kubebuilder:object:root=true
type DataSourceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DataSource `json:"items"`
}
