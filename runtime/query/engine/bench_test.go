package engine

import (
	"context"
	"maps"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/runtime/query/metricquery"
)

// Benchmarks run only with -bench. SHOAL_BENCH_EVENTS sets how many events they load
// (default 20000, so a smoke run stays quick); the figure is 10M:
//
//	SHOAL_BENCH_EVENTS=1000000 go test ./runtime/query/engine/ -run '^$' -bench . -benchtime 20x
func benchEvents(b *testing.B) int {
	n := 20000
	if s := os.Getenv("SHOAL_BENCH_EVENTS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			b.Fatalf("SHOAL_BENCH_EVENTS=%q is not a positive number", s)
		}
		n = v
	}
	return n
}

// loadBench loads n events over 30 days, counted by the view of a pipeline created
// first, into a tenant of its own.
func loadBench(b *testing.B, tenant string) (time.Time, time.Time) {
	b.Helper()
	n := benchEvents(b)
	rng := rand.New(rand.NewPCG(1, 2))
	from := time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)
	span := 30 * 24 * time.Hour
	cutoff := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	newTenant(b, tenant)
	start := time.Now()
	createPipelines(b, tenant, []string{"shop"}, []v1alpha1.PipelineSpec{testSpec()}, pipelineData{
		cutoff: cutoff,
		live:   randomEvents(rng, n, "b", from, span, func(ts time.Time) time.Time { return cutoff.Add(time.Hour) }),
	})
	b.Logf("loaded %d events in %s", n, time.Since(start).Round(time.Millisecond))
	return from, from.Add(span)
}

// benchQueries are a dashboard's usual reads: a daily series, a top-10 by a dimension,
// a total.
func benchQueries(from, to time.Time) map[string]metricquery.Query {
	base := metricquery.Query{Mode: metricquery.ModePipeline, Pipeline: "shop", Metrics: []string{"events", "revenue", "users"}, From: from, To: to, Order: metricquery.OrderDesc}
	daily, top, total := base, base, base
	daily.Interval = metricquery.IntervalDay
	top.Interval, top.GroupBy, top.Limit = metricquery.IntervalDay, []string{"properties.country"}, 10
	return map[string]metricquery.Query{"daily": daily, "top10-by-country": top, "total": total}
}

// BenchmarkRollupVsRaw answers the same queries from the rollup and from the raw events;
// the answers are checked equal first. The ratio of the ns/op is the rollup's speedup.
func BenchmarkRollupVsRaw(b *testing.B) {
	from, to := loadBench(b, "benchsrc")
	ctx := context.Background()
	engines := map[string]*Engine{"rollup": newEngine(b, Options{}), "raw": newEngine(b, Options{ForceRaw: true})}
	queries := benchQueries(from, to)
	for _, name := range slices.Sorted(maps.Keys(queries)) {
		q := queries[name]
		got, err := engines["rollup"].Query(ctx, "benchsrc", q)
		if err != nil {
			b.Fatal(err)
		}
		want, err := engines["raw"].Query(ctx, "benchsrc", q)
		if err != nil {
			b.Fatal(err)
		}
		if got.Source != metricquery.SourceRollup {
			b.Fatalf("%s read %s", name, got.Source)
		}
		if diff := compareResults(got, want); diff != "" {
			b.Fatalf("%s: the rollup and the raw events disagree: %s", name, diff)
		}
		for _, source := range []string{"rollup", "raw"} {
			b.Run(name+"/"+source, func(b *testing.B) {
				var rows uint64
				for b.Loop() {
					r, err := engines[source].Query(ctx, "benchsrc", q)
					if err != nil {
						b.Fatal(err)
					}
					rows += r.Stats.RowsRead
				}
				b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
			})
		}
	}
}

// BenchmarkEngineVsDriver measures the engine's latency (catalog lookup, planning,
// SQL building, scanning, assembling the series) against the statement it sends, sent
// straight through the same driver connection and scanned, alternating the two in one
// run; p50 and p99 of each are reported.
func BenchmarkEngineVsDriver(b *testing.B) {
	from, to := loadBench(b, "benchlat")
	ctx := context.Background()
	e := newEngine(b, Options{})
	for _, name := range []string{"daily", "total"} {
		q := benchQueries(from, to)[name]
		p, err := e.pipelinePlan(ctx, "tenant_benchlat", "benchlat", q)
		if err != nil {
			b.Fatal(err)
		}
		st, _, err := p.build(p.query)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			var viaEngine, direct []time.Duration
			for b.Loop() {
				start := time.Now()
				if _, err := e.Query(ctx, "benchlat", q); err != nil {
					b.Fatal(err)
				}
				viaEngine = append(viaEngine, time.Since(start))

				start = time.Now()
				rows, err := shared.conn.Query(ctx, st.SQL, st.Args...)
				if err != nil {
					b.Fatal(err)
				}
				types := rows.ColumnTypes()
				dest := make([]any, len(types))
				for rows.Next() {
					for i, ct := range types {
						dest[i] = reflect.New(ct.ScanType()).Interface()
					}
					if err := rows.Scan(dest...); err != nil {
						b.Fatal(err)
					}
				}
				if err := rows.Err(); err != nil {
					b.Fatal(err)
				}
				_ = rows.Close()
				direct = append(direct, time.Since(start))
			}
			pe50, pe99 := percentiles(viaEngine)
			pd50, pd99 := percentiles(direct)
			b.ReportMetric(ms(pe50), "engine-p50-ms")
			b.ReportMetric(ms(pe99), "engine-p99-ms")
			b.ReportMetric(ms(pd50), "driver-p50-ms")
			b.ReportMetric(ms(pd99), "driver-p99-ms")
			b.ReportMetric(float64(pe99)/float64(pd99), "p99-ratio")
		})
	}
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)*50/100], s[min(len(s)*99/100, len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
