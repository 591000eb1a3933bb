package bench

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/internal/testbackends"
	"github.com/shoal-dev/shoal/runtime/query/metricquery"
)

func TestEventGen(t *testing.T) {
	from := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, QueryDays)
	evs := newEventGen(from, QueryDays).batch(0, 20000)
	size, err := wireSize(evs)
	if err != nil {
		t.Fatal(err)
	}
	if size < 250 || size > 350 {
		t.Errorf("events of %d bytes on the wire, want about 300", size)
	}
	countries := map[string]int{}
	types := map[string]bool{}
	for _, e := range evs {
		var props map[string]any
		if err := json.Unmarshal(e.Properties, &props); err != nil {
			t.Fatalf("properties %s: %v", e.Properties, err)
		}
		if len(props) != 8 {
			t.Fatalf("%d properties, want 8: %s", len(props), e.Properties)
		}
		if e.Timestamp.Before(from) || !e.Timestamp.Before(to) {
			t.Fatalf("timestamp %s outside [%s, %s)", e.Timestamp, from, to)
		}
		if d := e.ReceivedAt.Sub(e.Timestamp); d < 0 || d >= 10*time.Second {
			t.Fatalf("received %s after its timestamp", d)
		}
		countries[props["country"].(string)]++
		types[e.EventType] = true
	}
	if len(countries) != len(queryCountries) || len(types) != 4 {
		t.Errorf("%d countries and %d event types, want %d and 4", len(countries), len(types), len(queryCountries))
	}
	// Skewed, so a top 10 ranks rather than ties: the first country is far more common
	// than the last.
	if first, last := countries[queryCountries[0]], countries[queryCountries[len(queryCountries)-1]]; first < 5*last {
		t.Errorf("%s has %d events, %s %d: want a skew", queryCountries[0], first, queryCountries[len(queryCountries)-1], last)
	}
}

func TestQueryMix(t *testing.T) {
	to := time.Date(2024, 5, 31, 0, 0, 0, 0, time.UTC)
	mix, err := queryMix(to.AddDate(0, 0, -QueryDays), to)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		interval metricquery.Interval
		groupBy  int
		limit    int
		days     int
	}{
		{"daily-30d", metricquery.IntervalDay, 0, metricquery.DefaultLimit, 30},
		{"top10-country-daily", metricquery.IntervalDay, 1, 10, 30},
		{"total-7d-by-plan", "", 1, metricquery.DefaultLimit, 7},
		{"hourly-2d", metricquery.IntervalHour, 0, metricquery.DefaultLimit, 2},
	}
	if len(mix) != len(tests) {
		t.Fatalf("%d queries, want %d", len(mix), len(tests))
	}
	for i, tt := range tests {
		q := mix[i]
		if q.name != tt.name || q.query.Interval != tt.interval || len(q.query.GroupBy) != tt.groupBy || q.query.Limit != tt.limit {
			t.Errorf("query %d: %s interval %q, %d group-by, limit %d; want %+v", i, q.name, q.query.Interval, len(q.query.GroupBy), q.query.Limit, tt)
		}
		// Whole days, ending at the last midnight: a total is read from the day buckets.
		if !q.query.To.Equal(to) || !q.query.From.Equal(to.AddDate(0, 0, -tt.days)) {
			t.Errorf("%s: [%s, %s), want the %d days before %s", q.name, q.query.From, q.query.To, tt.days, to)
		}
	}
}

func TestQueryReportText(t *testing.T) {
	r := &QueryReport{
		ClickHouse: "127.0.0.1:9000", ClickHouseVersion: "18.16.1", Events: 1000, Days: 30, Target: QueryTargetP99, RawRepeats: 5,
		Latency: []QueryLatency{
			{Name: "fast", Statements: 1, RowsRead: 10, API: Latency{P50: 0.002, P99: 0.004}, Direct: Latency{P50: 0.002, P99: 0.004}, P50Ratio: 1, P99Ratio: 1},
		},
		Overall:     QueryLatency{Name: "all", API: Latency{P50: 0.002, P99: 0.006}, Direct: Latency{P50: 0.002, P99: 0.004}, P50Ratio: 1, P99Ratio: 1.5},
		RollupVsRaw: []SourceSpeedup{{Name: "fast", Rollup: 0.002, Raw: 0.2, Speedup: 100}},
	}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"18.16.1", "1000 over 30 days", "4.00 ms", "1.00x", "100.0x", "median of 5"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	lines := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		// The latency table comes first; the rollup table repeats the names.
		if name, _, ok := strings.Cut(line, " "); ok && lines[name] == "" {
			lines[name] = line
		}
	}
	if l := lines["fast"]; !strings.HasSuffix(l, " met") || strings.HasSuffix(l, "NOT met") {
		t.Errorf("a p99 ratio of 1.0 should meet the target: %q", l)
	}
	if l := lines["all"]; !strings.HasSuffix(l, "NOT met") {
		t.Errorf("a p99 ratio of 1.5 should not meet the target: %q", l)
	}
}

// queryBackends are a ClickHouse and a PostgreSQL for the query benchmark, as a
// platform config.
func queryBackends(t *testing.T) *config.Platform {
	t.Helper()
	ch := testbackends.StartClickHouse(t)
	pg := testbackends.StartPostgres(t)
	p := &config.Platform{}
	p.ClickHouse.Addr, p.ClickHouse.User, p.ClickHouse.Password, p.ClickHouse.UsersDir = ch.Addr, ch.User, ch.Password, ch.UsersDir
	p.Metastore.DSN = pg.CreateDatabase(t, "shoal")
	p.Default()
	return p
}

// assertRemoved checks the run's tenant left nothing behind.
func assertRemoved(t *testing.T, p *config.Platform, tenant string) {
	t.Helper()
	ctx := context.Background()
	conn, err := clickhouse.Dial(p.ClickHouse, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", naming.Database(tenant)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s is left behind", naming.Database(tenant))
	}
	store, err := metastore.Open(ctx, p.Metastore)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.GetTenant(ctx, tenant); !errors.Is(err, metastore.ErrNotFound) {
		t.Errorf("tenant %s: %v, want it deleted", tenant, err)
	}
}

// TestRunQuery runs the benchmark small against a real ClickHouse and PostgreSQL: the
// API answers every query from the rollup with the statements sent straight, the rollup
// and the raw events agree (RunQuery fails otherwise), and nothing is left behind, also
// when the run fails half way.
func TestRunQuery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ClickHouse and PostgreSQL")
	}
	p := queryBackends(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("complete", func(t *testing.T) {
		report, err := RunQuery(ctx, QueryOptions{Platform: p, Events: 20000, Repeats: 4, RawRepeats: 2})
		if err != nil {
			t.Fatal(err)
		}
		var text strings.Builder
		if err := report.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		t.Logf("report:\n%s", text.String())
		if report.Events != 20000 || report.EventBytes < 250 || report.RollupRows == 0 || report.BackfillChunks == 0 {
			t.Errorf("events %d of %d bytes, %d rollup rows from %d chunks", report.Events, report.EventBytes, report.RollupRows, report.BackfillChunks)
		}
		if len(report.Latency) != 4 || len(report.RollupVsRaw) != 4 {
			t.Fatalf("%d latencies and %d speedups, want 4 each", len(report.Latency), len(report.RollupVsRaw))
		}
		// A ranked query with an interval reads the totals of the groups, then their
		// series; the other queries (a ranked total too) take one statement.
		statements := map[string]int{"daily-30d": 1, "top10-country-daily": 2, "total-7d-by-plan": 1, "hourly-2d": 1}
		for _, l := range report.Latency {
			wantStatements := statements[l.Name]
			if l.Source != string(metricquery.SourceRollup) || l.Statements != wantStatements || l.RowsRead == 0 {
				t.Errorf("%s: source %s, %d statements, %d rows read; want the rollup, %d statements", l.Name, l.Source, l.Statements, l.RowsRead, wantStatements)
			}
			if l.API.P50 <= 0 || l.Direct.P50 <= 0 || l.API.P99 < l.API.P50 || l.P99Ratio != l.API.P99/l.Direct.P99 {
				t.Errorf("%s: %+v", l.Name, l)
			}
		}
		if report.Overall.API.P99 < report.Latency[0].API.P50 {
			t.Errorf("overall %+v is not over every query", report.Overall)
		}
		points := map[string]int{"daily-30d": 30, "top10-country-daily": 300, "total-7d-by-plan": 4, "hourly-2d": 48}
		for _, s := range report.RollupVsRaw {
			if s.Points != points[s.Name] || s.Rollup <= 0 || s.Raw <= 0 || s.Speedup != s.Raw/s.Rollup {
				t.Errorf("%s: %+v, want %d points", s.Name, s, points[s.Name])
			}
			if s.RawRowsRead == 0 || s.RollupRowsRead == 0 {
				t.Errorf("%s: rows read %d from the rollup, %d raw", s.Name, s.RollupRowsRead, s.RawRowsRead)
			}
		}
		if len(report.Statements) != 5 {
			t.Errorf("%d statements recorded, want 5: %v", len(report.Statements), report.Statements)
		}
		assertRemoved(t, p, report.Tenant)
	})

	t.Run("failed", func(t *testing.T) {
		// The run is stopped once the rollup is being built: the tenant, its token and its
		// events exist by then.
		now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
		runCtx, stop := context.WithCancel(ctx)
		defer stop()
		progress := &cancelOn{text: "building rollup", cancel: stop}
		_, err := RunQuery(runCtx, QueryOptions{Platform: p, Events: 1000, Progress: progress, Now: func() time.Time { return now }})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want the run canceled", err)
		}
		assertRemoved(t, p, runTenant("query", now))
	})
}

// cancelOn cancels when a progress line holds text.
type cancelOn struct {
	mu     sync.Mutex
	text   string
	cancel func()
}

func (c *cancelOn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if strings.Contains(string(b), c.text) {
		c.cancel()
	}
	return len(b), nil
}
