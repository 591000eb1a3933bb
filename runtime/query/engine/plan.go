package engine

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/rollup"
	"github.com/shoal-dev/shoal/runtime/query/metricquery"
)

// metricNames names the values of one metric column: the metric's name, or one
// "<name>:<level>" per level of a quantile metric.
type metricNames struct {
	name   string
	levels []string
}

// plan is how a query is answered: the source, the read, and the builder of its SQL.
type plan struct {
	source metricquery.Source
	names  []metricNames
	query  rollup.Query
	// ranked: a top-N over groups. The totals per group are read first, ordered and
	// limited; with an interval, the series of the groups kept are read next.
	ranked bool
	build  func(rollup.Query) (clickhouse.Statement, rollup.Columns, error)
}

// choice is the source a pipeline query is read from, and the read.
type choice struct {
	source metricquery.Source
	query  rollup.Query
	ranked bool
}

// readQuery is the read of q. With an interval, the range is widened to whole buckets
// (UTC): from the start of the bucket holding From to the end of the one holding the
// last second before To, so a top-N ranks exactly the buckets shown and the first bucket
// is whole. Without one, the range is q's, exactly.
func readQuery(q metricquery.Query) (rollup.Query, bool) {
	rq := rollup.Query{Metrics: slices.Clone(q.Metrics), From: q.From, To: q.To}
	for _, f := range q.GroupBy {
		rq.GroupBy = append(rq.GroupBy, v1alpha1.FieldRef(f))
	}
	for _, f := range q.Filters {
		rq.Filters = append(rq.Filters, v1alpha1.Filter{Field: v1alpha1.FieldRef(f.Field), Op: v1alpha1.FilterOperator(f.Op), Values: slices.Clone(f.Values)})
	}
	if q.Interval == "" {
		rq.Total = true
	} else {
		d := q.Interval.Duration()
		rq.Granularity = v1alpha1.Granularity(q.Interval)
		rq.From = q.From.Truncate(d)
		if rq.To = q.To.Truncate(d); rq.To.Before(q.To) {
			rq.To = rq.To.Add(d)
		}
	}
	ranked := len(q.GroupBy) > 0 && q.Limit > 0
	if ranked {
		rq.Limit, rq.Ascending = q.Limit, q.Order == metricquery.OrderAsc
	}
	return rq, ranked
}

// choose picks the rollup when one is ready and the query fits it: every group-by and
// filter field a dimension, and the interval a granularity it keeps, or, for a total,
// a range whose ends lie on the boundaries of a granularity it keeps (the coarsest such
// one: fewest rows to merge). Anything else reads the raw events.
func choose(p *rollup.Plan, rollupReady bool, q metricquery.Query) choice {
	rq, ranked := readQuery(q)
	raw := choice{source: metricquery.SourceRaw, query: rq, ranked: ranked}
	if !rollupReady {
		return raw
	}
	for _, f := range rq.GroupBy {
		if !p.HasDimension(f) {
			return raw
		}
	}
	for _, f := range rq.Filters {
		if !p.HasDimension(f.Field) {
			return raw
		}
	}
	grans := p.Granularities()
	if !rq.Total {
		if !slices.Contains(grans, rq.Granularity) {
			return raw
		}
		return choice{source: metricquery.SourceRollup, query: rq, ranked: ranked}
	}
	for _, g := range slices.Backward(grans) {
		d := metricquery.Interval(g).Duration()
		if rq.From.Truncate(d).Equal(rq.From) && rq.To.Truncate(d).Equal(rq.To) {
			rq.Granularity = g
			return choice{source: metricquery.SourceRollup, query: rq, ranked: ranked}
		}
	}
	return raw
}

// checkMetrics checks the query's metrics against the pipeline's, naming every unknown
// one, and returns the names of their values.
func checkMetrics(p *rollup.Plan, q metricquery.Query) ([]metricNames, error) {
	var errs metricquery.Errors
	var out []metricNames
	for _, name := range q.Metrics {
		info, ok := p.Metric(name)
		if !ok {
			errs = append(errs, metricquery.ParamError{Param: metricquery.ParamMetric,
				Reason: fmt.Sprintf("%q is not a metric of pipeline %q (it has %s)", name, q.Pipeline, strings.Join(p.Metrics(), ", "))})
			continue
		}
		out = append(out, metricNames{name: name, levels: info.Quantiles})
	}
	if len(q.Metrics) == 0 {
		errs = append(errs, metricquery.ParamError{Param: metricquery.ParamMetric, Reason: "required: name one or more of the pipeline's metrics"})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// checkFilters refuses what the SQL cannot compare: gt and lt need a finite number.
func checkFilters(q metricquery.Query) error {
	var errs metricquery.Errors
	for _, f := range q.Filters {
		if f.Op != metricquery.OpGt && f.Op != metricquery.OpLt {
			continue
		}
		if len(f.Values) != 1 {
			errs = append(errs, metricquery.ParamError{Param: metricquery.ParamFilter, Reason: fmt.Sprintf("%s:%s takes one value", f.Field, f.Op)})
			continue
		}
		if n, err := strconv.ParseFloat(f.Values[0], 64); err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
			errs = append(errs, metricquery.ParamError{Param: metricquery.ParamFilter, Reason: fmt.Sprintf("%s:%s compares finite numbers; %q is not one", f.Field, f.Op, f.Values[0])})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// pointTime is the time of a total's one point: the range's start.
func pointTime(rq rollup.Query) time.Time { return rq.From.UTC() }
