package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/rollup"
	"github.com/shoal-dev/shoal/runtime/query/metricquery"
)

// TestRollupAnswersAsRaw: for random queries across metric types, intervals, totals,
// group-by fields, filters and top-N limits, the engine's answer from the rollup equals
// its answer from the raw events (an engine forced to read them), on the real 18.16
// server. The rollup is built as the controller builds it: events stored before the view
// (backfilled), received after the cutoff (the view), and late ones (backfilled).
func TestRollupAnswersAsRaw(t *testing.T) {
	s := seed(t)
	t.Logf("seed %d (rerun with SHOAL_ENGINE_SEED=%d)", s, s)
	rng := rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))
	const tenant = "prop"
	newTenant(t, tenant)

	from := time.Date(2024, 1, 20, 0, 0, 0, 0, time.UTC)
	span := 40 * 24 * time.Hour
	cutoff := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	before := func(time.Time) time.Time { return cutoff.Add(-time.Duration(1+rng.IntN(1000)) * time.Minute) }
	after := func(time.Time) time.Time { return cutoff.Add(time.Duration(rng.IntN(1000)) * time.Minute) }
	data := pipelineData{
		cutoff: cutoff,
		stored: randomEvents(rng, 2500, "stored", from, span, before),
		live:   randomEvents(rng, 1500, "live", from, span, after),
		late:   randomEvents(rng, 300, "late", from, span, before),
	}
	// Three builds over the same events: backfilled, backfilled since a day in the range,
	// and live only (the cutoff matters: raw reads must leave out what the view never saw).
	since := testSpec()
	sinceTime := metav1.NewTime(from.Add(15 * 24 * time.Hour))
	since.Backfill.Since = &sinceTime
	liveOnly := testSpec()
	disabled := false
	liveOnly.Backfill.Enabled = &disabled
	pipelines := []string{"shop", "since", "live"}
	createPipelines(t, tenant, pipelines, []v1alpha1.PipelineSpec{testSpec(), since, liveOnly}, data)

	ctx := context.Background()
	viaRollup := newEngine(t, Options{})
	viaRaw := newEngine(t, Options{ForceRaw: true})
	const n = 150
	var rollups, nonEmpty int
	for i := range n {
		q := randomQuery(rng, pipelines[i%len(pipelines)], from, span)
		got, err := viaRollup.Query(ctx, tenant, q)
		if err != nil {
			t.Fatalf("query %d %+v: %v", i, q, err)
		}
		want, err := viaRaw.Query(ctx, tenant, q)
		if err != nil {
			t.Fatalf("query %d %+v forced raw: %v", i, q, err)
		}
		if want.Source != metricquery.SourceRaw {
			t.Fatalf("query %d: the forced engine read %s", i, want.Source)
		}
		if got.Source == metricquery.SourceRollup {
			rollups++
		}
		if len(want.Series) > 0 && len(want.Series[0].Points) > 0 && len(want.Series[0].Points[0].Values) > 0 {
			nonEmpty++
		}
		if diff := compareResults(got, want); diff != "" {
			t.Fatalf("query %d (%s) %+v:\n%s", i, got.Source, q, diff)
		}
	}
	t.Logf("%d queries: %d read the rollup, %d had values", n, rollups, nonEmpty)
	// Guard against a test that passes by comparing nothing.
	if rollups < n/3 || nonEmpty < n/2 {
		t.Fatalf("only %d of %d queries read the rollup and %d had values: the generator is broken", rollups, n, nonEmpty)
	}
}

// randomQuery is a pipeline query over the data's range.
func randomQuery(rng *rand.Rand, pipeline string, from time.Time, span time.Duration) metricquery.Query {
	metrics := []string{"events", "revenue", "avg_amount", "min_amount", "max_amount", "users", "latency"}
	rng.Shuffle(len(metrics), func(i, j int) { metrics[i], metrics[j] = metrics[j], metrics[i] })
	q := metricquery.Query{Mode: metricquery.ModePipeline, Pipeline: pipeline, Metrics: metrics[:1+rng.IntN(3)]}

	// A range inside the data, of a length suiting the interval; ends on boundaries of
	// the unit, or on no boundary at all.
	rangeOf := func(unit time.Duration, minUnits, maxUnits int, aligned bool) {
		start := from.Add(time.Duration(rng.Int64N(int64(span-time.Duration(maxUnits)*unit)/int64(unit))) * unit)
		end := start.Add(time.Duration(minUnits+rng.IntN(maxUnits-minUnits+1)) * unit)
		if !aligned {
			start = start.Add(time.Duration(1+rng.IntN(59)) * time.Second)
			end = end.Add(-time.Duration(1+rng.IntN(59)) * time.Second)
		}
		q.From, q.To = start, end
	}
	aligned := rng.IntN(3) > 0
	switch rng.IntN(6) {
	case 0:
		q.Interval = metricquery.IntervalMinute
		rangeOf(time.Minute, 30, 600, aligned)
	case 1:
		q.Interval = metricquery.IntervalHour
		rangeOf(time.Hour, 6, 120, aligned)
	case 2:
		q.Interval = metricquery.IntervalDay
		rangeOf(24*time.Hour, 2, 30, aligned)
	case 3:
		rangeOf(24*time.Hour, 1, 30, aligned)
	case 4:
		rangeOf(time.Hour, 1, 72, aligned)
	default:
		rangeOf(time.Minute, 10, 600, aligned)
	}

	fields := []string{"properties.country", "event_type", "properties.plan", "properties.tier", "properties.device"}
	rng.Shuffle(len(fields), func(i, j int) { fields[i], fields[j] = fields[j], fields[i] })
	// Mostly dimensions; properties.device is not one, so the rollup cannot answer.
	for _, f := range fields[:rng.IntN(3)] {
		if f == "properties.device" && rng.IntN(2) == 0 {
			continue
		}
		q.GroupBy = append(q.GroupBy, f)
	}
	filters := []metricquery.Filter{
		{Field: "properties.country", Op: metricquery.OpEq, Values: []string{countries[rng.IntN(len(countries))]}},
		{Field: "properties.country", Op: metricquery.OpNeq, Values: []string{"de"}},
		{Field: "properties.country", Op: metricquery.OpIn, Values: []string{"fr", `a\b'c`, "x' OR 1=1 --"}},
		{Field: "properties.country", Op: metricquery.OpContains, Values: []string{"'"}},
		{Field: "properties.plan", Op: metricquery.OpEq, Values: []string{""}},
		{Field: "properties.tier", Op: metricquery.OpGt, Values: []string{"1"}},
		{Field: "properties.tier", Op: metricquery.OpLt, Values: []string{"2.5"}},
		{Field: "event_type", Op: metricquery.OpEq, Values: []string{"purchase"}},
		{Field: "properties.device", Op: metricquery.OpEq, Values: []string{"ios"}},
	}
	for range rng.IntN(3) {
		if f := filters[rng.IntN(len(filters))]; f.Field != "properties.device" || rng.IntN(3) == 0 {
			q.Filters = append(q.Filters, f)
		}
	}
	q.Order = metricquery.OrderDesc
	if rng.IntN(2) == 0 {
		q.Order = metricquery.OrderAsc
	}
	if rng.IntN(4) > 0 {
		q.Limit = 1 + rng.IntN(5)
	}
	return q
}

// compareResults describes how got differs from want, "" when it does not, with both
// answers' groups when they differ. The test data's amounts are integers and halves,
// whose sums are exact, so Diff's 1e-9 relative is generous.
func compareResults(got, want metricquery.Result) string {
	if diff := got.Diff(want); diff != "" {
		return fmt.Sprintf("%s\ngot  %v\nwant %v", diff, groups(got), groups(want))
	}
	return ""
}

func groups(r metricquery.Result) []map[string]string {
	out := make([]map[string]string, len(r.Series))
	for i, s := range r.Series {
		out[i] = s.Group
	}
	return out
}

// TestChooseSource: which source each kind of query is read from.
func TestChooseSource(t *testing.T) {
	p, err := rollup.Compile(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	hourOnly := testSpec()
	hourOnly.Granularities = hourOnly.Granularities[1:2]
	ph, err := rollup.Compile(hourOnly)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	base := metricquery.Query{Mode: metricquery.ModePipeline, Pipeline: "shop", Metrics: []string{"events"}, From: day, To: day.Add(48 * time.Hour)}
	with := func(f func(q *metricquery.Query)) metricquery.Query {
		q := base
		f(&q)
		return q
	}
	for _, tc := range []struct {
		name  string
		plan  *rollup.Plan
		ready bool
		q     metricquery.Query
		want  metricquery.Source
		gran  string
		from  time.Time
		to    time.Time
	}{
		{"no rollup yet", p, false, base, metricquery.SourceRaw, "", base.From, base.To},
		{"total over whole days reads days", p, true, base, metricquery.SourceRollup, "day", base.From, base.To},
		{"total over whole hours reads hours", p, true, with(func(q *metricquery.Query) { q.To = day.Add(5 * time.Hour) }), metricquery.SourceRollup, "hour", day, day.Add(5 * time.Hour)},
		{"total over whole minutes reads minutes", p, true, with(func(q *metricquery.Query) { q.From = day.Add(time.Minute) }), metricquery.SourceRollup, "minute", day.Add(time.Minute), base.To},
		{"total off every boundary", p, true, with(func(q *metricquery.Query) { q.From = day.Add(time.Second) }), metricquery.SourceRaw, "", day.Add(time.Second), base.To},
		{"total over minutes without a minute rollup", ph, true, with(func(q *metricquery.Query) { q.From = day.Add(time.Minute) }), metricquery.SourceRaw, "", day.Add(time.Minute), base.To},
		{"days on an hour-only rollup read hours", ph, true, base, metricquery.SourceRollup, "hour", base.From, base.To},
		{"interval kept", p, true, with(func(q *metricquery.Query) { q.Interval = metricquery.IntervalHour; q.From = day.Add(90 * time.Second) }), metricquery.SourceRollup, "hour", day, base.To},
		{"interval widened to whole buckets", p, true, with(func(q *metricquery.Query) { q.Interval = metricquery.IntervalDay; q.To = day.Add(25 * time.Hour) }), metricquery.SourceRollup, "day", day, day.Add(48 * time.Hour)},
		{"interval not kept", ph, true, with(func(q *metricquery.Query) { q.Interval = metricquery.IntervalMinute }), metricquery.SourceRaw, "minute", base.From, base.To},
		{"group by a dimension", p, true, with(func(q *metricquery.Query) { q.GroupBy = []string{"properties.plan"} }), metricquery.SourceRollup, "day", base.From, base.To},
		{"group by a non-dimension", p, true, with(func(q *metricquery.Query) { q.GroupBy = []string{"properties.plan", "user_id"} }), metricquery.SourceRaw, "", base.From, base.To},
		{"filter on a non-dimension", p, true, with(func(q *metricquery.Query) {
			q.Filters = []metricquery.Filter{{Field: "session_id", Op: metricquery.OpEq, Values: []string{"s"}}}
		}), metricquery.SourceRaw, "", base.From, base.To},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := choose(tc.plan, tc.ready, tc.q)
			if c.source != tc.want || string(c.query.Granularity) != tc.gran || !c.query.From.Equal(tc.from) || !c.query.To.Equal(tc.to) {
				t.Errorf("got %s %q [%s, %s), want %s %q [%s, %s)", c.source, c.query.Granularity, c.query.From, c.query.To, tc.want, tc.gran, tc.from, tc.to)
			}
		})
	}
}
