package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/runtime/query/metricquery"
)

// fixture is a tenant with a known set of events: per country a known number of
// purchases, every one on 2024-03-01 or 03-02, with users u0..u(n-1), received after the
// cutoff (so the view counts them) except for a few stored before the view (backfilled).
type fixture struct {
	tenant string
	counts map[string]int
	from   time.Time
	cutoff time.Time
	events []event
}

// fixtureCounts gives "de" and "fr" the same count, so ties are broken by the value.
var fixtureCounts = map[string]int{
	"de": 5, "fr": 5, "us": 9, `it'; DROP TABLE events; --`: 3, `a\b'c`: 4, "é": 7, "nul\x00byte": 2, "q?$1@x": 1,
}

func newFixture(t *testing.T, tenant string) fixture {
	t.Helper()
	f := fixture{
		tenant: tenant, counts: fixtureCounts,
		from:   time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC),
		cutoff: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC),
	}
	newTenant(t, tenant)
	var stored, live []event
	for _, c := range slices.Sorted(maps.Keys(f.counts)) {
		for i := range f.counts[c] {
			ev := event{
				id: fmt.Sprintf("%x-%d", c, i), typ: "purchase", user: fmt.Sprintf("u%d", i%3), session: "s",
				props: fmt.Sprintf(`{"country":%s,"amount":%d}`, jsonString(c), 10*(i+1)),
				ts:    f.from.Add(time.Duration(i*5) * time.Hour), received: f.cutoff.Add(time.Hour),
			}
			if i == 0 {
				ev.received = f.cutoff.Add(-time.Hour)
				stored = append(stored, ev)
			} else {
				live = append(live, ev)
			}
			f.events = append(f.events, ev)
		}
	}
	// Another type, which neither the pipeline nor a count of purchases sees.
	live = append(live, event{id: "other", typ: "signup", props: `{"country":"de"}`, ts: f.from, received: f.cutoff.Add(time.Hour)})
	spec := v1alpha1.PipelineSpec{
		Source:        v1alpha1.PipelineSource{EventTypes: []string{"purchase"}},
		Metrics:       []v1alpha1.Metric{{Name: "events", Type: v1alpha1.MetricCount}, {Name: "revenue", Type: v1alpha1.MetricSum, Field: "properties.amount"}},
		Dimensions:    []v1alpha1.FieldRef{"properties.country"},
		Granularities: []v1alpha1.Granularity{v1alpha1.GranularityHour, v1alpha1.GranularityDay},
	}
	createPipelines(t, tenant, []string{"sales"}, []v1alpha1.PipelineSpec{spec}, pipelineData{cutoff: f.cutoff, stored: stored, live: live})
	return f
}

func (f fixture) query(metrics ...string) metricquery.Query {
	return metricquery.Query{Mode: metricquery.ModePipeline, Pipeline: "sales", Metrics: metrics, From: f.from, To: f.from.Add(48 * time.Hour), Order: metricquery.OrderDesc}
}

func (f fixture) rawQuery(eventType string) metricquery.Query {
	return metricquery.Query{Mode: metricquery.ModeRaw, EventType: eventType, Aggregate: metricquery.AggregateCount, From: f.from, To: f.from.Add(48 * time.Hour), Order: metricquery.OrderDesc}
}

// total is the one value of a query without interval and group-by.
func total(t *testing.T, r metricquery.Result, name string) float64 {
	t.Helper()
	if len(r.Series) != 1 || len(r.Series[0].Points) != 1 {
		t.Fatalf("want one series of one point, got %+v", r.Series)
	}
	return r.Series[0].Points[0].Values[name]
}

// TestFilterValuesCannotBreakOut: filter values and event types are bound parameters.
// Values that would end a literal, open a comment or look like placeholders match
// exactly the events holding them, or nothing, and never fail the query; on the rollup,
// on the raw events and in raw mode.
func TestFilterValuesCannotBreakOut(t *testing.T) {
	f := newFixture(t, "inject")
	ctx := context.Background()
	engines := map[string]*Engine{"rollup": newEngine(t, Options{}), "raw": newEngine(t, Options{ForceRaw: true})}
	hostile := []string{
		`x' OR 1=1 --`, `' OR ''='`, `\' OR 1=1 --`, `\`, `\\`, `'`, "x\x00' OR 1=1 --", `'); DROP TABLE events; --`,
		`?`, `$1`, `@p`, `*/ OR 1=1 /*`, "\u2019 OR 1=1", `é' OR 'a'='a`, "line\nbreak", `\x27 OR 1=1`,
	}
	check := func(t *testing.T, name string, q metricquery.Query, metric string, want float64) {
		t.Helper()
		for ename, e := range engines {
			if q.Mode == metricquery.ModeRaw && ename == "rollup" {
				continue
			}
			r, err := e.Query(ctx, f.tenant, q)
			if err != nil {
				t.Fatalf("%s via %s: %v", name, ename, err)
			}
			if got := total(t, r, metric); got != want {
				t.Errorf("%s via %s (%s): %v, want %v", name, ename, r.Source, got, want)
			}
			if q.Mode == metricquery.ModePipeline && ename == "rollup" && r.Source != metricquery.SourceRollup {
				t.Errorf("%s: read %s, want the rollup", name, r.Source)
			}
		}
	}
	filter := func(q metricquery.Query, op metricquery.Op, vals ...string) metricquery.Query {
		q.Filters = []metricquery.Filter{{Field: "properties.country", Op: op, Values: vals}}
		return q
	}
	for _, v := range hostile {
		check(t, fmt.Sprintf("eq %q", v), filter(f.query("events"), metricquery.OpEq, v), "events", 0)
		check(t, fmt.Sprintf("in %q", v), filter(f.query("events"), metricquery.OpIn, v, v+"'"), "events", 0)
		check(t, fmt.Sprintf("raw eq %q", v), filter(f.rawQuery("purchase"), metricquery.OpEq, v), "count", 0)
		check(t, fmt.Sprintf("event type %q", v), f.rawQuery(v), "count", 0)
		check(t, fmt.Sprintf("event type purchase%q", v), f.rawQuery("purchase"+v), "count", 0)
	}
	all := 0
	for c, n := range f.counts {
		all += n
		check(t, fmt.Sprintf("eq %q", c), filter(f.query("events"), metricquery.OpEq, c), "events", float64(n))
		check(t, fmt.Sprintf("raw eq %q", c), filter(f.rawQuery("purchase"), metricquery.OpEq, c), "count", float64(n))
		check(t, fmt.Sprintf("neq %q", c), filter(f.query("events"), metricquery.OpNeq, c), "events", float64(all0(f.counts)-n))
	}
	quoted := 0
	for c, n := range f.counts {
		if strings.Contains(c, "'") {
			quoted += n
		}
	}
	check(t, "contains a quote", filter(f.query("events"), metricquery.OpContains, "'"), "events", float64(quoted))
	check(t, "in with hostile values", filter(f.query("events"), metricquery.OpIn, "us", `a\b'c`, `x' OR 1=1 --`), "events", float64(f.counts["us"]+f.counts[`a\b'c`]))
	check(t, "everything", f.query("events"), "events", float64(all))

	// The group values come back byte for byte.
	q := f.query("events")
	q.GroupBy = []string{"properties.country"}
	r, err := engines["rollup"].Query(ctx, f.tenant, q)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, s := range r.Series {
		got[s.Group["properties.country"]] = s.Points[0].Values["events"]
	}
	for c, n := range f.counts {
		if got[c] != float64(n) {
			t.Errorf("group %q: %v events, want %d (all groups: %v)", c, got[c], n, got)
		}
	}
}

func all0(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestTopN: the groups with the largest (or smallest) first metric over the range, ties
// broken by the group value, with their series, in rank order; checked against counts
// made in Go.
func TestTopN(t *testing.T) {
	f := newFixture(t, "topn")
	ctx := context.Background()
	for _, force := range []bool{false, true} {
		e := newEngine(t, Options{ForceRaw: force})
		for _, tc := range []struct {
			order    metricquery.Order
			limit    int
			interval metricquery.Interval
			want     []string
		}{
			{metricquery.OrderDesc, 3, "", []string{"us", "é", "de"}},
			{metricquery.OrderDesc, 4, metricquery.IntervalDay, []string{"us", "é", "de", "fr"}},
			{metricquery.OrderAsc, 3, metricquery.IntervalHour, []string{"q?$1@x", "nul\x00byte", `it'; DROP TABLE events; --`}},
			{metricquery.OrderAsc, 100, "", []string{"q?$1@x", "nul\x00byte", `it'; DROP TABLE events; --`, `a\b'c`, "de", "fr", "é", "us"}},
		} {
			q := f.query("events", "revenue")
			q.GroupBy, q.Order, q.Limit, q.Interval = []string{"properties.country"}, tc.order, tc.limit, tc.interval
			r, err := e.Query(ctx, f.tenant, q)
			if err != nil {
				t.Fatal(err)
			}
			var groups []string
			for _, s := range r.Series {
				groups = append(groups, s.Group["properties.country"])
				var sum float64
				for _, p := range s.Points {
					sum += p.Values["events"]
				}
				if c := s.Group["properties.country"]; sum != float64(f.counts[c]) {
					t.Errorf("%s %s limit %d %q: series sums to %v events, want %d", r.Source, tc.order, tc.limit, c, sum, f.counts[c])
				}
				if tc.interval == metricquery.IntervalHour && len(s.Points) != f.counts[s.Group["properties.country"]] {
					t.Errorf("%s: %q has %d hourly points, want one per event", r.Source, s.Group["properties.country"], len(s.Points))
				}
			}
			if !slices.Equal(groups, tc.want) {
				t.Errorf("%s %s limit %d interval %q: groups %q, want %q", r.Source, tc.order, tc.limit, tc.interval, groups, tc.want)
			}
		}
	}
}

// TestRawMode: counts and distinct counts of one event type, by a property, against Go.
func TestRawMode(t *testing.T) {
	f := newFixture(t, "rawmode")
	ctx := context.Background()
	e := newEngine(t, Options{})

	q := f.rawQuery("purchase")
	r, err := e.Query(ctx, f.tenant, q)
	if err != nil {
		t.Fatal(err)
	}
	if got := total(t, r, "count"); got != float64(all0(f.counts)) || r.Source != metricquery.SourceRaw {
		t.Errorf("count: %v from %s, want %d from raw", got, r.Source, all0(f.counts))
	}

	// A redelivered event the table has not merged away yet counts once (FINAL).
	insert(t, naming.Database(f.tenant), f.events[:1])
	if r, err = e.Query(ctx, f.tenant, q); err != nil {
		t.Fatal(err)
	}
	if got := total(t, r, "count"); got != float64(all0(f.counts)) {
		t.Errorf("count after a duplicate: %v, want %d", got, all0(f.counts))
	}

	q.Aggregate, q.Field, q.GroupBy = metricquery.AggregateUniq, "user_id", []string{"properties.country"}
	if r, err = e.Query(ctx, f.tenant, q); err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Series {
		n := f.counts[s.Group["properties.country"]]
		if got := s.Points[0].Values["uniq"]; got != float64(min(n, 3)) {
			t.Errorf("uniq users of %q: %v, want %d", s.Group["properties.country"], got, min(n, 3))
		}
	}
	if len(r.Series) != len(f.counts) {
		t.Errorf("%d groups, want %d", len(r.Series), len(f.counts))
	}

	q = f.rawQuery("purchase")
	q.Interval = metricquery.IntervalDay
	if r, err = e.Query(ctx, f.tenant, q); err != nil {
		t.Fatal(err)
	}
	perDay := map[time.Time]int{}
	for _, ev := range f.events {
		perDay[ev.ts.Truncate(24*time.Hour)]++
	}
	if len(r.Series[0].Points) != len(perDay) {
		t.Fatalf("%d days, want %d", len(r.Series[0].Points), len(perDay))
	}
	for _, p := range r.Series[0].Points {
		if p.Values["count"] != float64(perDay[p.Time]) {
			t.Errorf("%s: %v events, want %d", p.Time, p.Values["count"], perDay[p.Time])
		}
	}
}

// TestStatistics: what ClickHouse reports having read comes back with the answer.
func TestStatistics(t *testing.T) {
	f := newFixture(t, "stats")
	r, err := newEngine(t, Options{ForceRaw: true}).Query(context.Background(), f.tenant, f.query("events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("statistics: %+v", r.Stats)
	// The events table holds the fixture's events and one of another type; FINAL reads
	// every row of the parts the range selects.
	if r.Stats.RowsRead < uint64(all0(f.counts)) || r.Stats.BytesRead == 0 || r.Stats.ElapsedMS <= 0 {
		t.Errorf("statistics %+v: want at least %d rows read, some bytes and time", r.Stats, all0(f.counts))
	}
}

// TestErrors: each failure maps to what the API answers.
func TestErrors(t *testing.T) {
	f := newFixture(t, "errs")
	ctx := context.Background()
	var logs bytes.Buffer
	e := newEngine(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	var perr metricquery.Errors
	q := f.query("events", "nope")
	if _, err := e.Query(ctx, f.tenant, q); !errors.As(err, &perr) || len(perr) != 1 || perr[0].Param != metricquery.ParamMetric {
		t.Errorf("unknown metric: %v", err)
	}
	q = f.query("events")
	q.Filters = []metricquery.Filter{{Field: "properties.amount", Op: metricquery.OpGt, Values: []string{"NaN"}}}
	if _, err := e.Query(ctx, f.tenant, q); !errors.As(err, &perr) || perr[0].Param != metricquery.ParamFilter {
		t.Errorf("gt NaN: %v", err)
	}
	if _, err := e.Query(ctx, f.tenant, f.rawQuery("")); !errors.As(err, &perr) || perr[0].Param != metricquery.ParamEventType {
		t.Errorf("raw mode without an event type: %v", err)
	}
	q = f.query("events")
	q.Pipeline = "missing"
	if _, err := e.Query(ctx, f.tenant, q); !errors.Is(err, metricquery.ErrNotFound) {
		t.Errorf("missing pipeline: %v", err)
	}
	// Another tenant's pipeline of the same name does not exist for this one.
	if _, err := e.Query(ctx, "someone-else", f.query("events")); !errors.Is(err, metricquery.ErrNotFound) {
		t.Errorf("other tenant's pipeline: %v", err)
	}
	dedicated := newEngine(t, Options{Tenant: "acme"})
	if _, err := dedicated.Query(ctx, f.tenant, f.query("events")); !errors.Is(err, metricquery.ErrNotFound) {
		t.Errorf("a dedicated engine answered another tenant: %v", err)
	}
	if _, err := dedicated.EventsIngested(ctx, f.tenant, time.Time{}, time.Now()); !errors.Is(err, metricquery.ErrNotFound) {
		t.Errorf("a dedicated engine counted another tenant's events: %v", err)
	}

	// A deadline already passed: unavailable, saying so.
	short, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	<-short.Done()
	if _, err := e.Query(short, f.tenant, f.rawQuery("purchase")); !errors.Is(err, metricquery.ErrUnavailable) || !strings.Contains(err.Error(), "time limit") {
		t.Errorf("past deadline: %v", err)
	}

	// A catalog whose spec names a metric the table lacks makes SQL the server refuses:
	// a bug, not an outage, logged with its SQL.
	bad := v1alpha1.PipelineSpec{
		Source:        v1alpha1.PipelineSource{EventTypes: []string{"purchase"}},
		Metrics:       []v1alpha1.Metric{{Name: "events", Type: v1alpha1.MetricCount}, {Name: "ghost", Type: v1alpha1.MetricCount}},
		Dimensions:    []v1alpha1.FieldRef{"properties.country"},
		Granularities: []v1alpha1.Granularity{v1alpha1.GranularityHour, v1alpha1.GranularityDay},
	}
	rec, err := shared.store.GetPipeline(ctx, f.tenant, "sales")
	if err != nil {
		t.Fatal(err)
	}
	publish(t, f.tenant, "drifted", bad, rec.RollupTable, rec.RollupCutoff)
	q = f.query("ghost")
	q.Pipeline = "drifted"
	_, err = e.Query(ctx, f.tenant, q)
	if err == nil || errors.Is(err, metricquery.ErrUnavailable) || errors.Is(err, metricquery.ErrNotFound) {
		t.Errorf("bad SQL: %v, want an internal error", err)
	}
	if !strings.Contains(logs.String(), "m_ghost") {
		t.Errorf("the refused SQL was not logged: %s", logs.String())
	}

	// ClickHouse down: unavailable; back up: answered again.
	shared.ch.Stop()
	_, err = e.Query(ctx, f.tenant, f.query("events"))
	shared.ch.Restart(t)
	if !errors.Is(err, metricquery.ErrUnavailable) {
		t.Errorf("ClickHouse stopped: %v, want ErrUnavailable", err)
	}
	if _, err := e.Query(ctx, f.tenant, f.query("events")); err != nil {
		t.Errorf("after the restart: %v", err)
	}
}

// TestEventsIngested counts what was received since a time, whatever the event type.
func TestEventsIngested(t *testing.T) {
	f := newFixture(t, "usage")
	e := newEngine(t, Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		since time.Time
		want  uint64
	}{
		{time.Time{}, uint64(all0(f.counts) + 1)},
		{f.cutoff, uint64(all0(f.counts) - len(f.counts) + 1)},
		{f.cutoff.Add(2 * time.Hour), 0},
	} {
		n, err := e.EventsIngested(ctx, f.tenant, tc.since, time.Date(2105, 12, 31, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		if n != tc.want {
			t.Errorf("since %s: %d, want %d", tc.since, n, tc.want)
		}
	}
	n, err := e.EventsIngested(ctx, f.tenant, f.cutoff.Add(-2*time.Hour), f.cutoff)
	if err != nil || n != uint64(len(f.counts)) {
		t.Errorf("received before the cutoff: %d %v, want %d", n, err, len(f.counts))
	}
}
