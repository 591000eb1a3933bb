package engine

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/rollup"
	"github.com/shoal-dev/shoal/runtime/query/metricquery"
)

// row is one result row: its bucket, group values and metric values by name.
type row struct {
	bucket time.Time
	group  []string
	values map[string]float64
}

// run executes the plan: one statement, or two for a top-N with an interval.
func (e *Engine) run(ctx context.Context, p plan) (metricquery.Result, error) {
	res := metricquery.Result{Source: p.source, Series: []metricquery.Series{}}
	if !p.ranked {
		rows, err := e.read(ctx, p, p.query, &res.Stats)
		if err != nil {
			return metricquery.Result{}, err
		}
		res.Series = assemble(p, rows, nil)
		return res, nil
	}

	totals := p.query
	totals.Total = true
	top, err := e.read(ctx, p, totals, &res.Stats)
	if err != nil {
		return metricquery.Result{}, err
	}
	if p.query.Total || len(top) == 0 {
		res.Series = assemble(p, top, top)
		return res, nil
	}
	series := p.query
	series.Limit = 0
	for _, r := range top {
		series.Groups = append(series.Groups, r.group)
	}
	rows, err := e.read(ctx, p, series, &res.Stats)
	if err != nil {
		return metricquery.Result{}, err
	}
	res.Series = assemble(p, rows, top)
	return res, nil
}

// assemble makes the series: one per group, in the order of ranked when given, by group
// values otherwise; without group-by, exactly one.
func assemble(p plan, rows []row, ranked []row) []metricquery.Series {
	groupBy := p.query.GroupBy
	if len(groupBy) == 0 {
		s := metricquery.Series{Points: []metricquery.Point{}}
		for _, r := range rows {
			s.Points = append(s.Points, metricquery.Point{Time: r.bucket, Values: r.values})
		}
		return []metricquery.Series{s}
	}
	index := map[string]int{}
	var out []metricquery.Series
	add := func(g []string) int {
		k := groupKey(g)
		if i, ok := index[k]; ok {
			return i
		}
		m := make(map[string]string, len(g))
		for j, f := range groupBy {
			m[string(f)] = g[j]
		}
		index[k] = len(out)
		out = append(out, metricquery.Series{Group: m, Points: []metricquery.Point{}})
		return len(out) - 1
	}
	for _, r := range ranked {
		add(r.group)
	}
	for _, r := range rows {
		i := add(r.group)
		out[i].Points = append(out[i].Points, metricquery.Point{Time: r.bucket, Values: r.values})
	}
	if ranked == nil {
		slices.SortFunc(out, func(a, b metricquery.Series) int {
			for _, f := range groupBy {
				if c := strings.Compare(a.Group[string(f)], b.Group[string(f)]); c != 0 {
					return c
				}
			}
			return 0
		})
	}
	if out == nil {
		out = []metricquery.Series{}
	}
	return out
}

// groupKey is a map key of group values; the lengths keep ("a,b") and ("a", "b") apart.
func groupKey(g []string) string {
	var b strings.Builder
	for _, v := range g {
		fmt.Fprintf(&b, "%d:%s", len(v), v)
	}
	return b.String()
}

// read runs one read and scans its rows, adding what it cost to stats.
func (e *Engine) read(ctx context.Context, p plan, rq rollup.Query, stats *metricquery.Stats) ([]row, error) {
	st, cols, err := p.build(rq)
	if err != nil {
		// The query was checked against the plan: a builder refusing it is a bug.
		return nil, fmt.Errorf("building the metrics query: %w", err)
	}
	var out []row
	err = e.exec(ctx, st, stats, func(values []any) error {
		r := row{values: map[string]float64{}}
		i := 0
		if cols.Bucket {
			t, ok := values[0].(time.Time)
			if !ok {
				return fmt.Errorf("bucket column is %T", values[0])
			}
			r.bucket, i = t.UTC(), 1
		} else {
			r.bucket = pointTime(rq)
		}
		for range cols.Dimensions {
			s, ok := values[i].(string)
			if !ok {
				return fmt.Errorf("group column %d is %T", i, values[i])
			}
			r.group = append(r.group, s)
			i++
		}
		for _, m := range p.names {
			if err := setValues(r.values, m, values[i]); err != nil {
				return err
			}
			i++
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// setValues stores a metric column's value(s). A value that is not a finite number (the
// average or a quantile of no values) is left out: JSON has no NaN.
func setValues(dst map[string]float64, m metricNames, v any) error {
	put := func(name string, f float64) {
		if !math.IsNaN(f) && !math.IsInf(f, 0) {
			dst[name] = f
		}
	}
	switch x := v.(type) {
	case uint64:
		put(m.name, float64(x))
	case float64:
		put(m.name, x)
	case []float64:
		if len(x) != len(m.levels) {
			return fmt.Errorf("metric %s: %d quantiles for %d levels", m.name, len(x), len(m.levels))
		}
		for i, l := range m.levels {
			put(m.name+":"+l, x[i])
		}
	default:
		return fmt.Errorf("metric %s: unexpected column type %T", m.name, v)
	}
	return nil
}

// exec runs st and calls each for every row. Rows and bytes read come from the server's
// progress packets; the elapsed time is the statement's, from sending it to the last row.
func (e *Engine) exec(ctx context.Context, st clickhouse.Statement, stats *metricquery.Stats, each func([]any) error) error {
	var rowsRead, bytesRead atomic.Uint64
	opts := []ch.QueryOption{ch.WithProgress(func(p *ch.Progress) {
		rowsRead.Add(p.Rows)
		bytesRead.Add(p.Bytes)
	})}
	if dl, ok := ctx.Deadline(); ok {
		// The server stops working on the query too, not only the client waiting for it.
		secs := int(math.Ceil(time.Until(dl).Seconds()))
		opts = append(opts, ch.WithSettings(ch.Settings{"max_execution_time": max(secs, 1)}))
	}
	qctx := ch.Context(ctx, opts...)
	start := time.Now()
	defer func() {
		stats.RowsRead += rowsRead.Load()
		stats.BytesRead += bytesRead.Load()
		stats.ElapsedMS += float64(time.Since(start).Microseconds()) / 1000
	}()
	rows, err := e.conn.Query(qctx, st.SQL, st.Args...)
	if err != nil {
		return e.fail(ctx, st, err)
	}
	defer func() { _ = rows.Close() }()
	types := rows.ColumnTypes()
	ptrs := make([]reflect.Value, len(types))
	dest := make([]any, len(types))
	values := make([]any, len(types))
	for rows.Next() {
		for i, ct := range types {
			ptrs[i] = reflect.New(ct.ScanType())
			dest[i] = ptrs[i].Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			return e.fail(ctx, st, err)
		}
		for i := range ptrs {
			values[i] = ptrs[i].Elem().Interface()
		}
		if err := each(values); err != nil {
			return fmt.Errorf("reading the result of the metrics query: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return e.fail(ctx, st, err)
	}
	return nil
}
