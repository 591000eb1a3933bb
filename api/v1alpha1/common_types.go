package v1alpha1

// Condition types and reasons shared by every kind.
const (
	// ConditionReady summarises every other condition of an object: True only when the
	// object is fully reconciled, so `kubectl wait --for=condition=Ready` works.
	ConditionReady = "Ready"
)

// FieldRef names an event field: one of the fixed columns (event_type, user_id,
// session_id) or a property as `properties.<key>`. Keeping the grammar this narrow lets
// the query layer turn a field into an identifier from an allow-list, never from free text.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=80
// +kubebuilder:validation:Pattern=`^(event_type|user_id|session_id|properties\.[A-Za-z_][A-Za-z0-9_]{0,63})$`
type FieldRef string

// FilterOperator compares an event field with one or more values.
// +kubebuilder:validation:Enum=eq;neq;in;contains;gt;lt
type FilterOperator string

// Filter operators.
const (
	FilterEq       FilterOperator = "eq"
	FilterNeq      FilterOperator = "neq"
	FilterIn       FilterOperator = "in"
	FilterContains FilterOperator = "contains"
	FilterGt       FilterOperator = "gt"
	FilterLt       FilterOperator = "lt"
)

// Filter keeps the events whose field compares true with the given values.
// +kubebuilder:validation:XValidation:rule="self.op == 'in' ? size(self.values) >= 1 : size(self.values) == 1",message="operator 'in' takes one or more values; every other operator takes exactly one"
type Filter struct {
	// Field is the event field to compare: event_type, user_id, session_id or properties.<key>.
	// +required
	Field FieldRef `json:"field"`

	// Op is the comparison: eq, neq, in, contains, gt or lt.
	// +required
	Op FilterOperator `json:"op"`

	// Values to compare with. `in` takes one or more; every other operator exactly one.
	// gt and lt compare numerically when both sides are numbers.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=256
	Values []string `json:"values"`
}

// Granularity is a time bucket size for rollups and charts.
// +kubebuilder:validation:Enum=minute;hour;day
type Granularity string

// Granularities.
const (
	GranularityMinute Granularity = "minute"
	GranularityHour   Granularity = "hour"
	GranularityDay    Granularity = "day"
)
