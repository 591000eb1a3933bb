package metricquery

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 26, 12, 30, 15, 500, time.UTC)

func mustValues(t testing.TB, raw string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseValid(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	nowS := now.Truncate(time.Second)
	for _, tc := range []struct {
		name string
		raw  string
		want Query
	}{
		{
			name: "pipeline defaults",
			raw:  "pipeline=signups&metric=count",
			want: Query{Mode: ModePipeline, Pipeline: "signups", Metrics: []string{"count"}, From: nowS.Add(-24 * time.Hour), To: nowS, Limit: 100, Order: OrderDesc},
		},
		{
			name: "everything",
			raw: "pipeline=orders.v2&metric=revenue,orders&metric=aov&from=now-7d&to=now-1h&interval=hour" +
				"&groupBy=properties.plan&groupBy=event_type&filter=properties.country:in:US,DE,a%5C,b" +
				"&filter=properties.total:gt:10.5&filter=user_id:contains:a:b&limit=5&order=asc",
			want: Query{
				Mode: ModePipeline, Pipeline: "orders.v2", Metrics: []string{"revenue", "orders", "aov"},
				From: nowS.Add(-7 * 24 * time.Hour), To: nowS.Add(-time.Hour), Interval: IntervalHour,
				GroupBy: []string{"properties.plan", "event_type"},
				Filters: []Filter{
					{Field: "properties.country", Op: OpIn, Values: []string{"US", "DE", "a,b"}},
					{Field: "properties.total", Op: OpGt, Values: []string{"10.5"}},
					{Field: "user_id", Op: OpContains, Values: []string{"a:b"}},
				},
				Limit: 5, Order: OrderAsc,
			},
		},
		{
			name: "absolute times, to default now",
			raw:  "pipeline=p&metric=m&from=2026-11-25T00:00:00Z&interval=day",
			want: Query{Mode: ModePipeline, Pipeline: "p", Metrics: []string{"m"}, From: at("2026-11-25T00:00:00Z"), To: nowS, Interval: IntervalDay, Limit: 100, Order: OrderDesc},
		},
		{
			name: "raw count",
			raw:  "mode=raw&eventType=page%20view&groupBy=properties.path",
			want: Query{Mode: ModeRaw, EventType: "page view", Aggregate: AggregateCount, From: nowS.Add(-24 * time.Hour), To: nowS, GroupBy: []string{"properties.path"}, Limit: 100, Order: OrderDesc},
		},
		{
			name: "raw uniq",
			raw:  "mode=raw&eventType=login&aggregate=uniq&field=user_id&from=2026-11-26T10:00:00%2B01:00&to=2026-11-26T11:00:00Z",
			want: Query{Mode: ModeRaw, EventType: "login", Aggregate: AggregateUniq, Field: "user_id", From: at("2026-11-26T09:00:00Z"), To: at("2026-11-26T11:00:00Z"), Limit: 100, Order: OrderDesc},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(mustValues(t, tc.raw), now)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  string
		want []string // "param: reason fragment"
	}{
		{"nothing", "", []string{"pipeline: required", "metric: required"}},
		{"unknown parameter", "pipeline=p&metric=m&databse=x", []string{"databse: unknown parameter"}},
		{"repeated single", "pipeline=p&pipeline=q&metric=m", []string{"pipeline: given 2 times"}},
		{"bad mode", "mode=sql&pipeline=p&metric=m", []string{`mode: "sql" is not pipeline or raw`}},
		{"pipeline name", "pipeline=Sign%20ups&metric=m", []string{"pipeline: \"Sign ups\" is not a Pipeline name"}},
		{"metric injection", "pipeline=p&metric=count)%3B%20DROP%20TABLE%20x--", []string{"metric: \"count); DROP TABLE x--\" is not a metric name"}},
		{"metric twice", "pipeline=p&metric=a,a", []string{`metric: "a" given twice`}},
		{"too many metrics", "pipeline=p&metric=a,b,c,d,e,f,g,h,i,j,k", []string{"metric: 11 metrics; at most 10"}},
		{"raw params in pipeline mode", "pipeline=p&metric=m&eventType=x", []string{"eventType: only in raw mode"}},
		{"raw without type", "mode=raw", []string{"eventType: required in raw mode"}},
		{"raw uniq without field", "mode=raw&eventType=x&aggregate=uniq", []string{"field: required with aggregate=uniq"}},
		{"raw count with field", "mode=raw&eventType=x&field=user_id", []string{"field: aggregate=count takes no field"}},
		{"raw bad aggregate", "mode=raw&eventType=x&aggregate=sum", []string{`aggregate: "sum" is not count or uniq`}},
		{"raw field injection", "mode=raw&eventType=x&aggregate=uniq&field=properties.a')", []string{"field: \"properties.a')\" is not event_type"}},
		{"pipeline params in raw mode", "mode=raw&eventType=x&metric=m", []string{"metric: only in pipeline mode"}},
		{"bad from", "pipeline=p&metric=m&from=yesterday", []string{`from: "yesterday" is neither now`}},
		{"bad to", "pipeline=p&metric=m&to=now-5y", []string{"to: \"now-5y\" is neither"}},
		{"from after to", "pipeline=p&metric=m&from=now-1h&to=now-2h", []string{"from: must be before to"}},
		{"from equals to", "pipeline=p&metric=m&from=now&to=now", []string{"from: must be before to"}},
		{"bad interval", "pipeline=p&metric=m&interval=week", []string{`interval: "week" is not minute, hour or day`}},
		{"too many buckets", "pipeline=p&metric=m&from=now-52w&interval=minute", []string{"interval: minute buckets over this range make 524160 points"}},
		{"group by injection", "pipeline=p&metric=m&groupBy=properties.x%60", []string{"groupBy: \"properties.x`\" is not event_type"}},
		{"group by column", "pipeline=p&metric=m&groupBy=received_at", []string{`groupBy: "received_at" is not event_type`}},
		{"group by too many", "pipeline=p&metric=m&groupBy=event_type,user_id,session_id,properties.a", []string{"groupBy: 4 dimensions; at most 3"}},
		{"group by twice", "pipeline=p&metric=m&groupBy=user_id&groupBy=user_id", []string{`groupBy: "user_id" given twice`}},
		{"filter shape", "pipeline=p&metric=m&filter=user_id", []string{"filter: \"user_id\": want <field>:<op>:<value>"}},
		{"filter op", "pipeline=p&metric=m&filter=user_id:like:a%25", []string{`operator "like" is not eq, neq, in, contains, gt or lt`}},
		{"filter field", "pipeline=p&metric=m&filter=timestamp:eq:1", []string{`"timestamp" is not event_type`}},
		{"filter gt not a number", "pipeline=p&metric=m&filter=properties.n:gt:1%20OR%201=1", []string{`gt compares numbers; "1 OR 1=1" is not one`}},
		{"filter bad escape", "pipeline=p&metric=m&filter=user_id:in:a%5Cb", []string{`a backslash must be followed by , or \`}},
		{"filter value too long", "pipeline=p&metric=m&filter=user_id:eq:" + strings.Repeat("a", 300), []string{"a value is longer than 256 bytes"}},
		{"too many filters", "pipeline=p&metric=m" + strings.Repeat("&filter=user_id:eq:a", 11), []string{"filter: 11 filters; at most 10"}},
		{"limit", "pipeline=p&metric=m&limit=0", []string{`limit: "0" is not a whole number from 1 to 1000`}},
		{"limit big", "pipeline=p&metric=m&limit=1001", []string{`limit: "1001" is not a whole number`}},
		{"limit text", "pipeline=p&metric=m&limit=10%20OR%201", []string{`limit: "10 OR 1" is not a whole number`}},
		{"order injection", "pipeline=p&metric=m&order=desc%3B%20DROP", []string{`order: "desc; DROP" is not desc or asc`}},
		{"parameter too long", "pipeline=p&metric=m&groupBy=" + strings.Repeat("a", MaxParamLen+1), []string{"groupBy: longer than 4096 bytes"}},
		{"several problems at once", "pipeline=p&metric=m&limit=x&order=up", []string{"limit:", "order:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(mustValues(t, tc.raw), now)
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v, want Errors", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if len(errs) != len(tc.want) {
				t.Errorf("%d errors %v, want %d", len(errs), errs, len(tc.want))
			}
		})
	}
}

// FuzzParse checks that any parameters either give errors naming known parameters, or a
// query whose every identifier matches its grammar and whose bounds hold: what the SQL
// builder relies on.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"pipeline=signups&metric=count",
		"pipeline=p&metric=a,b&from=now-7d&to=now&interval=hour&groupBy=properties.plan&filter=properties.c:in:US,DE&limit=5&order=asc",
		"mode=raw&eventType=login&aggregate=uniq&field=user_id",
		"pipeline=p&metric=m&filter=user_id:in:a%5C,b%5C%5C",
		"pipeline=p&metric=m&from=2026-11-25T00:00:00Z&to=2026-11-26T00:00:00%2B01:00",
		"mode=raw&eventType=%27%3B%20DROP&groupBy=properties.x",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := Parse(v, now)
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %v is not a non-empty Errors", err)
			}
			for _, e := range errs {
				if e.Param == "" || e.Reason == "" {
					t.Fatalf("error without parameter or reason: %+v", e)
				}
			}
			return
		}
		if !q.From.Before(q.To) || q.Limit < 1 || q.Limit > MaxLimit || len(q.GroupBy) > MaxGroupBy || len(q.Filters) > MaxFilters {
			t.Fatalf("bounds broken: %+v", q)
		}
		if q.Interval != "" && q.To.Sub(q.From)/q.Interval.Duration() > MaxBuckets {
			t.Fatalf("too many buckets: %+v", q)
		}
		for _, g := range q.GroupBy {
			if !ValidField(g) {
				t.Fatalf("group by %q", g)
			}
		}
		for _, fl := range q.Filters {
			if !ValidField(fl.Field) || len(fl.Values) == 0 {
				t.Fatalf("filter %+v", fl)
			}
		}
		switch q.Mode {
		case ModePipeline:
			if !pipelineName.MatchString(q.Pipeline) || len(q.Metrics) == 0 {
				t.Fatalf("pipeline query %+v", q)
			}
			for _, m := range q.Metrics {
				if !metricName.MatchString(m) {
					t.Fatalf("metric %q", m)
				}
			}
		case ModeRaw:
			if q.EventType == "" || (q.Field != "" && !ValidField(q.Field)) {
				t.Fatalf("raw query %+v", q)
			}
		default:
			t.Fatalf("mode %q", q.Mode)
		}
	})
}
