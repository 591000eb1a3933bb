// Package metricquery holds a metrics query as the API receives it: the parameters of
// GET /api/v1/metrics/query, parsed and checked into a Query whose every identifier
// matches a narrow grammar. It does not know the tenant's pipelines: whether a pipeline,
// metric or dimension exists is checked against them when the SQL is built, from
// allow-lists, so nothing here ever reaches SQL as text.
package metricquery

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Mode says what a query reads.
type Mode string

const (
	// ModePipeline reads one or more metrics of a Pipeline: from its rollup when the
	// query fits it, from the raw events otherwise.
	ModePipeline Mode = "pipeline"
	// ModeRaw counts events of one type, or distinct values of a field, straight from
	// the raw events.
	ModeRaw Mode = "raw"
)

// Aggregate is what raw mode computes.
type Aggregate string

// Raw aggregates.
const (
	AggregateCount Aggregate = "count"
	AggregateUniq  Aggregate = "uniq"
)

// Interval is a time bucket of the series.
type Interval string

// Intervals, the granularities a Pipeline can keep.
const (
	IntervalMinute Interval = "minute"
	IntervalHour   Interval = "hour"
	IntervalDay    Interval = "day"
)

// Duration is the bucket's length.
func (i Interval) Duration() time.Duration {
	switch i {
	case IntervalMinute:
		return time.Minute
	case IntervalDay:
		return 24 * time.Hour
	default:
		return time.Hour
	}
}

// Op compares a field with values.
type Op string

// Filter operators, the same as a Pipeline's.
const (
	OpEq       Op = "eq"
	OpNeq      Op = "neq"
	OpIn       Op = "in"
	OpContains Op = "contains"
	OpGt       Op = "gt"
	OpLt       Op = "lt"
)

// Filter keeps rows whose field compares true with the values.
type Filter struct {
	Field  string
	Op     Op
	Values []string
}

// Order of the groups kept by a top-N limit, by the first metric's total.
type Order string

// Orders.
const (
	OrderDesc Order = "desc"
	OrderAsc  Order = "asc"
)

// Query is a parsed, checked metrics query.
type Query struct {
	Mode Mode
	// Pipeline and Metrics, in pipeline mode.
	Pipeline string
	Metrics  []string
	// EventType, Aggregate and (for uniq) Field, in raw mode.
	EventType string
	Aggregate Aggregate
	Field     string

	// From is inclusive, To exclusive, both in UTC and whole seconds.
	From, To time.Time
	// Interval is the bucket size; empty asks for one total over the range.
	Interval Interval
	GroupBy  []string
	Filters  []Filter
	// Limit keeps the top groups by the first metric's total, in Order.
	Limit int
	Order Order
}

// Bounds of a query, so that one request cannot ask the database for everything.
const (
	MaxMetrics     = 10
	MaxGroupBy     = 3
	MaxFilters     = 10
	MaxFilterVals  = 100
	MaxValueLen    = 256
	DefaultLimit   = 100
	MaxLimit       = 1000
	MaxParamLen    = 4096
	DefaultRange   = 24 * time.Hour
	MaxBuckets     = 10000
	maxRelativeNum = 9999
)

var (
	// field is the FieldRef grammar of the API types.
	field = regexp.MustCompile(`^(event_type|user_id|session_id|properties\.[A-Za-z_][A-Za-z0-9_]{0,63})$`)
	// pipelineName is a Kubernetes object name.
	pipelineName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)
	// metricName is a Pipeline metric's name.
	metricName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	// relative is "now" or "now-<n><unit>".
	relative = regexp.MustCompile(`^now(-([0-9]{1,4})([mhdw]))?$`)
)

// ValidField reports whether s is an event field reference.
func ValidField(s string) bool { return field.MatchString(s) }

// ParamError says which parameter is wrong and why.
type ParamError struct {
	Param  string
	Reason string
}

func (e ParamError) Error() string { return e.Param + ": " + e.Reason }

// Errors are every problem found in one request, reported together.
type Errors []ParamError

func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, p := range e {
		parts[i] = p.Error()
	}
	return "invalid query: " + strings.Join(parts, "; ")
}

// parseTime reads "now", "now-<n><m|h|d|w>" or RFC 3339, relative to now.
func parseTime(s string, now time.Time) (time.Time, error) {
	if m := relative.FindStringSubmatch(s); m != nil {
		if m[1] == "" {
			return now, nil
		}
		var n int
		if _, err := fmt.Sscanf(m[2], "%d", &n); err != nil || n > maxRelativeNum {
			return time.Time{}, fmt.Errorf("%q: the number must be at most %d", s, maxRelativeNum)
		}
		unit := map[string]time.Duration{"m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[3]]
		return now.Add(-time.Duration(n) * unit), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither now, now-<n><m|h|d|w> nor an RFC 3339 time", s)
	}
	return t, nil
}
