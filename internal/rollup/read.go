package rollup

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/clickhouse"
)

// The read side: a rollup (Select), the same answer straight from the events (RawSelect),
// and counts over the events outside any pipeline (EventsSelect). The three share one
// builder, so a filter, a grouping or a top-N limit means the same SQL on either source,
// and every value a caller gives is a bound parameter; identifiers come from the plan or
// the field grammar.

// Query is a read of metrics over [From, To): per bucket of one granularity, or one total
// per group, grouped by some fields, filtered, optionally only the top groups.
type Query struct {
	// Granularity is the bucket size. A rollup reads only its rows of this granularity,
	// also for a total, so From and To must then lie on its bucket boundaries.
	Granularity v1alpha1.Granularity
	// Total asks for one row per group over the whole range instead of one per bucket.
	// The raw events then take exactly the events timestamped in [From, To).
	Total bool
	// Metrics by name; all of the plan's when empty.
	Metrics []string
	// GroupBy fields: dimensions of the plan on a rollup, any field on the raw events.
	GroupBy []v1alpha1.FieldRef
	// Filters keep rows whose field compares true: see FilterCondition.
	Filters []v1alpha1.Filter
	// From is inclusive, To exclusive: the buckets starting in it, or with Total the
	// events (raw) or buckets (rollup) in it.
	From, To time.Time
	// Groups, when not empty, keeps only these groups: each holds one value per GroupBy
	// field, in order (the series of the top groups a Total query found).
	Groups [][]string
	// Limit, with Total and GroupBy, keeps the Limit groups with the largest first metric
	// (the smallest when Ascending); ties go to the smaller group values.
	Limit     int
	Ascending bool
}

// Columns are the result columns of a read, in order: the bucket (unless Bucket is false:
// a Total), the group-by fields, then the metrics (a quantile metric is an Array(Float64)
// of its levels; count and uniq are UInt64; the others Float64).
type Columns struct {
	Bucket     bool
	Dimensions []v1alpha1.FieldRef
	Metrics    []string
}

// MetricInfo describes one metric of a plan.
type MetricInfo struct {
	Name string
	Type v1alpha1.MetricType
	// Quantiles are the levels of a quantile metric, as written in the spec ("0.99").
	Quantiles []string
}

// Metric describes the plan's metric name.
func (p *Plan) Metric(name string) (MetricInfo, bool) {
	i := slices.IndexFunc(p.metrics, func(m metric) bool { return m.name == name })
	if i < 0 {
		return MetricInfo{}, false
	}
	m := p.metrics[i]
	return MetricInfo{Name: m.name, Type: m.typ, Quantiles: slices.Clone(m.quantiles)}, true
}

// HasDimension reports whether f is a dimension of the plan: a rollup can group and
// filter by it.
func (p *Plan) HasDimension(f v1alpha1.FieldRef) bool {
	return slices.ContainsFunc(p.dimensions, func(d dimension) bool { return d.field == f })
}

// FieldText is the SQL reading field f of an event as text, the one definition the
// rollup's dimensions, its uniq metrics and every read use. f must be a field reference
// (event_type, user_id, session_id or properties.<key>).
func FieldText(f v1alpha1.FieldRef) (string, error) {
	if !fieldPattern.MatchString(string(f)) {
		return "", invalid("field %q is not event_type, user_id, session_id or properties.<key>", f)
	}
	return textExpr(f), nil
}

// FilterCondition is the condition that expr, a field read as text (a dimension column
// or FieldText), compares true with f's values, which are bound parameters. gt and lt
// compare numbers: the field's text must be a number (a missing or non-numeric field
// does not match) and the value must be one. The same text is all a rollup keeps of a
// field, so a rollup and the raw events filter alike; note that unlike a pipeline's
// source filter, a JSON string holding digits ("12") compares as the number here.
func FilterCondition(expr string, f v1alpha1.Filter) (string, []any, error) {
	if f.Op == v1alpha1.FilterIn {
		if len(f.Values) == 0 {
			return "", nil, fmt.Errorf("filter on %s: in needs at least one value", f.Field)
		}
		args := make([]any, len(f.Values))
		for i, v := range f.Values {
			args[i] = v
		}
		return "(" + expr + " IN (" + placeholders(len(f.Values)) + "))", args, nil
	}
	if len(f.Values) != 1 {
		return "", nil, fmt.Errorf("filter on %s: %s takes exactly one value, got %d", f.Field, f.Op, len(f.Values))
	}
	v := f.Values[0]
	switch f.Op {
	case v1alpha1.FilterEq:
		return "(" + expr + " = ?)", []any{v}, nil
	case v1alpha1.FilterNeq:
		return "(" + expr + " != ?)", []any{v}, nil
	case v1alpha1.FilterContains:
		return "(position(" + expr + ", ?) > 0)", []any{v}, nil
	case v1alpha1.FilterGt, v1alpha1.FilterLt:
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
			return "", nil, fmt.Errorf("filter on %s: %s compares numbers; %q is not a finite one", f.Field, f.Op, v)
		}
		op := ">"
		if f.Op == v1alpha1.FilterLt {
			op = "<"
		}
		return fmt.Sprintf("(match(%s, '%s') AND toFloat64OrZero(%s) %s ?)", expr, numberPattern, expr, op), []any{n}, nil
	}
	return "", nil, fmt.Errorf("filter on %s: operator %q is not eq, neq, in, contains, gt or lt", f.Field, f.Op)
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// output is one metric column of a read.
type output struct {
	name, column, expr string
	quantile           bool
}

// source is what a read aggregates: a table, the conditions selecting its rows, how it
// reads a field and buckets time, and its metric expressions.
type source struct {
	from  string
	conds []string
	args  []any
	// field is the expression of a group-by or filter field.
	field func(v1alpha1.FieldRef) (string, error)
	// bucket is the SELECT expression of the bucket column.
	bucket string
	// timeRange is the time condition and its arguments.
	timeRange func(q Query) (string, []any)
	metrics   []output
}

func (p *Plan) outputs(names []string, merged bool) ([]output, error) {
	ms := p.metrics
	if len(names) > 0 {
		ms = nil
		for _, name := range names {
			i := slices.IndexFunc(p.metrics, func(m metric) bool { return m.name == name })
			if i < 0 {
				return nil, fmt.Errorf("%q is not a metric of this pipeline", name)
			}
			ms = append(ms, p.metrics[i])
		}
	}
	out := make([]output, len(ms))
	for i, m := range ms {
		expr := m.direct
		if merged {
			expr = fmt.Sprintf("%s(`%s`)", m.merge, m.column)
		}
		out[i] = output{name: m.name, column: m.column, expr: expr, quantile: m.typ == v1alpha1.MetricQuantile}
	}
	return out, nil
}

// build is the SELECT of q over src.
func build(src source, q Query) (clickhouse.Statement, Columns, error) {
	if !q.To.After(q.From) {
		return clickhouse.Statement{}, Columns{}, fmt.Errorf("empty time range [%s, %s)", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	if len(src.metrics) == 0 {
		return clickhouse.Statement{}, Columns{}, fmt.Errorf("no metrics to read")
	}
	var sel, group []string
	cols := Columns{Bucket: !q.Total}
	if !q.Total {
		sel = append(sel, src.bucket)
		group = append(group, "`"+BucketColumn+"`")
	}
	groupExprs := make([]string, len(q.GroupBy))
	for i, f := range q.GroupBy {
		if slices.Contains(q.GroupBy[:i], f) {
			return clickhouse.Statement{}, Columns{}, fmt.Errorf("%q is grouped by twice", f)
		}
		expr, err := src.field(f)
		if err != nil {
			return clickhouse.Statement{}, Columns{}, err
		}
		groupExprs[i] = expr
		col := "`" + DimensionColumn(f) + "`"
		if expr == col {
			sel = append(sel, col)
		} else {
			sel = append(sel, expr+" AS "+col)
		}
		group = append(group, col)
		cols.Dimensions = append(cols.Dimensions, f)
	}
	for _, m := range src.metrics {
		sel = append(sel, m.expr+" AS `"+m.column+"`")
		cols.Metrics = append(cols.Metrics, m.name)
	}

	where, args := slices.Clone(src.conds), slices.Clone(src.args)
	cond, targs := src.timeRange(q)
	where, args = append(where, cond), append(args, targs...)
	for _, f := range q.Filters {
		expr, err := src.field(f.Field)
		if err != nil {
			return clickhouse.Statement{}, Columns{}, err
		}
		cond, fargs, err := FilterCondition(expr, f)
		if err != nil {
			return clickhouse.Statement{}, Columns{}, err
		}
		where, args = append(where, cond), append(args, fargs...)
	}
	if len(q.Groups) > 0 {
		cond, gargs, err := groupsCondition(groupExprs, q.Groups)
		if err != nil {
			return clickhouse.Statement{}, Columns{}, err
		}
		where, args = append(where, cond), append(args, gargs...)
	}

	sql := fmt.Sprintf("SELECT %s FROM %s WHERE %s", strings.Join(sel, ", "), src.from, strings.Join(where, " AND "))
	// Without keys the aggregation still gives its one row, also over no events.
	if len(group) > 0 {
		sql += " GROUP BY " + strings.Join(group, ", ")
	}
	switch {
	case q.Limit > 0 && q.Total && len(q.GroupBy) > 0:
		first := "`" + src.metrics[0].column + "`"
		if src.metrics[0].quantile {
			first += "[1]"
		}
		dir := " DESC"
		if q.Ascending {
			dir = " ASC"
		}
		sql += " ORDER BY " + strings.Join(append([]string{first + dir}, group...), ", ") + fmt.Sprintf(" LIMIT %d", q.Limit)
	case len(group) > 0:
		sql += " ORDER BY " + strings.Join(group, ", ")
	}
	return clickhouse.Statement{SQL: sql, Args: args}, cols, nil
}

// groupsCondition keeps the rows of the given groups.
func groupsCondition(exprs []string, groups [][]string) (string, []any, error) {
	if len(exprs) == 0 {
		return "", nil, fmt.Errorf("groups given without group-by fields")
	}
	var args []any
	tuples := make([]string, len(groups))
	for i, g := range groups {
		if len(g) != len(exprs) {
			return "", nil, fmt.Errorf("group %d has %d values for %d group-by fields", i, len(g), len(exprs))
		}
		for _, v := range g {
			args = append(args, v)
		}
		tuples[i] = "(" + placeholders(len(g)) + ")"
	}
	if len(exprs) == 1 {
		return "(" + exprs[0] + " IN (" + placeholders(len(groups)) + "))", args, nil
	}
	return "((" + strings.Join(exprs, ", ") + ") IN (" + strings.Join(tuples, ", ") + "))", args, nil
}

// Select reads a rollup: the stored states merged per bucket (or over the range) and
// chosen dimensions. Group-by and filter fields must be dimensions, and the granularity
// one the plan keeps.
func Select(d clickhouse.Dialect, t Target, p *Plan, q Query) (clickhouse.Statement, Columns, error) {
	db, table, _, err := t.quoted()
	if err != nil {
		return clickhouse.Statement{}, Columns{}, err
	}
	if !slices.Contains(p.granularities, q.Granularity) {
		return clickhouse.Statement{}, Columns{}, fmt.Errorf("granularity %q is not kept by this pipeline (it keeps %v)", q.Granularity, p.granularities)
	}
	metrics, err := p.outputs(q.Metrics, true)
	if err != nil {
		return clickhouse.Statement{}, Columns{}, err
	}
	src := source{
		from:  db + "." + table,
		conds: []string{fmt.Sprintf("`%s` = '%s'", GranularityColumn, q.Granularity)},
		field: func(f v1alpha1.FieldRef) (string, error) {
			if !p.HasDimension(f) {
				return "", fmt.Errorf("%q is not a dimension of this pipeline", f)
			}
			return "`" + DimensionColumn(f) + "`", nil
		},
		bucket: "`" + BucketColumn + "`",
		timeRange: func(q Query) (string, []any) {
			return fmt.Sprintf("`%s` >= toDateTime(?) AND `%s` < toDateTime(?)", BucketColumn, BucketColumn), []any{q.From.Unix(), q.To.Unix()}
		},
		metrics: metrics,
	}
	return build(src, q)
}

// RawSelect computes what Select returns straight from the events table: the events a
// rollup with window w aggregates (every event the plan selects when w has no cutoff),
// aggregated in one pass over events FINAL. It verifies a rollup, and answers what no
// rollup can: a granularity it does not keep, fields that are not dimensions.
func RawSelect(d clickhouse.Dialect, database string, p *Plan, w Window, q Query) (clickhouse.Statement, Columns, error) {
	if err := clickhouse.ValidateIdentifier(database); err != nil {
		return clickhouse.Statement{}, Columns{}, err
	}
	metrics, err := p.outputs(q.Metrics, false)
	if err != nil {
		return clickhouse.Statement{}, Columns{}, err
	}
	src, err := eventsSource(database, q)
	if err != nil {
		return clickhouse.Statement{}, Columns{}, err
	}
	src.conds = []string{p.where}
	if !w.Cutoff.IsZero() {
		window := w.live()
		if w.Backfill {
			window = "(" + window + " OR (" + w.backfill() + "))"
		}
		src.conds = append(src.conds, window)
	}
	src.metrics = metrics
	return build(src, q)
}

// EventsQuery counts events of one type straight from the events table, outside any
// pipeline: all of them, or the distinct non-empty values of a field.
type EventsQuery struct {
	Query
	EventType string
	// UniqField, when set, counts its distinct non-empty values (as a pipeline's uniq
	// metric does) instead of the events.
	UniqField v1alpha1.FieldRef
}

// Metric names of an EventsQuery's one metric column.
const (
	EventsCount = "count"
	EventsUniq  = "uniq"
)

// EventsSelect is the SQL of an EventsQuery; q.Metrics is ignored. The event type is a
// bound parameter. Events are counted over events FINAL, so a duplicate the table has not
// merged away yet counts once, as in a pipeline.
func EventsSelect(d clickhouse.Dialect, database string, q EventsQuery) (clickhouse.Statement, Columns, error) {
	if err := clickhouse.ValidateIdentifier(database); err != nil {
		return clickhouse.Statement{}, Columns{}, err
	}
	if q.EventType == "" {
		return clickhouse.Statement{}, Columns{}, fmt.Errorf("no event type")
	}
	src, err := eventsSource(database, q.Query)
	if err != nil {
		return clickhouse.Statement{}, Columns{}, err
	}
	src.conds, src.args = []string{"`event_type` = ?"}, []any{q.EventType}
	m := v1alpha1.Metric{Name: EventsCount, Type: v1alpha1.MetricCount}
	if q.UniqField != "" {
		m = v1alpha1.Metric{Name: EventsUniq, Type: v1alpha1.MetricUniq, Field: q.UniqField}
	}
	cm, err := compileMetric(m)
	if err != nil {
		return clickhouse.Statement{}, Columns{}, err
	}
	src.metrics = []output{{name: cm.name, column: cm.column, expr: cm.direct}}
	return build(src, q.Query)
}

// eventsSource reads the events table FINAL; conditions and metrics are the caller's.
func eventsSource(database string, q Query) (source, error) {
	fn, ok := bucketFunc(q.Granularity)
	if !ok && !q.Total {
		return source{}, fmt.Errorf("granularity %q is not minute, hour or day", q.Granularity)
	}
	return source{
		from:   fmt.Sprintf("`%s`.`%s` FINAL", database, clickhouse.EventsTable),
		field:  FieldText,
		bucket: fn + "(`timestamp`) AS `" + BucketColumn + "`",
		timeRange: func(q Query) (string, []any) {
			if q.Total {
				return "`timestamp` >= toDateTime(?) AND `timestamp` < toDateTime(?)", []any{q.From.Unix(), q.To.Unix()}
			}
			// The buckets starting in [From, To) hold events timestamped from From (a bucket
			// starts at or before its events) to before To plus a bucket (an hour more for a
			// day longer by a time-zone change). The timestamp bounds are implied by the
			// bucket bounds; they are there for the primary key and partition pruning, which
			// cannot see through the bucket function.
			slack := granularityLength(q.Granularity) + time.Hour
			return fmt.Sprintf("`timestamp` >= toDateTime(?) AND `timestamp` < toDateTime(?) AND `%s` >= toDateTime(?) AND `%s` < toDateTime(?)", BucketColumn, BucketColumn),
				[]any{q.From.Unix(), q.To.Add(slack).Unix(), q.From.Unix(), q.To.Unix()}
		},
	}, nil
}

// granularityLength is the usual length of a bucket.
func granularityLength(g v1alpha1.Granularity) time.Duration {
	switch g {
	case v1alpha1.GranularityMinute:
		return time.Minute
	case v1alpha1.GranularityHour:
		return time.Hour
	}
	return 24 * time.Hour
}

// viewCutoff finds the live condition (Window.live) in a view's stored CREATE query, as
// the server prints it back: with or without backticks and spacing.
// WindowOf is the window of a rollup built from spec whose view has cutoff.
func WindowOf(spec v1alpha1.PipelineSpec, cutoff time.Time) Window {
	w := Window{Cutoff: cutoff, Backfill: spec.Backfill.Enabled == nil || *spec.Backfill.Enabled}
	if w.Backfill && spec.Backfill.Since != nil {
		since := spec.Backfill.Since.UTC()
		w.Since = &since
	}
	return w
}
