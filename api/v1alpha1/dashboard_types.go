package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DashboardGridColumns is the width of the dashboard grid widgets are placed on.
const DashboardGridColumns = 12

// WidgetType is how a widget draws its query.
// +kubebuilder:validation:Enum=timeseries;bar;number;table;pie
type WidgetType string

// Widget types.
const (
	WidgetTimeseries WidgetType = "timeseries"
	WidgetBar        WidgetType = "bar"
	WidgetNumber     WidgetType = "number"
	WidgetTable      WidgetType = "table"
	WidgetPie        WidgetType = "pie"
)

// DashboardSpec is a dashboard kept in git and synced into the metadata store.
type DashboardSpec struct {
	// Title shown at the top of the dashboard.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=200
	Title string `json:"title"`

	// Description shown under the title.
	// +optional
	// +kubebuilder:validation:MaxLength=2000
	Description string `json:"description,omitempty"`

	// Public makes the dashboard readable without sign-in through an unguessable share
	// link. Public dashboards are read-only.
	// +optional
	// +kubebuilder:default=false
	Public bool `json:"public,omitempty"`

	// TimeRange is the default time range viewers see.
	// +optional
	// +kubebuilder:default={}
	TimeRange TimeRange `json:"timeRange,omitempty"`

	// RefreshSeconds is how often viewers' widgets reload; 0 turns auto-refresh off.
	// +optional
	// +kubebuilder:default=60
	// +kubebuilder:validation:XValidation:rule="self == 0 || (self >= 10 && self <= 86400)",message="refreshSeconds must be 0 (off) or between 10 and 86400"
	RefreshSeconds *int32 `json:"refreshSeconds,omitempty"`

	// Widgets on the dashboard's 12-column grid.
	// +optional
	// +listType=map
	// +listMapKey=id
	// +kubebuilder:validation:MaxItems=50
	Widgets []Widget `json:"widgets,omitempty"`
}

// TimeRange is a window of time: relative to now ("now-24h", "now-7d", "now") or absolute
// (RFC 3339).
// +kubebuilder:validation:XValidation:rule="!has(self.from) || !has(self.to) || self.from != self.to",message="timeRange.from and timeRange.to must differ"
type TimeRange struct {
	// From is the start: "now-<n><m|h|d|w>" or an RFC 3339 time.
	// +optional
	// +kubebuilder:default="now-24h"
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:Pattern=`^(now(-[0-9]{1,4}[mhdw])?|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))$`
	From string `json:"from,omitempty"`

	// To is the end: "now", "now-<n><m|h|d|w>" or an RFC 3339 time.
	// +optional
	// +kubebuilder:default="now"
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:Pattern=`^(now(-[0-9]{1,4}[mhdw])?|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))$`
	To string `json:"to,omitempty"`
}

// Widget is one chart or figure on a dashboard.
// +kubebuilder:validation:XValidation:rule="self.type != 'pie' || (has(self.query.groupBy) && size(self.query.groupBy) == 1)",message="pie widgets need exactly one groupBy dimension"
// +kubebuilder:validation:XValidation:rule="self.type != 'number' || !has(self.query.groupBy)",message="number widgets show a single value and take no groupBy"
type Widget struct {
	// ID identifies the widget within the dashboard; it keeps the widget's place in the
	// metadata store across edits.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	ID string `json:"id"`

	// Title shown above the widget.
	// +optional
	// +kubebuilder:validation:MaxLength=200
	Title string `json:"title,omitempty"`

	// Type is timeseries, bar, number, table or pie.
	// +required
	Type WidgetType `json:"type"`

	// Query is what the widget shows.
	// +required
	Query WidgetQuery `json:"query"`

	// Position on the 12-column grid.
	// +required
	Position WidgetPosition `json:"position"`
}

// WidgetQuery reads one metric of a Pipeline in the same namespace.
type WidgetQuery struct {
	// Pipeline is the name of a Pipeline in the dashboard's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Pipeline string `json:"pipeline"`

	// Metric is the name of one of the pipeline's metrics.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z][a-z0-9_]*$`
	Metric string `json:"metric"`

	// GroupBy lists pipeline dimensions to split the result by.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=3
	GroupBy []FieldRef `json:"groupBy,omitempty"`

	// Filters restrict the result to matching dimension values.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	Filters []Filter `json:"filters,omitempty"`

	// Interval is the time bucket of the series; one of the pipeline's granularities.
	// +optional
	// +kubebuilder:default=hour
	Interval Granularity `json:"interval,omitempty"`
}

// WidgetPosition places a widget on the dashboard grid, which is 12 columns wide. The
// fields are spelt out (not x/y/w/h) because YAML 1.1 parsers read a bare `y` as true.
// +kubebuilder:validation:XValidation:rule="self.column + self.width <= 12",message="widget does not fit the 12-column grid: column + width must be at most 12"
type WidgetPosition struct {
	// Column is the left column, from 0.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=11
	Column int32 `json:"column"`

	// Row is the top row, from 0.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Row int32 `json:"row"`

	// Width in columns.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=12
	Width int32 `json:"width"`

	// Height in rows.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=24
	Height int32 `json:"height"`
}

// DashboardStatus is the observed state of a dashboard.
type DashboardStatus struct {
	// Conditions, with a Ready summary.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the spec generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// DashboardID is the dashboard's id in the metadata store, set once it is synced.
	// +optional
	// +kubebuilder:validation:MaxLength=36
	DashboardID string `json:"dashboardID,omitempty"`

	// URL opens the dashboard: the query API's public URL followed by
	// /dashboards/<dashboardID>. Empty when the operator is not told its public URL.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	URL string `json:"url,omitempty"`

	// ShareSecret names the Secret, in the dashboard's namespace, holding the share token
	// of a public dashboard (key "token") and its link (key "url"). The token is kept out
	// of status, which everyone allowed to read the Dashboard can see. Empty while the
	// dashboard is private.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ShareSecret string `json:"shareSecret,omitempty"`
}

// Condition types of the kinds synced into the metadata store (Dashboard, DataSource).
const (
	// ConditionSynced is True when the metadata store holds the object's current spec.
	ConditionSynced = "Synced"
	// ConditionValid is True when the spec makes sense beyond the schema: a dashboard's
	// widget queries name existing pipelines, metrics, dimensions and granularities; a
	// data source's configuration is accepted by the metadata store.
	ConditionValid = "Valid"
)

// Reasons of the Synced and Valid conditions (with the shared ones: ReasonTenantNotReady,
// ReasonInvalidSpec, ReasonBackendError, ReasonBackendUnavailable).
const (
	ReasonSynced = "Synced"
	// ReasonNameTaken: the tenant already has a row of that name made through the API.
	ReasonNameTaken = "NameTaken"
	// ReasonQueriesValid and ReasonInvalidQueries are the Valid reasons of a Dashboard.
	ReasonQueriesValid   = "QueriesValid"
	ReasonInvalidQueries = "InvalidQueries"
)

// Dashboard is a set of widgets over a tenant's Pipelines, kept in git and synced into the
// metadata store. While an object owns a dashboard, the web API serves it read-only.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dash,categories=shoal
// +kubebuilder:printcolumn:name="Title",type=string,JSONPath=`.spec.title`
// +kubebuilder:printcolumn:name="Public",type=boolean,JSONPath=`.spec.public`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Dashboard struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the dashboard's content.
	// +required
	Spec DashboardSpec `json:"spec"`

	// Status is the observed state of the dashboard, written by the operator.
	// +optional
	Status DashboardStatus `json:"status,omitempty"`
}

// DashboardList is a list of Dashboards.
// +kubebuilder:object:root=true
type DashboardList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Dashboard `json:"items"`
}
