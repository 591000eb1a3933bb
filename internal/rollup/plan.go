// Package rollup turns a Pipeline into SQL: the AggregatingMergeTree table holding a
// pipeline's rollups, the materialized view feeding it from the tenant's events table,
// the backfill of stored events chunk by chunk, and the read side merging the rollup
// states. Every builder is a pure function of the server dialect and the spec, so the SQL
// of each server version is unit-tested without a server; Client runs it.
package rollup

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/shoal-dev/shoal/api/v1alpha1"
)

// Fixed columns of every rollup table.
const (
	// GranularityColumn says which bucket size a row aggregates (Enum8 minute/hour/day).
	GranularityColumn = "granularity"
	// BucketColumn is the start of the row's time bucket.
	BucketColumn = "bucket"
	// ChunkColumn is the backfill chunk (yyyymm of the events' timestamp) that wrote the
	// row, 0 for the materialized view. It is part of the partition key, so re-running a
	// chunk first drops exactly what its previous attempt wrote.
	ChunkColumn = "chunk"
)

// LiveChunk is the chunk value of the rows the materialized view writes.
const LiveChunk = 0

// granularityEnum is the type of the granularity column.
const granularityEnum = "Enum8('minute' = 1, 'hour' = 2, 'day' = 3)"

// Plan is a validated pipeline spec compiled into column definitions and expressions. It
// holds only SQL text derived from the spec's allow-listed grammar (field references,
// metric names, quantile decimals) and escaped literals.
type Plan struct {
	granularities []v1alpha1.Granularity
	dimensions    []dimension
	metrics       []metric
	// where selects the source events: event types and filters.
	where string
}

type dimension struct {
	field  v1alpha1.FieldRef
	column string
	expr   string
}

type metric struct {
	name   string
	typ    v1alpha1.MetricType
	column string
	// stateType is the AggregateFunction(...) column type.
	stateType string
	// state aggregates events into the state; merge combines stored states.
	state string
	merge string
	// direct aggregates events straight to the final value, as merge(state) would.
	direct string
	// quantiles are a quantile metric's levels, in spec order.
	quantiles []string
}

// fieldPattern is the FieldRef grammar (api/v1alpha1), checked again because the SQL is
// built from it.
var fieldPattern = regexp.MustCompile(`^(event_type|user_id|session_id|properties\.[A-Za-z_][A-Za-z0-9_]{0,63})$`)

var metricName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

var quantilePattern = regexp.MustCompile(`^0\.[0-9]{1,4}$`)

// numberPattern is a JSON number (or a fixed column's text holding one).
const numberPattern = `^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$`

// InvalidSpecError is a spec the SQL builders refuse. Retrying cannot help; a spec change
// can.
type InvalidSpecError struct {
	Reason string
}

func (e *InvalidSpecError) Error() string { return "invalid pipeline spec: " + e.Reason }

func invalid(format string, args ...any) error {
	return &InvalidSpecError{Reason: fmt.Sprintf(format, args...)}
}

// Compile validates spec and compiles it. Granularities default to hour, as the CRD does.
func Compile(spec v1alpha1.PipelineSpec) (*Plan, error) {
	p := &Plan{}
	grans := slices.Clone(spec.Granularities)
	if len(grans) == 0 {
		grans = []v1alpha1.Granularity{v1alpha1.GranularityHour}
	}
	for _, g := range grans {
		if _, ok := bucketFunc(g); !ok {
			return nil, invalid("granularity %q is not minute, hour or day", g)
		}
		if !slices.Contains(p.granularities, g) {
			p.granularities = append(p.granularities, g)
		}
	}
	slices.SortFunc(p.granularities, func(a, b v1alpha1.Granularity) int { return granularityRank(a) - granularityRank(b) })

	seen := map[string]bool{}
	for _, f := range spec.Dimensions {
		if !fieldPattern.MatchString(string(f)) {
			return nil, invalid("dimension %q is not event_type, user_id, session_id or properties.<key>", f)
		}
		col := DimensionColumn(f)
		if seen[col] {
			return nil, invalid("dimension %q is listed twice", f)
		}
		seen[col] = true
		p.dimensions = append(p.dimensions, dimension{field: f, column: col, expr: textExpr(f)})
	}

	if len(spec.Metrics) == 0 {
		return nil, invalid("no metrics")
	}
	for _, m := range spec.Metrics {
		cm, err := compileMetric(m)
		if err != nil {
			return nil, err
		}
		if seen[cm.column] {
			return nil, invalid("metric %q is listed twice", m.Name)
		}
		seen[cm.column] = true
		p.metrics = append(p.metrics, cm)
	}

	where, err := whereClause(spec.Source)
	if err != nil {
		return nil, err
	}
	p.where = where
	return p, nil
}

func granularityRank(g v1alpha1.Granularity) int {
	switch g {
	case v1alpha1.GranularityMinute:
		return 1
	case v1alpha1.GranularityHour:
		return 2
	}
	return 3
}

// bucketFunc is the function truncating a DateTime to the granularity. 18.16 has no
// toStartOfInterval; these three exist in every release. They use the server's time
// zone, like the events table's partitioning.
func bucketFunc(g v1alpha1.Granularity) (string, bool) {
	switch g {
	case v1alpha1.GranularityMinute:
		return "toStartOfMinute", true
	case v1alpha1.GranularityHour:
		return "toStartOfHour", true
	case v1alpha1.GranularityDay:
		return "toStartOfDay", true
	}
	return "", false
}

// DimensionColumn is the rollup column of a dimension: "properties.plan" -> "dim_properties_plan".
func DimensionColumn(f v1alpha1.FieldRef) string {
	return "dim_" + strings.ReplaceAll(string(f), ".", "_")
}

// MetricColumn is the rollup column of a metric.
func MetricColumn(name string) string { return "m_" + name }

// propertyKey is the key of a properties.<key> field, or "" for a fixed column.
func propertyKey(f v1alpha1.FieldRef) string {
	k, _ := strings.CutPrefix(string(f), "properties.")
	if k == string(f) {
		return ""
	}
	return k
}

// textExpr is a field as text. A property that is a JSON string is unescaped; any other
// JSON value (number, true, an object) is its raw JSON text; a missing one is ”.
// visitParam* functions exist in 18.16 and current releases (JSONExtract* do not exist in
// 18.16); they find the key at any nesting level, so a nested object holding the same key
// before the top-level one is read instead: keep property keys unique in an event.
func textExpr(f v1alpha1.FieldRef) string {
	k := propertyKey(f)
	if k == "" {
		return "`" + string(f) + "`"
	}
	raw := fmt.Sprintf("visitParamExtractRaw(`properties`, '%s')", k)
	return fmt.Sprintf("if(substring(%s, 1, 1) = '\"', visitParamExtractString(`properties`, '%s'), %s)", raw, k, raw)
}

// numberExpr is a field read as a number, and the condition that it is one: a property
// holding a JSON number, or a fixed column whose text is a number. Events where it is
// not are left out of the numeric aggregations (not counted as 0).
func numberExpr(f v1alpha1.FieldRef) (value, isNumber string) {
	k := propertyKey(f)
	if k == "" {
		col := "`" + string(f) + "`"
		return "toFloat64OrZero(" + col + ")", fmt.Sprintf("match(%s, '%s')", col, numberPattern)
	}
	return fmt.Sprintf("visitParamExtractFloat(`properties`, '%s')", k),
		fmt.Sprintf("match(visitParamExtractRaw(`properties`, '%s'), '%s')", k, numberPattern)
}

func compileMetric(m v1alpha1.Metric) (metric, error) {
	if !metricName.MatchString(m.Name) {
		return metric{}, invalid("metric name %q must match %s", m.Name, metricName)
	}
	out := metric{name: m.Name, typ: m.Type, column: MetricColumn(m.Name)}
	if m.Type == v1alpha1.MetricCount {
		if m.Field != "" {
			return metric{}, invalid("metric %s: count takes no field", m.Name)
		}
		out.stateType, out.state, out.merge, out.direct = "AggregateFunction(count)", "countState()", "countMerge", "count()"
		return out, nil
	}
	if !fieldPattern.MatchString(string(m.Field)) {
		return metric{}, invalid("metric %s: field %q is not event_type, user_id, session_id or properties.<key>", m.Name, m.Field)
	}
	if m.Type != v1alpha1.MetricQuantile && len(m.Quantiles) > 0 {
		return metric{}, invalid("metric %s: quantiles are only allowed on quantile metrics", m.Name)
	}
	num, isNum := numberExpr(m.Field)
	switch m.Type {
	case v1alpha1.MetricSum, v1alpha1.MetricAvg, v1alpha1.MetricMin, v1alpha1.MetricMax:
		fn := string(m.Type) + "If"
		out.stateType = fmt.Sprintf("AggregateFunction(%s, Float64, UInt8)", fn)
		out.state = fmt.Sprintf("%sState(%s, %s)", fn, num, isNum)
		out.merge = fn + "Merge"
		out.direct = fmt.Sprintf("%s(%s, %s)", fn, num, isNum)
	case v1alpha1.MetricUniq:
		// uniq is deterministic (independent of processing order) and exact below 65536
		// distinct values per cell; empty values (a missing property, an anonymous
		// user_id) are not counted.
		text := textExpr(m.Field)
		out.stateType = "AggregateFunction(uniqIf, String, UInt8)"
		out.state = fmt.Sprintf("uniqIfState(%s, %s != '')", text, text)
		out.merge = "uniqIfMerge"
		out.direct = fmt.Sprintf("uniqIf(%s, %s != '')", text, text)
	case v1alpha1.MetricQuantile:
		levels, err := quantileLevels(m)
		if err != nil {
			return metric{}, err
		}
		// quantilesDeterministic samples by a hash of event_id instead of at random, so
		// the merged states of the rollup give the same result as one aggregation over the
		// same events, whatever the order they came in; exact while a cell holds at most
		// 8192 values, a deterministic sample beyond.
		out.quantiles = slices.Clone(m.Quantiles)
		fn := "quantilesDeterministicIf(" + levels + ")"
		out.stateType = fmt.Sprintf("AggregateFunction(%s, Float64, UInt64, UInt8)", fn)
		out.state = fmt.Sprintf("quantilesDeterministicIfState(%s)(%s, cityHash64(`event_id`), %s)", levels, num, isNum)
		out.merge = "quantilesDeterministicIfMerge(" + levels + ")"
		out.direct = fmt.Sprintf("quantilesDeterministicIf(%s)(%s, cityHash64(`event_id`), %s)", levels, num, isNum)
	default:
		return metric{}, invalid("metric %s: type %q is not count, sum, avg, min, max, uniq or quantile", m.Name, m.Type)
	}
	return out, nil
}

func quantileLevels(m v1alpha1.Metric) (string, error) {
	if len(m.Quantiles) == 0 {
		return "", invalid("metric %s: a quantile metric needs quantiles", m.Name)
	}
	levels := make([]string, len(m.Quantiles))
	for i, q := range m.Quantiles {
		if !quantilePattern.MatchString(q) {
			return "", invalid("metric %s: quantile %q must be a decimal like 0.5 or 0.99", m.Name, q)
		}
		levels[i] = q
	}
	return strings.Join(levels, ", "), nil
}

// whereClause selects the source events. Values are literals (DDL cannot take bound
// parameters), escaped by quoteString.
func whereClause(src v1alpha1.PipelineSource) (string, error) {
	if len(src.EventTypes) == 0 {
		return "", invalid("no source event types")
	}
	types := make([]string, len(src.EventTypes))
	for i, t := range src.EventTypes {
		if t == "" {
			return "", invalid("empty event type")
		}
		types[i] = quoteString(t)
	}
	parts := []string{"`event_type` IN (" + strings.Join(types, ", ") + ")"}
	for i, f := range src.Filter {
		cond, err := filterExpr(f)
		if err != nil {
			return "", fmt.Errorf("filter %d: %w", i, err)
		}
		parts = append(parts, cond)
	}
	return strings.Join(parts, " AND "), nil
}

func filterExpr(f v1alpha1.Filter) (string, error) {
	if !fieldPattern.MatchString(string(f.Field)) {
		return "", invalid("field %q is not event_type, user_id, session_id or properties.<key>", f.Field)
	}
	text := textExpr(f.Field)
	if f.Op == v1alpha1.FilterIn {
		if len(f.Values) == 0 {
			return "", invalid("operator in needs at least one value")
		}
		vals := make([]string, len(f.Values))
		for i, v := range f.Values {
			vals[i] = quoteString(v)
		}
		return "(" + text + " IN (" + strings.Join(vals, ", ") + "))", nil
	}
	if len(f.Values) != 1 {
		return "", invalid("operator %s takes exactly one value, got %d", f.Op, len(f.Values))
	}
	v := f.Values[0]
	switch f.Op {
	case v1alpha1.FilterEq:
		return "(" + text + " = " + quoteString(v) + ")", nil
	case v1alpha1.FilterNeq:
		return "(" + text + " != " + quoteString(v) + ")", nil
	case v1alpha1.FilterContains:
		return "(position(" + text + ", " + quoteString(v) + ") > 0)", nil
	case v1alpha1.FilterGt, v1alpha1.FilterLt:
		op := ">"
		if f.Op == v1alpha1.FilterLt {
			op = "<"
		}
		if isNumber(v) {
			// Numerically when both sides are numbers; an event whose field is not a
			// number does not match.
			num, isNum := numberExpr(f.Field)
			// v matched numberRE, so it is a plain number literal.
			return fmt.Sprintf("(%s AND %s %s %s)", isNum, num, op, v), nil
		}
		return "(" + text + " " + op + " " + quoteString(v) + ")", nil
	}
	return "", invalid("operator %q is not eq, neq, in, contains, gt or lt", f.Op)
}

var numberRE = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

func isNumber(s string) bool { return len(s) <= 64 && numberRE.MatchString(s) }

// quoteString is a ClickHouse string literal of s. Backslash and quote are escaped, and
// every byte outside printable ASCII becomes \xHH, so no value can end the literal or
// smuggle a control character into the statement or the server's logs.
func quoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' || c == '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\x%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// Granularities are the bucket sizes the plan keeps, finest first.
func (p *Plan) Granularities() []v1alpha1.Granularity { return slices.Clone(p.granularities) }

// Dimensions are the fields the plan can group by.
func (p *Plan) Dimensions() []v1alpha1.FieldRef {
	out := make([]v1alpha1.FieldRef, len(p.dimensions))
	for i, d := range p.dimensions {
		out[i] = d.field
	}
	return out
}

// Metrics are the metric names of the plan, in spec order.
func (p *Plan) Metrics() []string {
	out := make([]string, len(p.metrics))
	for i, m := range p.metrics {
		out[i] = m.name
	}
	return out
}

// Hash identifies a pipeline's rollup: its name and spec, with sets in a canonical order
// so reordering a list does not rebuild the table. 10 hex digits: a table name stays
// short and two specs of one pipeline colliding is negligible.
func Hash(pipeline string, spec v1alpha1.PipelineSpec) string {
	s := *spec.DeepCopy()
	slices.Sort(s.Source.EventTypes)
	slices.Sort(s.Dimensions)
	slices.Sort(s.Granularities)
	if len(s.Granularities) == 0 {
		s.Granularities = []v1alpha1.Granularity{v1alpha1.GranularityHour}
	}
	slices.SortFunc(s.Metrics, func(a, b v1alpha1.Metric) int { return strings.Compare(a.Name, b.Name) })
	for i := range s.Metrics {
		slices.Sort(s.Metrics[i].Quantiles)
	}
	body, err := json.Marshal(s)
	if err != nil {
		// A struct of strings, slices and times always marshals.
		panic(fmt.Sprintf("marshaling a pipeline spec: %v", err))
	}
	sum := sha256.Sum256(append([]byte(pipeline+"\x00"), body...))
	return hex.EncodeToString(sum[:])[:10]
}
