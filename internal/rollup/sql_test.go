package rollup

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/clickhouse"
)

var (
	v1816 = clickhouse.NewDialect(clickhouse.Version{Major: 18, Minor: 16, Patch: 1}, "")
	v248  = clickhouse.NewDialect(clickhouse.Version{Major: 24, Minor: 8, Patch: 4}, "")
)

func smallSpec() v1alpha1.PipelineSpec {
	return v1alpha1.PipelineSpec{
		Source: v1alpha1.PipelineSource{
			EventTypes: []string{"purchase"},
			Filter:     []v1alpha1.Filter{{Field: "properties.amount", Op: v1alpha1.FilterGt, Values: []string{"10"}}},
		},
		Metrics: []v1alpha1.Metric{
			{Name: "n", Type: v1alpha1.MetricCount},
			{Name: "p", Type: v1alpha1.MetricQuantile, Field: "properties.amount", Quantiles: []string{"0.5", "0.99"}},
		},
		Dimensions:    []v1alpha1.FieldRef{"user_id"},
		Granularities: []v1alpha1.Granularity{v1alpha1.GranularityDay, v1alpha1.GranularityMinute},
	}
}

var target = Target{Database: "tenant_acme", Table: "pipeline_rev_0123456789", View: "pipeline_rev_0123456789_mv"}

func mustCompile(t *testing.T, spec v1alpha1.PipelineSpec) *Plan {
	t.Helper()
	p, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCreateTablePerVersion(t *testing.T) {
	p := mustCompile(t, smallSpec())
	const head = "CREATE TABLE IF NOT EXISTS `tenant_acme`.`pipeline_rev_0123456789` (`granularity` Enum8('minute' = 1, 'hour' = 2, 'day' = 3), `bucket` DateTime, `chunk` UInt32, "
	const tail = ", `m_n` AggregateFunction(count), `m_p` AggregateFunction(quantilesDeterministicIf(0.5, 0.99), Float64, UInt64, UInt8)) " +
		"ENGINE = AggregatingMergeTree() PARTITION BY (`chunk`, toYYYYMM(`bucket`)) ORDER BY (`granularity`, `bucket`, `dim_user_id`)"
	for _, tc := range []struct {
		name    string
		dialect clickhouse.Dialect
		want    string
	}{
		{"18.16 has no LowCardinality", v1816, head + "`dim_user_id` String" + tail},
		{"24.8", v248, head + "`dim_user_id` LowCardinality(String)" + tail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := CreateTable(tc.dialect, target, p)
			if err != nil {
				t.Fatal(err)
			}
			if st.SQL != tc.want {
				t.Errorf("got  %s\nwant %s", st.SQL, tc.want)
			}
		})
	}
}

func TestViewAndBackfillSQL(t *testing.T) {
	p := mustCompile(t, smallSpec())
	cutoff := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	since := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	w := Window{Cutoff: cutoff, Backfill: true, Since: &since}
	selectPart := "SELECT CAST(`g` AS Enum8('minute' = 1, 'hour' = 2, 'day' = 3)) AS `granularity`, " +
		"multiIf(`g` = 'minute', toStartOfMinute(`timestamp`), toStartOfDay(`timestamp`)) AS `bucket`, toUInt32(%d) AS `chunk`, `user_id` AS `dim_user_id`, countState() AS `m_n`, " +
		"quantilesDeterministicIfState(0.5, 0.99)(visitParamExtractFloat(`properties`, 'amount'), cityHash64(`event_id`), match(visitParamExtractRaw(`properties`, 'amount'), '^-?[0-9]+(\\\\.[0-9]+)?([eE][-+]?[0-9]+)?$')) AS `m_p` " +
		"FROM `tenant_acme`.`events`%s ARRAY JOIN ['minute', 'day'] AS `g` WHERE `event_type` IN ('purchase') AND " +
		"(match(visitParamExtractRaw(`properties`, 'amount'), '^-?[0-9]+(\\\\.[0-9]+)?([eE][-+]?[0-9]+)?$') AND visitParamExtractFloat(`properties`, 'amount') > 10) AND %s " +
		"GROUP BY `granularity`, `bucket`, `chunk`, `dim_user_id`"
	for _, d := range []clickhouse.Dialect{v1816, v248} {
		t.Run(d.Version.String(), func(t *testing.T) {
			view, err := CreateView(d, target, p, w)
			if err != nil {
				t.Fatal(err)
			}
			wantView := "CREATE MATERIALIZED VIEW IF NOT EXISTS `tenant_acme`.`pipeline_rev_0123456789_mv` TO `tenant_acme`.`pipeline_rev_0123456789` AS " +
				strings.ReplaceAll(selectPart, "%d", "0")
			wantView = strings.Replace(strings.Replace(wantView, "%s", "", 1), "%s", "`received_at` >= toDateTime(1717200000)", 1)
			if view.SQL != wantView {
				t.Errorf("view:\ngot  %s\nwant %s", view.SQL, wantView)
			}

			fill, err := BackfillChunk(d, target, p, w, 202403)
			if err != nil {
				t.Fatal(err)
			}
			wantFill := "INSERT INTO `tenant_acme`.`pipeline_rev_0123456789` (`granularity`, `bucket`, `chunk`, `dim_user_id`, `m_n`, `m_p`) " +
				strings.ReplaceAll(selectPart, "%d", "202403")
			wantFill = strings.Replace(strings.Replace(wantFill, "%s", " FINAL", 1), "%s",
				"`received_at` < toDateTime(1717200000) AND `timestamp` >= toDateTime(1704067200) AND toYYYYMM(`timestamp`) = 202403", 1)
			if fill.SQL != wantFill {
				t.Errorf("backfill:\ngot  %s\nwant %s", fill.SQL, wantFill)
			}

			drop, err := DropChunk(d, target, 202403)
			if err != nil || drop.SQL != "ALTER TABLE `tenant_acme`.`pipeline_rev_0123456789` DROP PARTITION (202403, 202403)" {
				t.Errorf("drop chunk: %q %v", drop.SQL, err)
			}
		})
	}
}

func TestOnCluster(t *testing.T) {
	d := clickhouse.NewDialect(clickhouse.Version{Major: 24, Minor: 8}, "main")
	p := mustCompile(t, smallSpec())
	for name, build := range map[string]func() (clickhouse.Statement, error){
		"table": func() (clickhouse.Statement, error) { return CreateTable(d, target, p) },
		"view": func() (clickhouse.Statement, error) {
			return CreateView(d, target, p, Window{Cutoff: time.Unix(1, 0)})
		},
		"drop view":  func() (clickhouse.Statement, error) { return DropView(d, target) },
		"drop table": func() (clickhouse.Statement, error) { return DropTable(d, target) },
		"drop chunk": func() (clickhouse.Statement, error) { return DropChunk(d, target, 202401) },
	} {
		st, err := build()
		if err != nil || !strings.Contains(st.SQL, " ON CLUSTER `main`") {
			t.Errorf("%s: %q %v", name, st.SQL, err)
		}
	}
}

func TestSelectBindsTheTimeRange(t *testing.T) {
	p := mustCompile(t, smallSpec())
	from, to := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)
	for _, d := range []clickhouse.Dialect{v1816, v248} {
		st, cols, err := Select(d, target, p, Query{Granularity: v1alpha1.GranularityDay, GroupBy: []v1alpha1.FieldRef{"user_id"}, From: from, To: to})
		if err != nil {
			t.Fatal(err)
		}
		want := "SELECT `bucket`, `dim_user_id`, countMerge(`m_n`) AS `m_n`, quantilesDeterministicIfMerge(0.5, 0.99)(`m_p`) AS `m_p` " +
			"FROM `tenant_acme`.`pipeline_rev_0123456789` WHERE `granularity` = 'day' AND `bucket` >= toDateTime(?) AND `bucket` < toDateTime(?) " +
			"GROUP BY `bucket`, `dim_user_id` ORDER BY `bucket`, `dim_user_id`"
		if st.SQL != want {
			t.Errorf("got  %s\nwant %s", st.SQL, want)
		}
		if len(st.Args) != 2 || st.Args[0] != from.Unix() || st.Args[1] != to.Unix() {
			t.Errorf("args %v", st.Args)
		}
		if len(cols.Metrics) != 2 || len(cols.Dimensions) != 1 {
			t.Errorf("columns %+v", cols)
		}
	}
}

func TestSelectRefusesWhatThePipelineLacks(t *testing.T) {
	p := mustCompile(t, smallSpec())
	from, to := time.Unix(0, 0), time.Unix(3600, 0)
	for name, q := range map[string]Query{
		"granularity not kept": {Granularity: v1alpha1.GranularityHour, From: from, To: to},
		"unknown dimension":    {Granularity: v1alpha1.GranularityDay, GroupBy: []v1alpha1.FieldRef{"session_id"}, From: from, To: to},
		"unknown metric":       {Granularity: v1alpha1.GranularityDay, Metrics: []string{"n; DROP TABLE x"}, From: from, To: to},
		"empty range":          {Granularity: v1alpha1.GranularityDay, From: to, To: from},
		"dimension twice":      {Granularity: v1alpha1.GranularityDay, GroupBy: []v1alpha1.FieldRef{"user_id", "user_id"}, From: from, To: to},
	} {
		if _, _, err := Select(v1816, target, p, q); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestQuoteString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", `'plain'`},
		{`it's`, `'it\'s'`},
		{`x' OR 1=1 --`, `'x\' OR 1=1 --'`},
		{`\'; DROP TABLE events; --`, `'\\\'; DROP TABLE events; --'`},
		{`a\`, `'a\\'`},
		{"line\nbreak\x00", `'line\x0Abreak\x00'`},
		{"é", `'\xC3\xA9'`},
		{"", `''`},
	} {
		if got := quoteString(tc.in); got != tc.want {
			t.Errorf("quoteString(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestFilterValuesCannotEscape(t *testing.T) {
	attacks := []string{`x') OR 1=1 --`, `\' OR 1 --`, "x'\n; DROP TABLE events", `\\'`}
	for _, a := range attacks {
		spec := smallSpec()
		spec.Source.EventTypes = []string{a}
		spec.Source.Filter = []v1alpha1.Filter{
			{Field: "properties.k", Op: v1alpha1.FilterEq, Values: []string{a}},
			{Field: "user_id", Op: v1alpha1.FilterIn, Values: []string{a, "b"}},
			{Field: "session_id", Op: v1alpha1.FilterLt, Values: []string{a}},
		}
		p := mustCompile(t, spec)
		// Every quote in the clause is either escaped or one of the literal delimiters:
		// removing escaped pairs leaves balanced quotes around literal text only.
		where := p.where
		stripped := strings.NewReplacer(`\\`, "", `\'`, "").Replace(where)
		if strings.Count(stripped, "'")%2 != 0 || strings.Contains(where, "\n") {
			t.Errorf("value %q: unbalanced where clause %s", a, where)
		}
		if !strings.Contains(where, quoteString(a)) {
			t.Errorf("value %q not quoted in %s", a, where)
		}
	}
}

func TestCompileRefusesInvalidSpecs(t *testing.T) {
	for name, mutate := range map[string]func(*v1alpha1.PipelineSpec){
		"no metrics":          func(s *v1alpha1.PipelineSpec) { s.Metrics = nil },
		"no event types":      func(s *v1alpha1.PipelineSpec) { s.Source.EventTypes = nil },
		"field injection":     func(s *v1alpha1.PipelineSpec) { s.Metrics[1].Field = "properties.a') OR ('1" },
		"dimension injection": func(s *v1alpha1.PipelineSpec) { s.Dimensions = []v1alpha1.FieldRef{"properties.x`"} },
		"metric name":         func(s *v1alpha1.PipelineSpec) { s.Metrics[0].Name = "N`" },
		"quantile injection":  func(s *v1alpha1.PipelineSpec) { s.Metrics[1].Quantiles = []string{"0.5) FROM x --"} },
		"no quantiles":        func(s *v1alpha1.PipelineSpec) { s.Metrics[1].Quantiles = nil },
		"count with field":    func(s *v1alpha1.PipelineSpec) { s.Metrics[0].Field = "user_id" },
		"unknown type":        func(s *v1alpha1.PipelineSpec) { s.Metrics[0].Type = "median" },
		"unknown granularity": func(s *v1alpha1.PipelineSpec) { s.Granularities = []v1alpha1.Granularity{"week"} },
		"unknown operator":    func(s *v1alpha1.PipelineSpec) { s.Source.Filter[0].Op = "like" },
		"eq with two values":  func(s *v1alpha1.PipelineSpec) { s.Source.Filter[0].Values = []string{"a", "b"} },
		"duplicate metric":    func(s *v1alpha1.PipelineSpec) { s.Metrics[1].Name = "n" },
		"duplicate dimension": func(s *v1alpha1.PipelineSpec) { s.Dimensions = []v1alpha1.FieldRef{"user_id", "user_id"} },
	} {
		spec := smallSpec()
		mutate(&spec)
		_, err := Compile(spec)
		var invalid *InvalidSpecError
		if !errors.As(err, &invalid) {
			t.Errorf("%s: got %v, want an InvalidSpecError", name, err)
		}
	}
}

func TestHash(t *testing.T) {
	base := Hash("rev", smallSpec())
	if len(base) != 10 {
		t.Fatalf("hash %q", base)
	}
	reordered := smallSpec()
	reordered.Granularities = []v1alpha1.Granularity{v1alpha1.GranularityMinute, v1alpha1.GranularityDay}
	reordered.Metrics[0], reordered.Metrics[1] = reordered.Metrics[1], reordered.Metrics[0]
	if h := Hash("rev", reordered); h != base {
		t.Errorf("reordering sets changed the hash: %s != %s", h, base)
	}
	changed := smallSpec()
	changed.Dimensions = append(changed.Dimensions, "session_id")
	for name, h := range map[string]string{"spec": Hash("rev", changed), "name": Hash("rev2", smallSpec())} {
		if h == base {
			t.Errorf("a changed %s kept the hash", name)
		}
	}
}
