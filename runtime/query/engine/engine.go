// Package engine answers metrics queries (metricquery.Engine) from ClickHouse: a
// Pipeline's rollup table when the query fits it, the tenant's raw events otherwise, and
// raw-mode counts of one event type. Every statement is built by internal/rollup from
// allow-lists (the pipeline's metrics and dimensions, the field grammar) with the values
// bound as parameters, in the database of the tenant the caller authenticated.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/internal/rollup"
	"github.com/shoal-dev/shoal/runtime/query/metricquery"
)

// Catalog is where the engine learns a tenant's pipelines; *metastore.Store implements
// it. A missing pipeline is metastore.ErrNotFound.
type Catalog interface {
	GetPipeline(ctx context.Context, tenantID, name string) (metastore.PipelineRecord, error)
}

// Options configure an Engine. Conn and Catalog are required.
type Options struct {
	// Conn is the ClickHouse holding the tenants' databases: the platform's for the
	// shared query service, a Dedicated tenant's own. The engine does not close it.
	Conn driver.Conn
	// Catalog holds the pipelines.
	Catalog Catalog
	// Tenant, when set, is the only tenant served (a Dedicated tenant's query pods);
	// queries for any other are answered ErrNotFound.
	Tenant string
	// ForceRaw answers pipeline queries from the raw events even when a rollup fits: for
	// tests and benchmarks comparing the two.
	ForceRaw bool
	// Logger receives failed statements with their SQL; slog.Default() when nil.
	Logger *slog.Logger
	// CatalogTTL is how long a pipeline record is reused; DefaultCatalogTTL when zero,
	// none when negative.
	CatalogTTL time.Duration
}

// Engine answers metrics queries. It is safe for concurrent use.
type Engine struct {
	conn     driver.Conn
	catalog  Catalog
	tenant   string
	forceRaw bool
	log      *slog.Logger
	dialect  clickhouse.Dialect
}

var _ metricquery.Engine = (*Engine)(nil)

// New reads the server version once (for the SQL dialect) and returns an engine.
func New(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Conn == nil || opts.Catalog == nil {
		return nil, errors.New("engine: Options.Conn and Options.Catalog are required")
	}
	if opts.Tenant != "" {
		if err := clickhouse.ValidateIdentifier(naming.Database(opts.Tenant)); err != nil {
			return nil, fmt.Errorf("engine: tenant %q: %w", opts.Tenant, err)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	catalog := opts.Catalog
	switch ttl := opts.CatalogTTL; {
	case ttl == 0:
		catalog = newCachedCatalog(catalog, DefaultCatalogTTL, time.Now)
	case ttl > 0:
		catalog = newCachedCatalog(catalog, ttl, time.Now)
	}
	var raw, tz string
	if err := opts.Conn.QueryRow(ctx, "SELECT version(), timezone()").Scan(&raw, &tz); err != nil {
		return nil, fmt.Errorf("engine: reading the ClickHouse version: %w", err)
	}
	v, err := clickhouse.ParseVersion(raw)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if tz != "UTC" && tz != "Etc/UTC" {
		// Rollup buckets start at the server's minutes, hours and days; the engine aligns
		// ranges in UTC.
		log.Warn("ClickHouse does not run in UTC: totals over day boundaries may be read from the raw events or misaligned", "timezone", tz)
	}
	return &Engine{
		conn: opts.Conn, catalog: catalog, tenant: opts.Tenant, forceRaw: opts.ForceRaw,
		log: log, dialect: clickhouse.NewDialect(v, ""),
	}, nil
}

// Dialect is the SQL dialect of the server.
func (e *Engine) Dialect() clickhouse.Dialect { return e.dialect }

// database is the tenant's database, refusing tenants this engine does not serve.
func (e *Engine) database(tenantID string) (string, error) {
	if e.tenant != "" && tenantID != e.tenant {
		return "", fmt.Errorf("tenant %q is not served here: %w", tenantID, metricquery.ErrNotFound)
	}
	db := naming.Database(tenantID)
	if tenantID == "" || clickhouse.ValidateIdentifier(db) != nil {
		return "", fmt.Errorf("tenant %q: %w", tenantID, metricquery.ErrNotFound)
	}
	return db, nil
}

// Query answers q for the tenant.
func (e *Engine) Query(ctx context.Context, tenantID string, q metricquery.Query) (metricquery.Result, error) {
	db, err := e.database(tenantID)
	if err != nil {
		return metricquery.Result{}, err
	}
	var p plan
	switch q.Mode {
	case metricquery.ModePipeline, "":
		p, err = e.pipelinePlan(ctx, db, tenantID, q)
	case metricquery.ModeRaw:
		p, err = e.rawPlan(db, q)
	default:
		return metricquery.Result{}, metricquery.Errors{{Param: metricquery.ParamMode, Reason: fmt.Sprintf("%q is not pipeline or raw", q.Mode)}}
	}
	if err != nil {
		return metricquery.Result{}, err
	}
	return e.run(ctx, p)
}

// pipelinePlan loads and checks the pipeline and chooses the source.
func (e *Engine) pipelinePlan(ctx context.Context, db, tenantID string, q metricquery.Query) (plan, error) {
	rec, err := e.catalog.GetPipeline(ctx, tenantID, q.Pipeline)
	switch {
	case errors.Is(err, metastore.ErrNotFound):
		return plan{}, fmt.Errorf("pipeline %q: %w", q.Pipeline, metricquery.ErrNotFound)
	case err != nil:
		return plan{}, fmt.Errorf("%w: reading pipeline %q: %w", metricquery.ErrUnavailable, q.Pipeline, err)
	}
	var spec v1alpha1.PipelineSpec
	if err := json.Unmarshal(rec.Spec, &spec); err != nil {
		return plan{}, fmt.Errorf("pipeline %q: the stored spec does not decode: %w", q.Pipeline, err)
	}
	compiled, err := rollup.Compile(spec)
	if err != nil {
		return plan{}, fmt.Errorf("pipeline %q: %w", q.Pipeline, err)
	}
	metrics, err := checkMetrics(compiled, q)
	if err != nil {
		return plan{}, err
	}
	c := choose(compiled, rec.RollupTable != "" && !e.forceRaw, q)
	p := plan{source: c.source, names: metrics, query: c.query, ranked: c.ranked}
	if err := checkFilters(q); err != nil {
		return plan{}, err
	}
	if c.source == metricquery.SourceRollup {
		t := rollup.Target{Database: db, Table: rec.RollupTable, View: rec.RollupTable + "_mv"}
		p.build = func(rq rollup.Query) (clickhouse.Statement, rollup.Columns, error) {
			return rollup.Select(e.dialect, t, compiled, rq)
		}
		return p, nil
	}
	// The raw events answer for what the rollup counts: the events of its window.
	var w rollup.Window
	if rec.RollupTable != "" && !rec.RollupCutoff.IsZero() {
		w = rollup.WindowOf(spec, rec.RollupCutoff)
	}
	p.build = func(rq rollup.Query) (clickhouse.Statement, rollup.Columns, error) {
		return rollup.RawSelect(e.dialect, db, compiled, w, rq)
	}
	return p, nil
}

// rawPlan counts events of one type, or distinct values of a field.
func (e *Engine) rawPlan(db string, q metricquery.Query) (plan, error) {
	if q.EventType == "" {
		return plan{}, metricquery.Errors{{Param: metricquery.ParamEventType, Reason: "required in raw mode"}}
	}
	if q.Aggregate == metricquery.AggregateUniq && q.Field == "" {
		return plan{}, metricquery.Errors{{Param: metricquery.ParamField, Reason: "required with aggregate=uniq"}}
	}
	if err := checkFilters(q); err != nil {
		return plan{}, err
	}
	rq, ranked := readQuery(q)
	name := rollup.EventsCount
	eq := rollup.EventsQuery{EventType: q.EventType}
	if q.Aggregate == metricquery.AggregateUniq {
		name, eq.UniqField = rollup.EventsUniq, v1alpha1.FieldRef(q.Field)
	}
	return plan{
		source: metricquery.SourceRaw,
		names:  []metricNames{{name: name}},
		query:  rq,
		ranked: ranked,
		build: func(rq rollup.Query) (clickhouse.Statement, rollup.Columns, error) {
			eq.Query = rq
			return rollup.EventsSelect(e.dialect, db, eq)
		},
	}, nil
}

// fail classifies an error of the database: unreachable, overloaded or too slow is
// ErrUnavailable; anything else the server refused is a bug in the SQL, logged with it.
func (e *Engine) fail(ctx context.Context, st clickhouse.Statement, err error) error {
	var ex *ch.Exception
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w: the query did not finish within its time limit: %w", metricquery.ErrUnavailable, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("metrics query canceled: %w", err)
	case errors.As(err, &ex) && overloaded[ex.Code]:
		return fmt.Errorf("%w: ClickHouse is overloaded or too slow (code %d): %w", metricquery.ErrUnavailable, ex.Code, err)
	case errors.As(err, &ex) && (ex.Code == 60 || ex.Code == 81):
		// UNKNOWN_TABLE, UNKNOWN_DATABASE: a tenant still being provisioned, or a rollup
		// dropped after a rebuild while the catalog still names it; both pass.
		return fmt.Errorf("%w: the tenant's tables are not ready: %w", metricquery.ErrUnavailable, err)
	case clickhouse.IsUnavailable(err):
		return fmt.Errorf("%w: %w", metricquery.ErrUnavailable, err)
	}
	e.log.ErrorContext(ctx, "metrics query refused by ClickHouse: the engine built bad SQL", "err", err, "sql", st.SQL)
	return fmt.Errorf("metrics query failed: %w", err)
}

// overloaded are server error codes that say "not now" rather than "wrong SQL".
var overloaded = map[int32]bool{
	159: true, // TIMEOUT_EXCEEDED (max_execution_time)
	160: true, // TOO_SLOW
	202: true, // TOO_MANY_SIMULTANEOUS_QUERIES
	241: true, // MEMORY_LIMIT_EXCEEDED
}
