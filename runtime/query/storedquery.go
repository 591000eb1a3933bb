package query

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/runtime/query/metricquery"
)

// StoredQuery is a metrics query kept as JSON in a dashboard widget or an alert rule:
// the same query as GET /api/v1/metrics/query's parameters, as an object. A Dashboard
// object's widget query (pipeline, metric, groupBy, filters, interval) is one.
type StoredQuery struct {
	// Mode is "pipeline" (default) or "raw".
	Mode string `json:"mode,omitempty"`
	// Pipeline and Metric (or Metrics), in pipeline mode.
	Pipeline string   `json:"pipeline,omitempty"`
	Metric   string   `json:"metric,omitempty"`
	Metrics  []string `json:"metrics,omitempty"`
	// EventType, Aggregate (count or uniq) and Field, in raw mode.
	EventType string `json:"eventType,omitempty"`
	Aggregate string `json:"aggregate,omitempty"`
	Field     string `json:"field,omitempty"`

	GroupBy  []string       `json:"groupBy,omitempty"`
	Filters  []StoredFilter `json:"filters,omitempty"`
	Interval string         `json:"interval,omitempty"`
	Limit    int            `json:"limit,omitempty"`
	Order    string         `json:"order,omitempty"`
}

// StoredFilter is one filter: `in` takes one or more values, every other operator one.
type StoredFilter struct {
	Field  string   `json:"field"`
	Op     string   `json:"op"`
	Values []string `json:"values"`
}

// decodeStoredQuery reads a stored query, refusing unknown fields so that a typo is an
// error rather than a query for something else.
func decodeStoredQuery(raw json.RawMessage) (StoredQuery, error) {
	var q StoredQuery
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		return StoredQuery{}, metricquery.Errors{{Param: "query", Reason: "not a metrics query object: " + err.Error()}}
	}
	return q, nil
}

// Values spells the query as the parameters of GET /api/v1/metrics/query, with the time
// range from and to ("" leaves the default).
func (q StoredQuery) Values(from, to string) url.Values {
	v := url.Values{}
	set := func(name, value string) {
		if value != "" {
			v.Set(name, value)
		}
	}
	set(metricquery.ParamMode, q.Mode)
	set(metricquery.ParamPipeline, q.Pipeline)
	for _, m := range append([]string{q.Metric}, q.Metrics...) {
		if m != "" {
			v.Add(metricquery.ParamMetric, m)
		}
	}
	set(metricquery.ParamEventType, q.EventType)
	set(metricquery.ParamAggregate, q.Aggregate)
	set(metricquery.ParamField, q.Field)
	for _, g := range q.GroupBy {
		v.Add(metricquery.ParamGroupBy, g)
	}
	for _, f := range q.Filters {
		v.Add(metricquery.ParamFilter, f.Field+":"+f.Op+":"+filterValue(f))
	}
	set(metricquery.ParamInterval, q.Interval)
	if q.Limit != 0 {
		v.Set(metricquery.ParamLimit, strconv.Itoa(q.Limit))
	}
	set(metricquery.ParamOrder, q.Order)
	set(metricquery.ParamFrom, from)
	set(metricquery.ParamTo, to)
	return v
}

// filterValue is the value part of a filter parameter: `in` values joined by commas with
// commas and backslashes escaped; otherwise the one value as it is (Parse refuses any
// other count first).
func filterValue(f StoredFilter) string {
	if f.Op == string(metricquery.OpIn) {
		esc := strings.NewReplacer(`\`, `\\`, `,`, `\,`)
		parts := make([]string, len(f.Values))
		for i, s := range f.Values {
			parts[i] = esc.Replace(s)
		}
		return strings.Join(parts, ",")
	}
	if len(f.Values) == 0 {
		return ""
	}
	return f.Values[0]
}

// Parse checks the stored query and returns it as a metricquery.Query, relative times
// taken from now. Errors are metricquery.Errors naming each wrong parameter.
func (q StoredQuery) Parse(from, to string, now time.Time) (metricquery.Query, error) {
	for i, f := range q.Filters {
		if f.Op != string(metricquery.OpIn) && len(f.Values) != 1 {
			return metricquery.Query{}, metricquery.Errors{{Param: metricquery.ParamFilter,
				Reason: fmt.Sprintf("filters[%d]: %s takes exactly one value, not %d", i, f.Op, len(f.Values))}}
		}
	}
	return metricquery.Parse(q.Values(from, to), now)
}
