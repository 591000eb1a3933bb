package rollup

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/testbackends"
)

// event is one row of the events table.
type event struct {
	id, typ, user, session, props string
	ts, received                  time.Time
}

// Country values include ones that would break out of an unescaped literal: the filter
// below keeps two of them, and the expected counts computed here in Go prove the
// escaped literals match them exactly.
var countries = []string{"de", "fr", "us", `it'; DROP TABLE events; --`, `a\b'c`, "é"}

var keptCountries = []string{"de", "fr", `it'; DROP TABLE events; --`, `a\b'c`, "é"}

// propertyTestSpec aggregates page views and purchases outside the US.
func propertyTestSpec() v1alpha1.PipelineSpec {
	return v1alpha1.PipelineSpec{
		Source: v1alpha1.PipelineSource{
			EventTypes: []string{"page_view", "purchase"},
			Filter:     []v1alpha1.Filter{{Field: "properties.country", Op: v1alpha1.FilterIn, Values: keptCountries}},
		},
		Metrics: []v1alpha1.Metric{
			{Name: "events", Type: v1alpha1.MetricCount},
			{Name: "revenue", Type: v1alpha1.MetricSum, Field: "properties.amount"},
			{Name: "avg_amount", Type: v1alpha1.MetricAvg, Field: "properties.amount"},
			{Name: "min_amount", Type: v1alpha1.MetricMin, Field: "properties.amount"},
			{Name: "max_amount", Type: v1alpha1.MetricMax, Field: "properties.amount"},
			{Name: "users", Type: v1alpha1.MetricUniq, Field: "user_id"},
			{Name: "latency", Type: v1alpha1.MetricQuantile, Field: "properties.latency_ms", Quantiles: []string{"0.5", "0.9", "0.99"}},
		},
		Dimensions:    []v1alpha1.FieldRef{"properties.country", "event_type", "properties.plan"},
		Granularities: []v1alpha1.Granularity{v1alpha1.GranularityMinute, v1alpha1.GranularityHour, v1alpha1.GranularityDay},
	}
}

// randomEvents makes n events with timestamps in [from, from+span) received at receivedIn.
func randomEvents(rng *rand.Rand, n int, prefix string, from time.Time, span time.Duration, received func(ts time.Time) time.Time) []event {
	types := []string{"page_view", "purchase", "signup"}
	plans := []string{"free", "team", ""}
	out := make([]event, n)
	for i := range out {
		// Few distinct minutes so minute buckets hold several events.
		ts := from.Add(time.Duration(rng.Int64N(int64(span/time.Minute))) * time.Minute).Add(time.Duration(rng.IntN(60)) * time.Second)
		props := fmt.Sprintf(`{"country":%s`, strconv.Quote(countries[rng.IntN(len(countries))]))
		switch rng.IntN(5) {
		case 0: // no amount: left out of sum, avg, min and max
		case 1: // a string is not a number, even when it looks like one
			props += `,"amount":"12"`
		case 2: // halves are exact in binary floating point
			props += fmt.Sprintf(`,"amount":%d.5`, rng.IntN(1000)-100)
		default:
			props += fmt.Sprintf(`,"amount":%d`, rng.IntN(100000))
		}
		if rng.IntN(10) > 0 {
			props += fmt.Sprintf(`,"latency_ms":%d`, rng.IntN(5000))
		}
		if p := plans[rng.IntN(len(plans))]; p != "" {
			props += `,"plan":` + strconv.Quote(p)
		}
		props += "}"
		user := ""
		if rng.IntN(8) > 0 {
			user = fmt.Sprintf("u%d", rng.IntN(60))
		}
		out[i] = event{
			id: fmt.Sprintf("%s-%06d", prefix, i), typ: types[rng.IntN(len(types))], user: user,
			session: fmt.Sprintf("s%d", rng.IntN(500)), props: props, ts: ts, received: received(ts),
		}
	}
	return out
}

type propertyEnv struct {
	conn    driver.Conn
	client  *Client
	dialect clickhouse.Dialect
	db      string
}

func startPropertyEnv(t *testing.T) *propertyEnv {
	t.Helper()
	srv := testbackends.StartClickHouse(t)
	conn, err := clickhouse.Dial(clickhouse.Config{Addr: srv.Addr, User: srv.User, Password: srv.Password}, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx := context.Background()
	c, err := NewClient(ctx, conn, "")
	if err != nil {
		t.Fatal(err)
	}
	e := &propertyEnv{conn: conn, client: c, dialect: c.Dialect(), db: "tenant_prop"}
	for _, build := range []func() (clickhouse.Statement, error){
		func() (clickhouse.Statement, error) { return e.dialect.CreateDatabase(e.db) },
		func() (clickhouse.Statement, error) { return e.dialect.CreateEventsTable(e.db, 0) },
	} {
		st, err := build()
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.Exec(ctx, st.SQL); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *propertyEnv) insert(t *testing.T, evs []event) {
	t.Helper()
	ctx := context.Background()
	b, err := e.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO `%s`.`events` (`event_id`, `event_type`, `timestamp`, `received_at`, `user_id`, `session_id`, `properties`)", e.db))
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if err := b.Append(ev.id, ev.typ, ev.ts, ev.received, ev.user, ev.session, ev.props); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// rows runs a statement and returns its rows as comparable Go values.
func (e *propertyEnv) rows(t *testing.T, st clickhouse.Statement) [][]any {
	t.Helper()
	rs, err := e.conn.Query(context.Background(), st.SQL, st.Args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, st.SQL)
	}
	defer func() { _ = rs.Close() }()
	types := rs.ColumnTypes()
	var out [][]any
	for rs.Next() {
		ptrs := make([]any, len(types))
		for i, ct := range types {
			ptrs[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]any, len(ptrs))
		for i, p := range ptrs {
			row[i] = reflect.ValueOf(p).Elem().Interface()
		}
		out = append(out, row)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameValue compares two result cells. Sums and averages of Float64 depend on the order
// of addition, which differs between merging states and one pass, so they agree to a
// relative 1e-9; counts, uniq (deterministic: its hash set does not depend on the order),
// min, max and quantilesDeterministic (a sample chosen by event_id hash, the same set
// either way) must be equal.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		if !ok {
			return false
		}
		if x == y || (math.IsNaN(x) && math.IsNaN(y)) {
			return true
		}
		return math.Abs(x-y) <= 1e-9*math.Max(math.Abs(x), math.Abs(y))
	case []float64:
		y, ok := b.([]float64)
		// A quantile of no values is NaN in both.
		return ok && slices.EqualFunc(x, y, func(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) })
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	}
	return reflect.DeepEqual(a, b)
}

// compare checks that the rollup answers every query exactly as the raw events do.
func (e *propertyEnv) compare(t *testing.T, tgt Target, p *Plan, w Window, from, to time.Time) {
	t.Helper()
	groupings := [][]v1alpha1.FieldRef{nil, p.Dimensions(), {"properties.country"}}
	for _, g := range p.Granularities() {
		for _, groupBy := range groupings {
			q := Query{Granularity: g, GroupBy: groupBy, From: from, To: to}
			got, _, err := Select(e.dialect, tgt, p, q)
			if err != nil {
				t.Fatal(err)
			}
			want, _, err := RawSelect(e.dialect, e.db, p, w, q)
			if err != nil {
				t.Fatal(err)
			}
			gotRows, wantRows := e.rows(t, got), e.rows(t, want)
			if len(wantRows) == 0 {
				t.Fatalf("%s by %v: the raw events give no rows; the test data is wrong", g, groupBy)
			}
			if len(gotRows) != len(wantRows) {
				t.Fatalf("%s by %v: rollup has %d rows, raw events %d", g, groupBy, len(gotRows), len(wantRows))
			}
			for i := range wantRows {
				for j := range wantRows[i] {
					if !sameValue(gotRows[i][j], wantRows[i][j]) {
						t.Fatalf("%s by %v row %d column %d: rollup %v, raw events %v\nrollup row %v\nraw row    %v",
							g, groupBy, i, j, gotRows[i][j], wantRows[i][j], gotRows[i], wantRows[i])
					}
				}
			}
		}
	}
}

// expectedDaily computes in Go, independently of the SQL, the events per day and the
// revenue per day the property-test pipeline must report for events.
func expectedDaily(evs []event, keep func(event) bool) (map[time.Time]uint64, map[time.Time]float64) {
	counts, revenue := map[time.Time]uint64{}, map[time.Time]float64{}
	for _, ev := range evs {
		if ev.typ != "page_view" && ev.typ != "purchase" {
			continue
		}
		country := ev.props[len(`{"country":`):]
		matched := false
		for _, c := range keptCountries {
			if len(country) > len(strconv.Quote(c)) && country[:len(strconv.Quote(c))] == strconv.Quote(c) {
				matched = true
			}
		}
		if !matched || !keep(ev) {
			continue
		}
		day := ev.ts.Truncate(24 * time.Hour)
		counts[day]++
		var amount float64
		if n, _ := fmt.Sscanf(afterKey(ev.props, `"amount":`), "%g", &amount); n == 1 {
			revenue[day] += amount
		}
	}
	return counts, revenue
}

func afterKey(s, key string) string {
	for i := 0; i+len(key) <= len(s); i++ {
		if s[i:i+len(key)] == key {
			return s[i+len(key):]
		}
	}
	return ""
}

func (e *propertyEnv) checkDaily(t *testing.T, tgt Target, p *Plan, from, to time.Time, counts map[time.Time]uint64, revenue map[time.Time]float64) {
	t.Helper()
	st, _, err := Select(e.dialect, tgt, p, Query{Granularity: v1alpha1.GranularityDay, Metrics: []string{"events", "revenue"}, From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	rows := e.rows(t, st)
	if len(rows) != len(counts) {
		t.Fatalf("rollup has %d days, Go counted %d", len(rows), len(counts))
	}
	for _, r := range rows {
		day := r[0].(time.Time).UTC()
		if r[1].(uint64) != counts[day] {
			t.Errorf("day %s: rollup counts %d events, Go %d", day.Format(time.DateOnly), r[1], counts[day])
		}
		if !sameValue(r[2].(float64), revenue[day]) {
			t.Errorf("day %s: rollup revenue %v, Go %v", day.Format(time.DateOnly), r[2], revenue[day])
		}
	}
}

func seed(t *testing.T) uint64 {
	if s := os.Getenv("SHOAL_ROLLUP_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// TestRollupEqualsRawAggregate: the live view, the backfill, and the two together give
// the same answer as aggregating the raw events, for every metric type, granularity and
// grouping, including a backfill chunk rerun after a simulated crash. It needs the real
// server: the SQL semantics (state merging, ARRAY JOIN in a view, partitions) are the
// point.
func TestRollupEqualsRawAggregate(t *testing.T) {
	s := seed(t)
	t.Logf("seed %d (rerun with SHOAL_ROLLUP_SEED=%d)", s, s)
	rng := rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))
	e := startPropertyEnv(t)
	ctx := context.Background()

	from := time.Date(2024, 1, 20, 0, 0, 0, 0, time.UTC) // spans January to April
	span := 90 * 24 * time.Hour
	to := from.Add(span + 24*time.Hour)
	cutoff := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	before := func(time.Time) time.Time { return cutoff.Add(-time.Duration(1+rng.IntN(1000)) * time.Minute) }
	after := func(time.Time) time.Time { return cutoff.Add(time.Duration(rng.IntN(1000)) * time.Minute) }

	// Stored before the pipeline exists: only the backfill sees them.
	stored := randomEvents(rng, 2000+rng.IntN(1000), "stored", from, span, before)
	e.insert(t, stored)

	spec := propertyTestSpec()
	p, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	since := time.Date(2024, 2, 10, 0, 0, 0, 0, time.UTC)
	pipelines := []struct {
		name   string
		target Target
		plan   *Plan
		window Window
	}{
		{"all", Target{Database: e.db, Table: "rollup_all", View: "rollup_all_mv"}, p, Window{Cutoff: cutoff, Backfill: true}},
		{"since", Target{Database: e.db, Table: "rollup_since", View: "rollup_since_mv"}, p, Window{Cutoff: cutoff, Backfill: true, Since: &since}},
		{"live", Target{Database: e.db, Table: "rollup_live", View: "rollup_live_mv"}, p, Window{Cutoff: cutoff}},
	}
	for _, pl := range pipelines {
		if err := e.client.Create(ctx, pl.target, pl.plan, pl.window); err != nil {
			t.Fatal(err)
		}
	}

	// After the views exist: events received after the cutoff (the views count them),
	// and late ones received before it that the processor stored only now (the
	// backfill counts them).
	live := randomEvents(rng, 1000+rng.IntN(500), "live", from, span, after)
	late := randomEvents(rng, 300, "late", from, span, before)
	e.insert(t, append(slices.Clone(live), late...))

	for _, pl := range pipelines[:2] {
		chunks, err := e.client.PendingChunks(ctx, e.db, pl.plan, pl.window, 0)
		if err != nil {
			t.Fatal(err)
		}
		wantFirst := 202401
		if pl.window.Since != nil {
			wantFirst = 202402
		}
		if len(chunks) == 0 || chunks[0] != wantFirst || chunks[len(chunks)-1] != 202404 {
			t.Fatalf("%s: chunks %v, want %d to 202404", pl.name, chunks, wantFirst)
		}
		// A crash after the first chunk's insert but before its progress was recorded:
		// the chunk is run again, which must replace its rows, not add to them.
		st, err := BackfillChunk(e.dialect, pl.target, pl.plan, pl.window, chunks[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := e.conn.Exec(ctx, st.SQL); err != nil {
			t.Fatal(err)
		}
		var total uint64
		for _, c := range chunks {
			n, err := e.client.BackfillChunk(ctx, pl.target, pl.plan, pl.window, c)
			if err != nil {
				t.Fatal(err)
			}
			total += n
		}
		if total == 0 {
			t.Fatalf("%s: the backfill aggregated no events", pl.name)
		}
		rest, err := e.client.PendingChunks(ctx, e.db, pl.plan, pl.window, chunks[len(chunks)-1])
		if err != nil || len(rest) != 0 {
			t.Fatalf("%s: chunks after the last: %v %v", pl.name, rest, err)
		}
		// And a chunk rerun once everything is done changes nothing either.
		if _, err := e.client.BackfillChunk(ctx, pl.target, pl.plan, pl.window, chunks[len(chunks)/2]); err != nil {
			t.Fatal(err)
		}
	}

	// More events after the backfill, some redelivered: the processor skips an event the
	// table holds, so a redelivery never reaches the view; inserting only new ones is
	// what it does.
	more := randomEvents(rng, 500, "more", from, span, after)
	e.insert(t, more)

	for _, pl := range pipelines {
		t.Run(pl.name, func(t *testing.T) {
			e.compare(t, pl.target, pl.plan, pl.window, from.Truncate(24*time.Hour), to)
		})
	}

	all := slices.Concat(stored, live, late, more)
	counts, revenue := expectedDaily(all, func(event) bool { return true })
	e.checkDaily(t, pipelines[0].target, p, from, to, counts, revenue)
	counts, revenue = expectedDaily(all, func(ev event) bool { return !ev.received.Before(cutoff) })
	e.checkDaily(t, pipelines[2].target, p, from, to, counts, revenue)
}
