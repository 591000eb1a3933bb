package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/internal/rollup"
	"github.com/shoal-dev/shoal/internal/testbackends"
)

// shared are the real backends every test and benchmark of the package uses: one
// ClickHouse 18.16 (a database per tenant) and one PostgreSQL holding the pipeline
// records.
var shared struct {
	ch    *testbackends.ClickHouse
	conn  driver.Conn
	store *metastore.Store
	rc    *rollup.Client
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	suite := testbackends.NewSuite("engine")
	defer suite.Close()
	if err := suite.Do(func(tb testing.TB) {
		ctx := context.Background()
		shared.ch = testbackends.StartClickHouse(tb)
		conn, err := clickhouse.Dial(clickhouse.Config{Addr: shared.ch.Addr, User: shared.ch.User, Password: shared.ch.Password}, 8)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = conn.Close() })
		shared.conn = conn
		if shared.rc, err = rollup.NewClient(ctx, conn, ""); err != nil {
			tb.Fatal(err)
		}
		pg := testbackends.StartPostgres(tb)
		store, err := metastore.Open(ctx, metastore.Config{DSN: pg.CreateDatabase(tb, "engine")})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(store.Close)
		shared.store = store
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// event is one row of the events table.
type event struct {
	id, typ, user, session, props string
	ts, received                  time.Time
}

// newTenant creates a tenant's record and its ClickHouse database with the events table.
func newTenant(tb testing.TB, tenant string) string {
	tb.Helper()
	ctx := context.Background()
	if err := shared.store.UpsertTenant(ctx, metastore.TenantRecord{ID: tenant, Plan: "starter", Isolation: metastore.IsolationShared}); err != nil {
		tb.Fatal(err)
	}
	db := naming.Database(tenant)
	d := shared.rc.Dialect()
	for _, build := range []func() (clickhouse.Statement, error){
		func() (clickhouse.Statement, error) { return d.CreateDatabase(db) },
		func() (clickhouse.Statement, error) { return d.CreateEventsTable(db, 0) },
	} {
		st, err := build()
		if err != nil {
			tb.Fatal(err)
		}
		if err := shared.conn.Exec(ctx, st.SQL); err != nil {
			tb.Fatal(err)
		}
	}
	return db
}

func insert(tb testing.TB, db string, evs []event) {
	tb.Helper()
	ctx := context.Background()
	for start := 0; start < len(evs); start += 100000 {
		b, err := shared.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO `%s`.`events` (`event_id`, `event_type`, `timestamp`, `received_at`, `user_id`, `session_id`, `properties`)", db))
		if err != nil {
			tb.Fatal(err)
		}
		for _, ev := range evs[start:min(start+100000, len(evs))] {
			if err := b.Append(ev.id, ev.typ, ev.ts, ev.received, ev.user, ev.session, ev.props); err != nil {
				tb.Fatal(err)
			}
		}
		if err := b.Send(); err != nil {
			tb.Fatal(err)
		}
	}
}

// countries include values that would end an unescaped literal or a comment.
var countries = []string{"de", "fr", "us", `it'; DROP TABLE events; --`, `a\b'c`, "é", "nul\x00byte", "q?$1@x"}

// randomEvents makes n events of a few types with timestamps in [from, from+span).
func randomEvents(rng *rand.Rand, n int, prefix string, from time.Time, span time.Duration, received func(ts time.Time) time.Time) []event {
	types := []string{"page_view", "purchase", "signup"}
	plans := []string{"free", "team", ""}
	tiers := []string{`1`, `2.5`, `"3"`, `-4`, `1e1`, ``}
	devices := []string{"ios", "android", "web"}
	out := make([]event, n)
	for i := range out {
		ts := from.Add(time.Duration(rng.Int64N(int64(span/time.Minute))) * time.Minute).Add(time.Duration(rng.IntN(60)) * time.Second)
		props := fmt.Sprintf(`{"country":%s,"device":%q`, jsonString(countries[rng.IntN(len(countries))]), devices[rng.IntN(len(devices))])
		switch rng.IntN(5) {
		case 0:
		case 1:
			props += `,"amount":"12"`
		case 2:
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
		if t := tiers[rng.IntN(len(tiers))]; t != "" {
			props += `,"tier":` + t
		}
		props += "}"
		user := ""
		if rng.IntN(8) > 0 {
			user = fmt.Sprintf("u%d", rng.IntN(60))
		}
		out[i] = event{
			id: fmt.Sprintf("%s-%07d", prefix, i), typ: types[rng.IntN(len(types))], user: user,
			session: fmt.Sprintf("s%d", rng.IntN(500)), props: props, ts: ts, received: received(ts),
		}
	}
	return out
}

// jsonString is s as a JSON string (a NUL byte as \u0000).
func jsonString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// testSpec has every metric type, dimensions of text and numbers, every granularity.
func testSpec() v1alpha1.PipelineSpec {
	return v1alpha1.PipelineSpec{
		Source: v1alpha1.PipelineSource{EventTypes: []string{"page_view", "purchase"}},
		Metrics: []v1alpha1.Metric{
			{Name: "events", Type: v1alpha1.MetricCount},
			{Name: "revenue", Type: v1alpha1.MetricSum, Field: "properties.amount"},
			{Name: "avg_amount", Type: v1alpha1.MetricAvg, Field: "properties.amount"},
			{Name: "min_amount", Type: v1alpha1.MetricMin, Field: "properties.amount"},
			{Name: "max_amount", Type: v1alpha1.MetricMax, Field: "properties.amount"},
			{Name: "users", Type: v1alpha1.MetricUniq, Field: "user_id"},
			{Name: "latency", Type: v1alpha1.MetricQuantile, Field: "properties.latency_ms", Quantiles: []string{"0.5", "0.9"}},
		},
		Dimensions:    []v1alpha1.FieldRef{"properties.country", "event_type", "properties.plan", "properties.tier"},
		Granularities: []v1alpha1.Granularity{v1alpha1.GranularityMinute, v1alpha1.GranularityHour, v1alpha1.GranularityDay},
	}
}

// pipelineData says which events a test pipeline gets and when.
type pipelineData struct {
	cutoff time.Time
	// stored before the view exists (backfill), live after it (view), late after it but
	// received before the cutoff (backfill too).
	stored, live, late []event
}

// createPipelines builds pipelines over the same events the way the controller does
// (table, view, backfill of every chunk) and publishes their records.
func createPipelines(tb testing.TB, tenant string, names []string, specs []v1alpha1.PipelineSpec, data pipelineData) []rollup.Target {
	tb.Helper()
	ctx := context.Background()
	db := naming.Database(tenant)
	plans := make([]*rollup.Plan, len(names))
	targets := make([]rollup.Target, len(names))
	windows := make([]rollup.Window, len(names))
	insert(tb, db, data.stored)
	for i, name := range names {
		p, err := rollup.Compile(specs[i])
		if err != nil {
			tb.Fatal(err)
		}
		hash := rollup.Hash(name, specs[i])
		plans[i] = p
		targets[i] = rollup.Target{Database: db, Table: naming.PipelineTable(name, hash), View: naming.PipelineView(name, hash)}
		windows[i] = rollup.WindowOf(specs[i], data.cutoff)
		if err := shared.rc.Create(ctx, targets[i], p, windows[i]); err != nil {
			tb.Fatal(err)
		}
	}
	insert(tb, db, append(append([]event{}, data.live...), data.late...))
	for i, name := range names {
		if windows[i].Backfill {
			chunks, err := shared.rc.PendingChunks(ctx, db, plans[i], windows[i], 0)
			if err != nil {
				tb.Fatal(err)
			}
			for _, c := range chunks {
				if _, err := shared.rc.BackfillChunk(ctx, targets[i], plans[i], windows[i], c); err != nil {
					tb.Fatal(err)
				}
			}
		}
		publish(tb, tenant, name, specs[i], targets[i].Table, windows[i].Cutoff)
	}
	return targets
}

func publish(tb testing.TB, tenant, name string, spec v1alpha1.PipelineSpec, table string, cutoff time.Time) {
	tb.Helper()
	body, err := json.Marshal(spec)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := shared.store.PutPipeline(context.Background(), metastore.PipelineRecord{TenantID: tenant, Name: name, Spec: body, RollupTable: table, RollupCutoff: cutoff, Generation: 1}); err != nil {
		tb.Fatal(err)
	}
}

func newEngine(tb testing.TB, opts Options) *Engine {
	tb.Helper()
	if opts.Conn == nil {
		opts.Conn = shared.conn
	}
	if opts.Catalog == nil {
		opts.Catalog = shared.store
	}
	e, err := New(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func seed(tb testing.TB) uint64 {
	if s := os.Getenv("SHOAL_ENGINE_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			tb.Fatal(err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}
