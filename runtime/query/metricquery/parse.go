package metricquery

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Parameter names of GET /api/v1/metrics/query.
const (
	ParamMode      = "mode"
	ParamPipeline  = "pipeline"
	ParamMetric    = "metric"
	ParamEventType = "eventType"
	ParamAggregate = "aggregate"
	ParamField     = "field"
	ParamFrom      = "from"
	ParamTo        = "to"
	ParamInterval  = "interval"
	ParamGroupBy   = "groupBy"
	ParamFilter    = "filter"
	ParamLimit     = "limit"
	ParamOrder     = "order"
)

// params lists the parameters and whether each may be repeated.
var params = map[string]bool{
	ParamMode: false, ParamPipeline: false, ParamMetric: true, ParamEventType: false,
	ParamAggregate: false, ParamField: false, ParamFrom: false, ParamTo: false,
	ParamInterval: false, ParamGroupBy: true, ParamFilter: true, ParamLimit: false, ParamOrder: false,
}

// parser collects every problem of one request instead of stopping at the first.
type parser struct {
	v    url.Values
	errs Errors
}

func (p *parser) fail(param, format string, args ...any) {
	p.errs = append(p.errs, ParamError{Param: param, Reason: fmt.Sprintf(format, args...)})
}

// one is a single-valued parameter's value, "" when absent.
func (p *parser) one(name string) string {
	vs := p.v[name]
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// list is a repeatable parameter's values, each also split at commas.
func (p *parser) list(name string) []string {
	var out []string
	for _, v := range p.v[name] {
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

// Parse reads the query parameters of a metrics query, relative times taken from now.
// The error, when not nil, is Errors: one entry per wrong parameter.
func Parse(v url.Values, now time.Time) (Query, error) {
	p := &parser{v: v}
	now = now.UTC().Truncate(time.Second)
	for _, name := range slices.Sorted(maps.Keys(v)) {
		repeatable, known := params[name]
		switch {
		case name == "":
			p.fail(`""`, "a parameter without a name")
		case !known:
			p.fail(name, "unknown parameter")
		case !repeatable && len(v[name]) > 1:
			p.fail(name, "given %d times; give it once", len(v[name]))
		}
		for _, val := range v[name] {
			if len(val) > MaxParamLen {
				p.fail(name, "longer than %d bytes", MaxParamLen)
			}
		}
	}
	if len(p.errs) > 0 {
		return Query{}, p.errs
	}

	q := Query{Mode: Mode(p.one(ParamMode))}
	switch q.Mode {
	case "":
		q.Mode = ModePipeline
		fallthrough
	case ModePipeline:
		p.pipeline(&q)
	case ModeRaw:
		p.raw(&q)
	default:
		p.fail(ParamMode, "%q is not pipeline or raw", q.Mode)
	}
	p.timeRange(&q, now)
	p.groupBy(&q)
	p.filters(&q)
	p.limit(&q)
	if len(p.errs) > 0 {
		return Query{}, p.errs
	}
	return q, nil
}

func (p *parser) pipeline(q *Query) {
	q.Pipeline = p.one(ParamPipeline)
	switch {
	case q.Pipeline == "":
		p.fail(ParamPipeline, "required in pipeline mode")
	case len(q.Pipeline) > 253 || !pipelineName.MatchString(q.Pipeline):
		p.fail(ParamPipeline, "%q is not a Pipeline name", q.Pipeline)
	}
	q.Metrics = p.list(ParamMetric)
	switch {
	case len(q.Metrics) == 0:
		p.fail(ParamMetric, "required: name one or more of the pipeline's metrics")
	case len(q.Metrics) > MaxMetrics:
		p.fail(ParamMetric, "%d metrics; at most %d", len(q.Metrics), MaxMetrics)
	}
	seen := map[string]bool{}
	for _, m := range q.Metrics {
		switch {
		case len(m) > 63 || !metricName.MatchString(m):
			p.fail(ParamMetric, "%q is not a metric name (lower case letters, digits and _)", m)
		case seen[m]:
			p.fail(ParamMetric, "%q given twice", m)
		}
		seen[m] = true
	}
	for _, name := range []string{ParamEventType, ParamAggregate, ParamField} {
		if p.v.Has(name) {
			p.fail(name, "only in raw mode (mode=raw)")
		}
	}
}

func (p *parser) raw(q *Query) {
	q.EventType = p.one(ParamEventType)
	switch {
	case q.EventType == "":
		p.fail(ParamEventType, "required in raw mode")
	case len(q.EventType) > 128:
		p.fail(ParamEventType, "longer than 128 bytes")
	}
	q.Aggregate = Aggregate(p.one(ParamAggregate))
	switch q.Aggregate {
	case "":
		q.Aggregate = AggregateCount
	case AggregateCount, AggregateUniq:
	default:
		p.fail(ParamAggregate, "%q is not count or uniq", q.Aggregate)
	}
	q.Field = p.one(ParamField)
	switch {
	case q.Aggregate == AggregateUniq && q.Field == "":
		p.fail(ParamField, "required with aggregate=uniq: the field whose distinct values are counted")
	case q.Aggregate == AggregateCount && q.Field != "":
		p.fail(ParamField, "aggregate=count takes no field")
	case q.Field != "" && !ValidField(q.Field):
		p.fail(ParamField, "%q is not event_type, user_id, session_id or properties.<key>", q.Field)
	}
	for _, name := range []string{ParamPipeline, ParamMetric} {
		if p.v.Has(name) {
			p.fail(name, "only in pipeline mode")
		}
	}
}

func (p *parser) timeRange(q *Query, now time.Time) {
	from, to := p.one(ParamFrom), p.one(ParamTo)
	var err error
	q.To = now
	if to != "" {
		if q.To, err = parseTime(to, now); err != nil {
			p.fail(ParamTo, "%v", err)
			return
		}
	}
	q.From = q.To.Add(-DefaultRange)
	if from != "" {
		if q.From, err = parseTime(from, now); err != nil {
			p.fail(ParamFrom, "%v", err)
			return
		}
	}
	q.From, q.To = q.From.UTC().Truncate(time.Second), q.To.UTC().Truncate(time.Second)
	if !q.From.Before(q.To) {
		p.fail(ParamFrom, "must be before to (%s is not before %s)", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
		return
	}
	q.Interval = Interval(p.one(ParamInterval))
	switch q.Interval {
	case "":
	case IntervalMinute, IntervalHour, IntervalDay:
		if n := q.To.Sub(q.From) / q.Interval.Duration(); n > MaxBuckets {
			p.fail(ParamInterval, "%s buckets over this range make %d points; at most %d: choose a longer interval or a shorter range", q.Interval, n, MaxBuckets)
		}
	default:
		p.fail(ParamInterval, "%q is not minute, hour or day", q.Interval)
	}
}

func (p *parser) groupBy(q *Query) {
	q.GroupBy = p.list(ParamGroupBy)
	if len(q.GroupBy) > MaxGroupBy {
		p.fail(ParamGroupBy, "%d dimensions; at most %d", len(q.GroupBy), MaxGroupBy)
	}
	seen := map[string]bool{}
	for _, f := range q.GroupBy {
		switch {
		case !ValidField(f):
			p.fail(ParamGroupBy, "%q is not event_type, user_id, session_id or properties.<key>", f)
		case seen[f]:
			p.fail(ParamGroupBy, "%q given twice", f)
		}
		seen[f] = true
	}
}

// filters reads each filter parameter as <field>:<op>:<value>. The value is everything
// after the second colon; `in` takes a comma-separated list where `\,` is a comma inside
// a value and `\\` a backslash.
func (p *parser) filters(q *Query) {
	raw := p.v[ParamFilter]
	if len(raw) > MaxFilters {
		p.fail(ParamFilter, "%d filters; at most %d", len(raw), MaxFilters)
		return
	}
	for _, s := range raw {
		f, err := parseFilter(s)
		if err != nil {
			p.fail(ParamFilter, "%v", err)
			continue
		}
		q.Filters = append(q.Filters, f)
	}
}

func parseFilter(s string) (Filter, error) {
	fieldPart, rest, ok := strings.Cut(s, ":")
	opPart, value, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return Filter{}, fmt.Errorf("%q: want <field>:<op>:<value>", s)
	}
	f := Filter{Field: fieldPart, Op: Op(opPart)}
	if !ValidField(f.Field) {
		return Filter{}, fmt.Errorf("%q: %q is not event_type, user_id, session_id or properties.<key>", s, f.Field)
	}
	switch f.Op {
	case OpIn:
		vals, err := splitEscaped(value)
		if err != nil {
			return Filter{}, fmt.Errorf("%q: %w", s, err)
		}
		f.Values = vals
	case OpEq, OpNeq, OpContains, OpGt, OpLt:
		f.Values = []string{value}
	default:
		return Filter{}, fmt.Errorf("%q: operator %q is not eq, neq, in, contains, gt or lt", s, f.Op)
	}
	if len(f.Values) == 0 || len(f.Values) > MaxFilterVals {
		return Filter{}, fmt.Errorf("%q: %d values; give 1 to %d", s, len(f.Values), MaxFilterVals)
	}
	for _, v := range f.Values {
		if len(v) > MaxValueLen {
			return Filter{}, fmt.Errorf("%q: a value is longer than %d bytes", s, MaxValueLen)
		}
	}
	if (f.Op == OpGt || f.Op == OpLt) && !isNumber(f.Values[0]) {
		return Filter{}, fmt.Errorf("%q: %s compares numbers; %q is not one", s, f.Op, f.Values[0])
	}
	return f, nil
}

// splitEscaped splits at unescaped commas.
func splitEscaped(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 == len(s) || (s[i+1] != ',' && s[i+1] != '\\') {
				return nil, fmt.Errorf(`a backslash must be followed by , or \`)
			}
			i++
			cur.WriteByte(s[i])
		case ',':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, cur.String()), nil
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil && !strings.ContainsAny(s, "xXpP_") && strings.TrimSpace(s) == s
}

func (p *parser) limit(q *Query) {
	q.Limit, q.Order = DefaultLimit, OrderDesc
	if s := p.one(ParamLimit); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			p.fail(ParamLimit, "%q is not a whole number from 1 to %d", s, MaxLimit)
		}
		q.Limit = n
	}
	switch o := Order(p.one(ParamOrder)); o {
	case "":
	case OrderDesc, OrderAsc:
		q.Order = o
	default:
		p.fail(ParamOrder, "%q is not desc or asc", o)
	}
}
