package rollup

import (
	"reflect"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/clickhouse"
)

func readSpec() v1alpha1.PipelineSpec {
	s := smallSpec()
	s.Dimensions = []v1alpha1.FieldRef{"user_id", "properties.plan"}
	return s
}

// TestReadSQL pins the SQL of each kind of read, the same on 18.16 and 24.8: values bound
// in order, identifiers from the plan.
func TestReadSQL(t *testing.T) {
	p := mustCompile(t, readSpec())
	from, to := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)
	f, tt := from.Unix(), to.Unix()
	plan := "if(substring(visitParamExtractRaw(`properties`, 'plan'), 1, 1) = '\"', visitParamExtractString(`properties`, 'plan'), visitParamExtractRaw(`properties`, 'plan'))"
	number := "'^-?[0-9]+(\\\\.[0-9]+)?([eE][-+]?[0-9]+)?$'"
	filters := []v1alpha1.Filter{
		{Field: "properties.plan", Op: v1alpha1.FilterIn, Values: []string{"a", "b'"}},
		{Field: "user_id", Op: v1alpha1.FilterGt, Values: []string{"2.5"}},
	}
	cutoff := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	type build func(d clickhouse.Dialect) (clickhouse.Statement, Columns, error)
	for _, tc := range []struct {
		name  string
		build build
		sql   string
		args  []any
		cols  Columns
	}{
		{
			name: "rollup total, filtered, top 5",
			build: func(d clickhouse.Dialect) (clickhouse.Statement, Columns, error) {
				return Select(d, target, p, Query{Granularity: "day", Total: true, Metrics: []string{"p", "n"}, GroupBy: []v1alpha1.FieldRef{"properties.plan"}, Filters: filters, From: from, To: to, Limit: 5})
			},
			sql: "SELECT `dim_properties_plan`, quantilesDeterministicIfMerge(0.5, 0.99)(`m_p`) AS `m_p`, countMerge(`m_n`) AS `m_n` " +
				"FROM `tenant_acme`.`pipeline_rev_0123456789` WHERE `granularity` = 'day' AND `bucket` >= toDateTime(?) AND `bucket` < toDateTime(?) " +
				"AND (`dim_properties_plan` IN (?, ?)) AND (match(`dim_user_id`, " + number + ") AND toFloat64OrZero(`dim_user_id`) > ?) " +
				"GROUP BY `dim_properties_plan` ORDER BY `m_p`[1] DESC, `dim_properties_plan` LIMIT 5",
			args: []any{f, tt, "a", "b'", 2.5},
			cols: Columns{Dimensions: []v1alpha1.FieldRef{"properties.plan"}, Metrics: []string{"p", "n"}},
		},
		{
			name: "rollup series of chosen groups",
			build: func(d clickhouse.Dialect) (clickhouse.Statement, Columns, error) {
				return Select(d, target, p, Query{Granularity: "minute", Metrics: []string{"n"}, GroupBy: []v1alpha1.FieldRef{"user_id", "properties.plan"}, From: from, To: to, Groups: [][]string{{"u1", "x"}, {"u'2", ""}}})
			},
			sql: "SELECT `bucket`, `dim_user_id`, `dim_properties_plan`, countMerge(`m_n`) AS `m_n` FROM `tenant_acme`.`pipeline_rev_0123456789` " +
				"WHERE `granularity` = 'minute' AND `bucket` >= toDateTime(?) AND `bucket` < toDateTime(?) AND ((`dim_user_id`, `dim_properties_plan`) IN ((?, ?), (?, ?))) " +
				"GROUP BY `bucket`, `dim_user_id`, `dim_properties_plan` ORDER BY `bucket`, `dim_user_id`, `dim_properties_plan`",
			args: []any{f, tt, "u1", "x", "u'2", ""},
			cols: Columns{Bucket: true, Dimensions: []v1alpha1.FieldRef{"user_id", "properties.plan"}, Metrics: []string{"n"}},
		},
		{
			name: "raw hourly by a non-dimension, in a window",
			build: func(d clickhouse.Dialect) (clickhouse.Statement, Columns, error) {
				return RawSelect(d, "tenant_acme", p, Window{Cutoff: cutoff}, Query{Granularity: "hour", Metrics: []string{"n"}, GroupBy: []v1alpha1.FieldRef{"session_id"}, From: from, To: to})
			},
			sql: "SELECT toStartOfHour(`timestamp`) AS `bucket`, `session_id` AS `dim_session_id`, count() AS `m_n` FROM `tenant_acme`.`events` FINAL " +
				"WHERE " + p.where + " AND `received_at` >= toDateTime(1717200000) AND `timestamp` >= toDateTime(?) AND `timestamp` < toDateTime(?) AND `bucket` >= toDateTime(?) AND `bucket` < toDateTime(?) " +
				"GROUP BY `bucket`, `dim_session_id` ORDER BY `bucket`, `dim_session_id`",
			args: []any{f, to.Add(2 * time.Hour).Unix(), f, tt},
			cols: Columns{Bucket: true, Dimensions: []v1alpha1.FieldRef{"session_id"}, Metrics: []string{"n"}},
		},
		{
			name: "raw total without a window: every event of the plan",
			build: func(d clickhouse.Dialect) (clickhouse.Statement, Columns, error) {
				return RawSelect(d, "tenant_acme", p, Window{}, Query{Total: true, Metrics: []string{"n"}, Filters: filters[:1], From: from, To: to})
			},
			sql:  "SELECT count() AS `m_n` FROM `tenant_acme`.`events` FINAL WHERE " + p.where + " AND `timestamp` >= toDateTime(?) AND `timestamp` < toDateTime(?) AND (" + plan + " IN (?, ?))",
			args: []any{f, tt, "a", "b'"},
			cols: Columns{Metrics: []string{"n"}},
		},
		{
			name: "events of a type, distinct users by plan, top 3 ascending",
			build: func(d clickhouse.Dialect) (clickhouse.Statement, Columns, error) {
				return EventsSelect(d, "tenant_acme", EventsQuery{EventType: "x' OR 1=1 --", UniqField: "user_id",
					Query: Query{Total: true, GroupBy: []v1alpha1.FieldRef{"properties.plan"}, From: from, To: to, Limit: 3, Ascending: true}})
			},
			sql: "SELECT " + plan + " AS `dim_properties_plan`, uniqIf(`user_id`, `user_id` != '') AS `m_uniq` FROM `tenant_acme`.`events` FINAL " +
				"WHERE `event_type` = ? AND `timestamp` >= toDateTime(?) AND `timestamp` < toDateTime(?) GROUP BY `dim_properties_plan` ORDER BY `m_uniq` ASC, `dim_properties_plan` LIMIT 3",
			args: []any{"x' OR 1=1 --", f, tt},
			cols: Columns{Dimensions: []v1alpha1.FieldRef{"properties.plan"}, Metrics: []string{"uniq"}},
		},
	} {
		for _, d := range []clickhouse.Dialect{v1816, v248} {
			t.Run(tc.name+"/"+d.Version.String(), func(t *testing.T) {
				st, cols, err := tc.build(d)
				if err != nil {
					t.Fatal(err)
				}
				if st.SQL != tc.sql {
					t.Errorf("got  %s\nwant %s", st.SQL, tc.sql)
				}
				if !reflect.DeepEqual(st.Args, tc.args) {
					t.Errorf("args %#v, want %#v", st.Args, tc.args)
				}
				if !reflect.DeepEqual(cols, tc.cols) {
					t.Errorf("columns %+v, want %+v", cols, tc.cols)
				}
			})
		}
	}
}

func TestFilterCondition(t *testing.T) {
	for _, tc := range []struct {
		op     v1alpha1.FilterOperator
		values []string
		sql    string
		args   []any
		fails  bool
	}{
		{op: v1alpha1.FilterEq, values: []string{"x' OR 1=1 --"}, sql: "(`c` = ?)", args: []any{"x' OR 1=1 --"}},
		{op: v1alpha1.FilterNeq, values: []string{""}, sql: "(`c` != ?)", args: []any{""}},
		{op: v1alpha1.FilterIn, values: []string{"a", "?"}, sql: "(`c` IN (?, ?))", args: []any{"a", "?"}},
		{op: v1alpha1.FilterContains, values: []string{"%"}, sql: "(position(`c`, ?) > 0)", args: []any{"%"}},
		{op: v1alpha1.FilterLt, values: []string{"-1e3"}, sql: "(match(`c`, '^-?[0-9]+(\\\\.[0-9]+)?([eE][-+]?[0-9]+)?$') AND toFloat64OrZero(`c`) < ?)", args: []any{-1000.0}},
		{op: v1alpha1.FilterGt, values: []string{"NaN"}, fails: true},
		{op: v1alpha1.FilterGt, values: []string{"1; DROP"}, fails: true},
		{op: v1alpha1.FilterEq, values: []string{"a", "b"}, fails: true},
		{op: v1alpha1.FilterIn, fails: true},
		{op: "like", values: []string{"a"}, fails: true},
	} {
		sql, args, err := FilterCondition("`c`", v1alpha1.Filter{Field: "user_id", Op: tc.op, Values: tc.values})
		if (err != nil) != tc.fails || sql != tc.sql || !reflect.DeepEqual(args, tc.args) {
			t.Errorf("%s %q: %q %#v %v", tc.op, tc.values, sql, args, err)
		}
	}
}

func TestReadRefusesWhatThePipelineLacks(t *testing.T) {
	p := mustCompile(t, readSpec())
	from, to := time.Unix(0, 0), time.Unix(3600, 0)
	for name, q := range map[string]Query{
		"filter on a non-dimension": {Granularity: "day", Filters: []v1alpha1.Filter{{Field: "session_id", Op: v1alpha1.FilterEq, Values: []string{"s"}}}, From: from, To: to},
		"groups of the wrong size":  {Granularity: "day", GroupBy: []v1alpha1.FieldRef{"user_id"}, Groups: [][]string{{"a", "b"}}, From: from, To: to},
		"groups without group-by":   {Granularity: "day", Groups: [][]string{{"a"}}, From: from, To: to},
	} {
		if _, _, err := Select(v1816, target, p, q); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	bad := Query{Granularity: "day", GroupBy: []v1alpha1.FieldRef{"properties.x') OR 1=1 --"}, From: from, To: to}
	if _, _, err := RawSelect(v1816, "tenant_acme", p, Window{}, bad); err == nil {
		t.Error("raw: a field outside the grammar was accepted")
	}
	if _, _, err := EventsSelect(v1816, "tenant_acme", EventsQuery{Query: Query{Total: true, From: from, To: to}}); err == nil {
		t.Error("events: no event type accepted")
	}
	if _, _, err := EventsSelect(v1816, "tenant`x", EventsQuery{EventType: "a", Query: Query{Total: true, From: from, To: to}}); err == nil {
		t.Error("events: a bad database name accepted")
	}
}

func TestMetricInfo(t *testing.T) {
	p := mustCompile(t, readSpec())
	if m, ok := p.Metric("p"); !ok || m.Type != v1alpha1.MetricQuantile || !reflect.DeepEqual(m.Quantiles, []string{"0.5", "0.99"}) {
		t.Errorf("p: %+v %v", m, ok)
	}
	if m, ok := p.Metric("n"); !ok || m.Quantiles != nil {
		t.Errorf("n: %+v %v", m, ok)
	}
	if _, ok := p.Metric("x"); ok {
		t.Error("x exists")
	}
	if !p.HasDimension("properties.plan") || p.HasDimension("session_id") {
		t.Error("HasDimension")
	}
}
