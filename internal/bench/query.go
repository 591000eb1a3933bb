package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/auth"
	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/internal/rollup"
	"github.com/shoal-dev/shoal/runtime/events"
	"github.com/shoal-dev/shoal/runtime/query"
	"github.com/shoal-dev/shoal/runtime/query/engine"
	"github.com/shoal-dev/shoal/runtime/query/metricquery"
)

// QueryTargetP99 is the query API target: p99 through the API at most this many times
// the p99 of the same SQL sent straight to ClickHouse.
const QueryTargetP99 = 1.1

// Defaults of QueryOptions.
const (
	DefaultQueryEvents     = 1_000_000
	DefaultQueryRepeats    = 200
	DefaultQueryRawRepeats = 5
	// QueryDays is the span the events are spread over, ending at the last UTC midnight.
	QueryDays = 30
	// queryLoadBatch is the rows of one insert while loading.
	queryLoadBatch = 100_000
	// queryPipeline is the benchmark tenant's one pipeline.
	queryPipeline = "bench"
	// queryWarmup is how many times each query runs on each side before timing.
	queryWarmup = 3
)

// QueryOptions configure the query benchmark.
type QueryOptions struct {
	// Platform gives ClickHouse and the metastore. Required.
	Platform *config.Platform
	// Events is how many events are loaded. Default 1,000,000.
	Events int
	// Repeats is how many times each query is sent through the API and straight to
	// ClickHouse. Default 200.
	Repeats int
	// RawRepeats is how many times each query is answered from the rollup and from the
	// raw events for the comparison of the two. Default 5.
	RawRepeats int
	// Progress receives a line per step, and every few seconds while loading.
	Progress io.Writer
	// Now is the clock the events' days end by; time.Now when nil.
	Now func() time.Time
}

func (o *QueryOptions) setDefaults() {
	if o.Events <= 0 {
		o.Events = DefaultQueryEvents
	}
	if o.Repeats <= 0 {
		o.Repeats = DefaultQueryRepeats
	}
	if o.RawRepeats <= 0 {
		o.RawRepeats = DefaultQueryRawRepeats
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// QueryReport is what one run of the query benchmark measured. Latencies are in seconds.
type QueryReport struct {
	// Tenant is the throwaway tenant the run created and removed.
	Tenant            string      `json:"tenant"`
	ClickHouse        string      `json:"clickhouse"`
	ClickHouseVersion string      `json:"clickhouseVersion"`
	CPUs              int         `json:"cpus"`
	LoadAverage       LoadAverage `json:"loadAverage"`
	// Events is the count of the loaded events table.
	Events          uint64 `json:"events"`
	EventBytes      int    `json:"eventBytes"`
	EventProperties int    `json:"eventProperties"`
	Days            int    `json:"days"`
	// LoadSeconds is the time the batched inserts took, EventsPerSecond their rate.
	LoadSeconds         float64 `json:"loadSeconds"`
	LoadEventsPerSecond float64 `json:"loadEventsPerSecond"`
	// BackfillSeconds is creating the rollup and backfilling every chunk; RollupRows the
	// rows of its table afterwards.
	BackfillSeconds float64 `json:"backfillSeconds"`
	BackfillChunks  int     `json:"backfillChunks"`
	RollupRows      uint64  `json:"rollupRows"`
	// Repeats is how many times each query was sent on each side.
	Repeats int `json:"repeats"`
	// Latency is per query; Overall over every query together.
	Latency []QueryLatency `json:"latency"`
	Overall QueryLatency   `json:"overall"`
	Target  float64        `json:"targetP99Ratio"`
	// RawRepeats is how many times each query was answered from each source.
	RawRepeats  int              `json:"rawRepeats"`
	RollupVsRaw []SourceSpeedup  `json:"rollupVsRaw"`
	Queries     []BenchQuerySpec `json:"queries"`
	// Statements is the SQL the engine sent for each query ("<name>#<n>"), which the
	// direct side sent too, with the same bound values.
	Statements map[string]string `json:"statements,omitempty"`
}

// BenchQuerySpec is one query of the mix, as its API parameters.
type BenchQuerySpec struct {
	Name   string `json:"name"`
	Params string `json:"params"`
}

// QueryLatency compares one query through the API with the same statements sent
// straight to ClickHouse.
type QueryLatency struct {
	Name string `json:"name"`
	// Source is where the engine read it from; Statements how many statements it took
	// (a top-N with an interval takes two).
	Source     string  `json:"source,omitempty"`
	Statements int     `json:"statements,omitempty"`
	RowsRead   uint64  `json:"rowsRead,omitempty"`
	API        Latency `json:"apiSeconds"`
	Direct     Latency `json:"directSeconds"`
	P50Ratio   float64 `json:"p50Ratio"`
	P99Ratio   float64 `json:"p99Ratio"`
}

// SourceSpeedup compares one query answered from the rollup and from the raw events,
// the answers checked equal first.
type SourceSpeedup struct {
	Name string `json:"name"`
	// Rollup and Raw are the median time of the engine answering, in seconds.
	Rollup         float64 `json:"rollupSeconds"`
	Raw            float64 `json:"rawSeconds"`
	RollupRowsRead uint64  `json:"rollupRowsRead"`
	RawRowsRead    uint64  `json:"rawRowsRead"`
	// Speedup is Raw / Rollup.
	Speedup float64 `json:"speedup"`
	Series  int     `json:"series"`
	Points  int     `json:"points"`
}

// benchQuery is one query of the mix: its API parameters, and the same query as the
// server parses them.
type benchQuery struct {
	name   string
	params url.Values
	query  metricquery.Query
}

// queryMix is the fixed mix of dashboard reads over the events' days [from, to): a
// daily series over all of them, the top 10 countries by day, a total over whole days
// filtered by a dimension, and an hourly series of the last two days.
func queryMix(from, to time.Time) ([]benchQuery, error) {
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	mix := []struct {
		name   string
		params url.Values
	}{
		{"daily-30d", url.Values{"pipeline": {queryPipeline}, "metric": {"events,revenue,users"},
			"from": {ts(from)}, "to": {ts(to)}, "interval": {"day"}}},
		{"top10-country-daily", url.Values{"pipeline": {queryPipeline}, "metric": {"events,revenue"},
			"from": {ts(from)}, "to": {ts(to)}, "interval": {"day"}, "groupBy": {"properties.country"}, "limit": {"10"}}},
		{"total-7d-by-plan", url.Values{"pipeline": {queryPipeline}, "metric": {"events,revenue,users"},
			"from": {ts(to.AddDate(0, 0, -7))}, "to": {ts(to)}, "groupBy": {"properties.plan"},
			"filter": {"event_type:in:page_view,purchase"}}},
		{"hourly-2d", url.Values{"pipeline": {queryPipeline}, "metric": {"events,users"},
			"from": {ts(to.AddDate(0, 0, -2))}, "to": {ts(to)}, "interval": {"hour"}}},
	}
	out := make([]benchQuery, len(mix))
	for i, m := range mix {
		q, err := metricquery.Parse(m.params, to)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", m.name, err)
		}
		out[i] = benchQuery{name: m.name, params: m.params, query: q}
	}
	return out, nil
}

// querySpec is the benchmark's pipeline: the metrics and dimensions the mix reads, hour
// and day buckets, the events of three of the four types.
func querySpec() v1alpha1.PipelineSpec {
	return v1alpha1.PipelineSpec{
		Source: v1alpha1.PipelineSource{EventTypes: []string{"page_view", "click", "purchase"}},
		Metrics: []v1alpha1.Metric{
			{Name: "events", Type: v1alpha1.MetricCount},
			{Name: "revenue", Type: v1alpha1.MetricSum, Field: "properties.price"},
			{Name: "users", Type: v1alpha1.MetricUniq, Field: "user_id"},
		},
		Dimensions:    []v1alpha1.FieldRef{"event_type", "properties.country", "properties.plan"},
		Granularities: []v1alpha1.Granularity{v1alpha1.GranularityHour, v1alpha1.GranularityDay},
	}
}

var (
	queryEventTypes = []string{"page_view", "page_view", "page_view", "page_view", "page_view", "page_view", "page_view", "click", "click", "purchase", "signup"}
	queryCountries  = []string{"DE", "US", "FR", "GB", "NL", "ES", "IT", "SE", "PL", "BR", "JP", "IN"}
	queryPlans      = []string{"free", "team", "business", "enterprise"}
	queryRefs       = []string{"search", "direct", "social", "email"}
)

// eventGen makes the benchmark's events: about 300 bytes on the wire with 8 properties
// (as SampleEvents), timestamps spread uniformly over [from, from+span), a few event
// types, skewed countries (so a top 10 of 12 is a real ranking) and plans. It is
// deterministic but for the event ids.
type eventGen struct {
	rng  *rand.Rand
	from time.Time
	span int64 // seconds
	buf  []byte
}

func newEventGen(from time.Time, days int) *eventGen {
	return &eventGen{rng: rand.New(rand.NewPCG(5, 7)), from: from, span: int64(days) * 86400}
}

// batch makes the events i0..i0+n-1.
func (g *eventGen) batch(i0, n int) []events.Event {
	evs := make([]events.Event, n)
	for k := range evs {
		i := i0 + k
		ts := g.from.Add(time.Duration(g.rng.Int64N(g.span)) * time.Second)
		country := queryCountries[min(g.rng.IntN(len(queryCountries)), g.rng.IntN(len(queryCountries)))]
		b := append(g.buf[:0], `{"path":"/p/`...)
		b = append(b, fmt.Sprintf("%04d", g.rng.IntN(10000))...)
		b = append(b, `","ref":"`...)
		b = append(b, queryRefs[g.rng.IntN(len(queryRefs))]...)
		b = append(b, `","plan":"`...)
		b = append(b, queryPlans[g.rng.IntN(len(queryPlans))]...)
		b = append(b, `","country":"`...)
		b = append(b, country...)
		b = append(b, `","ms":`...)
		b = strconv.AppendInt(b, int64(20+g.rng.IntN(2000)), 10)
		b = append(b, `,"items":`...)
		b = strconv.AppendInt(b, int64(g.rng.IntN(7)), 10)
		b = append(b, `,"price":`...)
		b = strconv.AppendFloat(b, float64(g.rng.IntN(10000))/100, 'f', -1, 64)
		b = append(b, `,"logged_in":`...)
		b = strconv.AppendBool(b, g.rng.IntN(2) == 0)
		b = append(b, '}')
		g.buf = b
		evs[k] = events.Event{
			EventID:   events.NewID(ts),
			EventType: queryEventTypes[g.rng.IntN(len(queryEventTypes))],
			Timestamp: ts,
			// Received a few seconds after it happened: before the rollup's cutoff, so
			// the backfill counts it.
			ReceivedAt: ts.Add(time.Duration(g.rng.IntN(10)) * time.Second),
			UserID:     fmt.Sprintf("u-%06d", g.rng.IntN(200_000)),
			SessionID:  fmt.Sprintf("s-%08d", i/20),
			Properties: json.RawMessage(string(b)),
		}
	}
	return evs
}

// queryBench is what one run holds open; close removes what it created.
type queryBench struct {
	opts    QueryOptions
	admin   *clickhouse.Client
	conn    driver.Conn
	store   *metastore.Store
	tenant  string
	db      string
	created bool // the database may exist: drop it
	stored  bool // the tenant row may exist: delete it
}

func (b *queryBench) close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var errs []error
	if b.created {
		if err := b.admin.DropTenantDatabase(ctx, clickhouse.TenantDB{Database: b.db}); err != nil {
			errs = append(errs, fmt.Errorf("dropping the benchmark database %s: %w", b.db, err))
		}
	}
	if b.stored {
		if err := b.store.DeleteTenant(ctx, b.tenant); err != nil {
			errs = append(errs, fmt.Errorf("deleting the benchmark tenant %s: %w", b.tenant, err))
		}
	}
	if b.store != nil {
		b.store.Close()
	}
	if b.conn != nil {
		_ = b.conn.Close()
	}
	if b.admin != nil {
		_ = b.admin.Close()
	}
	return errors.Join(errs...)
}

// RunQuery measures the query API: a throwaway tenant with Events events over 30 days
// and a pipeline rollup over them, built as the Pipeline controller builds one; then each
// query of a fixed mix through the API (an in-process server on a loopback port, a
// personal token) against the very statements the engine sent for it, straight through
// clickhouse-go, alternating; then each query from the rollup against the raw events.
// The tenant's database and metastore rows are removed at the end, also on failure.
func RunQuery(ctx context.Context, opts QueryOptions) (_ *QueryReport, err error) {
	opts.setDefaults()
	if opts.Platform == nil {
		return nil, errors.New("a platform config is required: ClickHouse and the metastore come from it")
	}
	p := opts.Platform
	b := &queryBench{opts: opts, tenant: runTenant("query", opts.Now())}
	b.db = naming.Database(b.tenant)
	defer func() {
		if cerr := b.close(ctx); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	if b.admin, err = clickhouse.New(ctx, p.ClickHouse); err != nil {
		return nil, err
	}
	if b.conn, err = clickhouse.Dial(p.ClickHouse, 8); err != nil {
		return nil, err
	}
	if b.store, err = metastore.Open(ctx, p.Metastore); err != nil {
		return nil, err
	}
	report := &QueryReport{
		Tenant:      b.tenant,
		LoadAverage: LoadAverage{Start: loadAverage1()},
		ClickHouse:  p.ClickHouse.Addr, ClickHouseVersion: b.admin.Version().String(),
		CPUs: runtime.NumCPU(), EventProperties: 8, Days: QueryDays,
		Repeats: opts.Repeats, RawRepeats: opts.RawRepeats, Target: QueryTargetP99,
	}

	token, err := b.addTenant(ctx)
	if err != nil {
		return nil, err
	}
	to := opts.Now().UTC().Truncate(24 * time.Hour)
	from := to.AddDate(0, 0, -QueryDays)
	if err := b.load(ctx, from, report); err != nil {
		return nil, err
	}
	if err := b.buildRollup(ctx, report); err != nil {
		return nil, err
	}
	mix, err := queryMix(from, to)
	if err != nil {
		return nil, err
	}
	for _, q := range mix {
		report.Queries = append(report.Queries, BenchQuerySpec{Name: q.name, Params: q.params.Encode()})
	}

	rec := &recordingConn{Conn: b.conn}
	eng, err := engine.New(ctx, engine.Options{Conn: rec, Catalog: b.store})
	if err != nil {
		return nil, err
	}
	srv, stop, err := startQueryServer(p, b.store, eng)
	if err != nil {
		return nil, err
	}
	defer stop()
	viaAPI, err := b.latency(ctx, srv, token, rec, mix, report)
	if err != nil {
		return report, err
	}
	raw, err := engine.New(ctx, engine.Options{Conn: b.conn, Catalog: b.store, ForceRaw: true})
	if err != nil {
		return report, err
	}
	if err := b.rollupVsRaw(ctx, eng, raw, mix, viaAPI, report); err != nil {
		return report, err
	}
	report.LoadAverage.End = loadAverage1()
	return report, nil
}

// addTenant creates the tenant's metastore row with an owner and a personal token, and
// its ClickHouse database with the events table; it returns the token.
func (b *queryBench) addTenant(ctx context.Context) (string, error) {
	b.stored = true
	if err := b.store.UpsertTenant(ctx, metastore.TenantRecord{ID: b.tenant, DisplayName: b.tenant, Plan: benchPlan, Isolation: metastore.IsolationShared}); err != nil {
		return "", err
	}
	u, err := b.store.AddUser(ctx, b.tenant, "owner@"+b.tenant+".example", string(auth.RoleOwner))
	if err != nil {
		return "", err
	}
	_, token, err := b.store.CreatePersonalToken(ctx, b.tenant, u.ID, "bench", nil)
	if err != nil {
		return "", err
	}
	b.created = true
	if err := b.admin.EnsureTenantDatabase(ctx, clickhouse.TenantDB{Database: b.db}); err != nil {
		return "", err
	}
	return token, nil
}

// load inserts the events in batches, two inserts in flight while the next batch is
// made, with a progress line every few seconds.
func (b *queryBench) load(ctx context.Context, from time.Time, report *QueryReport) error {
	n := b.opts.Events
	gen := newEventGen(from, QueryDays)
	sample := gen.batch(0, min(n, 1000))
	size, err := wireSize(sample)
	if err != nil {
		return err
	}
	report.EventBytes = size
	gen = newEventGen(from, QueryDays)

	progressf(b.opts.Progress, "query: loading %d events over %d days into %s", n, QueryDays, b.db)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []events.Event, 1)
	go func() {
		defer close(batches)
		for i := 0; i < n; i += queryLoadBatch {
			select {
			case batches <- gen.batch(i, min(queryLoadBatch, n-i)):
			case <-ctx.Done():
				return
			}
		}
	}()
	var (
		mu       sync.Mutex
		inserted int
		firstErr error
		wg       sync.WaitGroup
	)
	began := time.Now()
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for evs := range batches {
				if err := insertEvents(ctx, b.conn, b.db, evs); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
					cancel()
					return
				}
				mu.Lock()
				inserted += len(evs)
				mu.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-tick.C:
			mu.Lock()
			k := inserted
			mu.Unlock()
			elapsed := time.Since(began)
			progressf(b.opts.Progress, "query: %d of %d events loaded in %s (%.0f events/s)", k, n, elapsed.Round(time.Second), float64(k)/elapsed.Seconds())
		}
	}
	if firstErr != nil {
		return fmt.Errorf("loading the events: %w", firstErr)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("loading the events: %w", err)
	}
	elapsed := time.Since(began)
	report.LoadSeconds = elapsed.Seconds()
	report.LoadEventsPerSecond = float64(n) / elapsed.Seconds()
	if err := b.conn.QueryRow(ctx, "SELECT count() FROM `"+b.db+"`.`"+clickhouse.EventsTable+"`").Scan(&report.Events); err != nil {
		return fmt.Errorf("counting the loaded events: %w", err)
	}
	if report.Events != uint64(n) {
		return fmt.Errorf("%s holds %d events, want %d", b.db, report.Events, n)
	}
	progressf(b.opts.Progress, "query: loaded %d events in %s (%.0f events/s)", n, elapsed.Round(time.Millisecond), report.LoadEventsPerSecond)
	return nil
}

// buildRollup builds the pipeline's rollup as the Pipeline controller does: the table
// and the view with a cutoff after the load, then every pending backfill chunk; then
// publishes the pipeline record the query API reads.
func (b *queryBench) buildRollup(ctx context.Context, report *QueryReport) error {
	spec := querySpec()
	plan, err := rollup.Compile(spec)
	if err != nil {
		return err
	}
	rc, err := rollup.NewClient(ctx, b.conn, b.opts.Platform.ClickHouse.Cluster)
	if err != nil {
		return err
	}
	hash := rollup.Hash(queryPipeline, spec)
	target := rollup.Target{Database: b.db, Table: naming.PipelineTable(queryPipeline, hash), View: naming.PipelineView(queryPipeline, hash)}
	now, err := rc.Now(ctx)
	if err != nil {
		return err
	}
	// Every event was received before now; nothing is received after, so the backfill
	// need not wait for the cutoff to pass as the controller does.
	w := rollup.WindowOf(spec, now.Add(time.Second).Truncate(time.Second))
	progressf(b.opts.Progress, "query: building rollup %s.%s (cutoff %s)", b.db, target.Table, w.Cutoff.Format(time.RFC3339))
	began := time.Now()
	if err := rc.Create(ctx, target, plan, w); err != nil {
		return err
	}
	chunks, err := rc.PendingChunks(ctx, b.db, plan, w, 0)
	if err != nil {
		return err
	}
	for _, c := range chunks {
		n, err := rc.BackfillChunk(ctx, target, plan, w, c)
		if err != nil {
			return err
		}
		progressf(b.opts.Progress, "query: backfilled chunk %d: %d events (%s so far)", c, n, time.Since(began).Round(time.Millisecond))
	}
	report.BackfillSeconds = time.Since(began).Seconds()
	report.BackfillChunks = len(chunks)
	if err := b.conn.QueryRow(ctx, "SELECT count() FROM `"+b.db+"`.`"+target.Table+"`").Scan(&report.RollupRows); err != nil {
		return fmt.Errorf("counting the rollup rows: %w", err)
	}
	body, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	_, err = b.store.PutPipeline(ctx, metastore.PipelineRecord{
		TenantID: b.tenant, Name: queryPipeline, Spec: body,
		RollupTable: target.Table, RollupCutoff: w.Cutoff, Generation: 1,
	})
	return err
}

// queryServer is the query API on a loopback port and a client for it.
type queryServer struct {
	url    string
	client *http.Client
}

// startQueryServer serves the query API on a loopback port with the engine. The
// tenant's rate limit is set out of reach, so the limiter is charged on every request
// but never refuses.
func startQueryServer(p *config.Platform, store *metastore.Store, eng metricquery.Engine) (*queryServer, func(), error) {
	platform := *p
	platform.Query.RateLimit = config.QueryRateLimit{RequestsPerSecond: 100_000, Burst: 1_000_000}
	srv, err := query.New(query.Options{
		Platform:      &platform,
		Store:         store,
		Authenticator: auth.NewAuthenticator(store, nil, nil),
		Engine:        eng,
	})
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("listening on a loopback port: %w", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 2 * time.Minute}
	return &queryServer{url: "http://" + ln.Addr().String(), client: client}, func() {
		client.CloseIdleConnections()
		_ = hs.Close()
	}, nil
}

// get sends the query with the token and reads the answer, as a dashboard would before
// decoding it.
func (s *queryServer) get(ctx context.Context, token string, params url.Values) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+query.APIPrefix+"/metrics/query?"+params.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("querying the API: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the API's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the API answered %d: %s", resp.StatusCode, body)
	}
	return body, nil
}

// decodeResult decodes an answer of the API.
func decodeResult(body []byte) (metricquery.Result, error) {
	var res metricquery.Result
	if err := json.Unmarshal(body, &res); err != nil {
		return metricquery.Result{}, fmt.Errorf("decoding the API's answer: %w", err)
	}
	return res, nil
}

// statement is one statement the engine sent: its SQL and bound values.
type statement struct {
	sql  string
	args []any
}

// recordingConn is the engine's connection, noting the statements it queries, so the
// direct side sends exactly those, and every API call is checked to have sent them.
type recordingConn struct {
	driver.Conn
	mu   sync.Mutex
	seen []statement
}

func (c *recordingConn) Query(ctx context.Context, sql string, args ...any) (driver.Rows, error) {
	c.mu.Lock()
	c.seen = append(c.seen, statement{sql: sql, args: slices.Clone(args)})
	c.mu.Unlock()
	return c.Conn.Query(ctx, sql, args...)
}

// take returns the statements noted since the last take.
func (c *recordingConn) take() []statement {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.seen
	c.seen = nil
	return out
}

// sendDirect sends the statements one after the other through conn and scans every
// row into values of the column types, as the engine does; it returns the rows read.
func sendDirect(ctx context.Context, conn driver.Conn, sts []statement) (int, error) {
	n := 0
	for _, st := range sts {
		rows, err := conn.Query(ctx, st.sql, st.args...)
		if err != nil {
			return n, fmt.Errorf("sending the engine's statement straight: %w", err)
		}
		types := rows.ColumnTypes()
		dest := make([]any, len(types))
		for rows.Next() {
			for i, ct := range types {
				dest[i] = reflect.New(ct.ScanType()).Interface()
			}
			if err := rows.Scan(dest...); err != nil {
				_ = rows.Close()
				return n, fmt.Errorf("scanning the engine's statement sent straight: %w", err)
			}
			n++
		}
		err = rows.Err()
		_ = rows.Close()
		if err != nil {
			return n, fmt.Errorf("sending the engine's statement straight: %w", err)
		}
	}
	return n, nil
}

// latency sends each query of the mix round-robin through the API and, right after,
// its statements straight to ClickHouse, Repeats times each after a warmup.
func (b *queryBench) latency(ctx context.Context, srv *queryServer, token string, rec *recordingConn, mix []benchQuery, report *QueryReport) ([]metricquery.Result, error) {
	sts := make([][]statement, len(mix))
	results := make([]metricquery.Result, len(mix))
	report.Statements = map[string]string{}
	for i, q := range mix {
		rec.take()
		body, err := srv.get(ctx, token, q.params)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", q.name, err)
		}
		res, err := decodeResult(body)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", q.name, err)
		}
		if res.Source != metricquery.SourceRollup {
			return nil, fmt.Errorf("query %s was read from %s, want the rollup", q.name, res.Source)
		}
		sts[i], results[i] = rec.take(), res
		for k, st := range sts[i] {
			report.Statements[fmt.Sprintf("%s#%d", q.name, k+1)] = st.sql
		}
	}
	progressf(b.opts.Progress, "query: latency, %d queries x %d through the API and straight, alternating", len(mix), b.opts.Repeats)
	api := make([][]time.Duration, len(mix))
	direct := make([][]time.Duration, len(mix))
	began, lastProgress := time.Now(), time.Now()
	for round := -queryWarmup; round < b.opts.Repeats; round++ {
		if time.Since(lastProgress) >= 5*time.Second {
			lastProgress = time.Now()
			progressf(b.opts.Progress, "query: %d of %d rounds in %s", max(round, 0), b.opts.Repeats, time.Since(began).Round(time.Second))
		}
		for i, q := range mix {
			// Which side goes first alternates too, so neither always follows the other.
			sides := []func() (time.Duration, error){
				func() (time.Duration, error) {
					rec.take()
					start := time.Now()
					_, err := srv.get(ctx, token, q.params)
					elapsed := time.Since(start)
					if err != nil {
						return 0, err
					}
					if got := rec.take(); !sameStatements(got, sts[i]) {
						return 0, fmt.Errorf("the engine sent other statements than the first time: %d statements, want %d", len(got), len(sts[i]))
					}
					return elapsed, nil
				},
				func() (time.Duration, error) {
					start := time.Now()
					_, err := sendDirect(ctx, b.conn, sts[i])
					return time.Since(start), err
				},
			}
			order := []int{0, 1}
			if (round+i)%2 != 0 {
				order = []int{1, 0}
			}
			for _, side := range order {
				d, err := sides[side]()
				if err != nil {
					return nil, fmt.Errorf("query %s: %w", q.name, err)
				}
				if round < 0 {
					continue
				}
				if side == 0 {
					api[i] = append(api[i], d)
				} else {
					direct[i] = append(direct[i], d)
				}
			}
		}
	}
	var allAPI, allDirect []time.Duration
	for i, q := range mix {
		l := compareLatency(q.name, api[i], direct[i])
		l.Source, l.Statements, l.RowsRead = string(results[i].Source), len(sts[i]), results[i].Stats.RowsRead
		report.Latency = append(report.Latency, l)
		allAPI, allDirect = append(allAPI, api[i]...), append(allDirect, direct[i]...)
	}
	report.Overall = compareLatency("all", allAPI, allDirect)
	return results, nil
}

func compareLatency(name string, api, direct []time.Duration) QueryLatency {
	l := QueryLatency{Name: name, API: LatencyOf(api), Direct: LatencyOf(direct)}
	if l.Direct.P50 > 0 {
		l.P50Ratio = l.API.P50 / l.Direct.P50
	}
	if l.Direct.P99 > 0 {
		l.P99Ratio = l.API.P99 / l.Direct.P99
	}
	return l
}

// sameStatements reports whether a and b are the same SQL with the same values.
func sameStatements(a, b []statement) bool {
	return slices.EqualFunc(a, b, func(x, y statement) bool {
		return x.sql == y.sql && reflect.DeepEqual(x.args, y.args)
	})
}

// rollupVsRaw answers each query from the rollup and from the raw events, checks the
// answers equal, then times both, alternating, RawRepeats times.
func (b *queryBench) rollupVsRaw(ctx context.Context, rollupEng, rawEng *engine.Engine, mix []benchQuery, viaAPI []metricquery.Result, report *QueryReport) error {
	progressf(b.opts.Progress, "query: rollup against raw, %d queries x %d on each", len(mix), b.opts.RawRepeats)
	for i, q := range mix {
		got, err := rollupEng.Query(ctx, b.tenant, q.query)
		if err != nil {
			return fmt.Errorf("query %s from the rollup: %w", q.name, err)
		}
		if diff := viaAPI[i].Diff(got); diff != "" {
			return fmt.Errorf("query %s: the API and the engine answered differently: %s", q.name, diff)
		}
		want, err := rawEng.Query(ctx, b.tenant, q.query)
		if err != nil {
			return fmt.Errorf("query %s from the raw events: %w", q.name, err)
		}
		if got.Source != metricquery.SourceRollup || want.Source != metricquery.SourceRaw {
			return fmt.Errorf("query %s: read from %s and %s, want the rollup and the raw events", q.name, got.Source, want.Source)
		}
		if diff := got.Diff(want); diff != "" {
			return fmt.Errorf("query %s: the rollup and the raw events disagree: %s", q.name, diff)
		}
		s := SourceSpeedup{Name: q.name, RollupRowsRead: got.Stats.RowsRead, RawRowsRead: want.Stats.RowsRead, Series: len(got.Series)}
		for _, sr := range got.Series {
			s.Points += len(sr.Points)
		}
		var onRollup, onRaw []time.Duration
		for k := range b.opts.RawRepeats {
			engines := []*engine.Engine{rollupEng, rawEng}
			if k%2 != 0 {
				engines = []*engine.Engine{rawEng, rollupEng}
			}
			for _, e := range engines {
				start := time.Now()
				if _, err := e.Query(ctx, b.tenant, q.query); err != nil {
					return fmt.Errorf("query %s: %w", q.name, err)
				}
				if e == rollupEng {
					onRollup = append(onRollup, time.Since(start))
				} else {
					onRaw = append(onRaw, time.Since(start))
				}
			}
		}
		s.Rollup, s.Raw = LatencyOf(onRollup).P50, LatencyOf(onRaw).P50
		if s.Rollup > 0 {
			s.Speedup = s.Raw / s.Rollup
		}
		report.RollupVsRaw = append(report.RollupVsRaw, s)
		progressf(b.opts.Progress, "query: %s: rollup %s, raw %s (%.0fx)", q.name, ms(s.Rollup), ms(s.Raw), s.Speedup)
	}
	return nil
}

// ms formats seconds as milliseconds, for query latencies.
func ms(s float64) string { return fmt.Sprintf("%.2f ms", s*1000) }

// WriteText writes the report for people: the setup, the latencies, the speedups.
func (r *QueryReport) WriteText(w io.Writer) error {
	t := newTable(w)
	t.line("clickhouse", "%s (%s)", r.ClickHouse, r.ClickHouseVersion)
	t.line("cpus", "%d (load average %.1f at the start, %.1f at the end)", r.CPUs, r.LoadAverage.Start, r.LoadAverage.End)
	t.line("events", "%d over %d days, %d bytes on the wire on average, %d properties", r.Events, r.Days, r.EventBytes, r.EventProperties)
	t.line("load", "%.0f events/s (%s, batched inserts of %d rows)", r.LoadEventsPerSecond, seconds(r.LoadSeconds), queryLoadBatch)
	t.line("rollup", "%d rows (hour and day buckets) from %d backfill chunks in %s", r.RollupRows, r.BackfillChunks, seconds(r.BackfillSeconds))
	t.line("latency", "each query %d times through the API and straight to ClickHouse, alternating", r.Repeats)
	if err := t.flush(); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	t = newTable(w)
	t.line("query", "stmts\trows read\tAPI p50\tAPI p99\tdirect p50\tdirect p99\tp50 ratio\tp99 ratio\ttarget p99 <= %.1fx", r.Target)
	for _, l := range append(slices.Clone(r.Latency), r.Overall) {
		stmts, rows := "", ""
		if l.Statements > 0 {
			stmts, rows = strconv.Itoa(l.Statements), strconv.FormatUint(l.RowsRead, 10)
		}
		t.line(l.Name, "%s\t%s\t%s\t%s\t%s\t%s\t%.2fx\t%.2fx\t%s", stmts, rows,
			ms(l.API.P50), ms(l.API.P99), ms(l.Direct.P50), ms(l.Direct.P99), l.P50Ratio, l.P99Ratio, verdict(l.P99Ratio <= r.Target))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	t = newTable(w)
	t.line("rollup vs raw", "series\tpoints\trollup p50\trows read\traw p50\trows read\tspeedup (answers equal, median of %d each)", r.RawRepeats)
	for _, s := range r.RollupVsRaw {
		t.line(s.Name, "%d\t%d\t%s\t%d\t%s\t%d\t%.1fx", s.Series, s.Points, ms(s.Rollup), s.RollupRowsRead, ms(s.Raw), s.RawRowsRead, s.Speedup)
	}
	return t.flush()
}
