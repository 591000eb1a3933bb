package rollup

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/clickhouse"
)

// Target is where one build of a pipeline's rollup lives: the table and the materialized
// view feeding it, in the tenant's database (next to its events table).
type Target struct {
	Database string
	Table    string
	View     string
}

func (t Target) quoted() (db, table, view string, err error) {
	for _, n := range []string{t.Database, t.Table, t.View} {
		if err := clickhouse.ValidateIdentifier(n); err != nil {
			return "", "", "", fmt.Errorf("rollup target: %w", err)
		}
	}
	return "`" + t.Database + "`", "`" + t.Table + "`", "`" + t.View + "`", nil
}

// Window says which events a rollup aggregates. The materialized view takes the events
// received (received_at, the time ingest accepted them) at or after Cutoff; the backfill
// takes those received before, from Since on. Every event is received either before or
// after the cutoff, and the events table holds it once, so the two never count an event
// twice and together miss none.
type Window struct {
	// Cutoff splits the view's events from the backfill's; whole seconds (DateTime).
	Cutoff time.Time
	// Backfill: the events received before Cutoff are aggregated too.
	Backfill bool
	// Since limits the backfill to events whose timestamp is at or after it.
	Since *time.Time
}

// dateTime is a DateTime literal of t: a Unix time, the same instant in every time zone.
func dateTime(t time.Time) string { return fmt.Sprintf("toDateTime(%d)", t.Unix()) }

func (w Window) live() string { return "`received_at` >= " + dateTime(w.Cutoff) }

func (w Window) backfill() string {
	cond := "`received_at` < " + dateTime(w.Cutoff)
	if w.Since != nil {
		cond += " AND `timestamp` >= " + dateTime(*w.Since)
	}
	return cond
}

// onCluster is " ON CLUSTER `c`" for a clustered dialect.
func onCluster(d clickhouse.Dialect) (string, error) {
	if d.Cluster == "" {
		return "", nil
	}
	if err := clickhouse.ValidateIdentifier(d.Cluster); err != nil {
		return "", fmt.Errorf("cluster: %w", err)
	}
	return " ON CLUSTER `" + d.Cluster + "`", nil
}

// dimensionType is the type of dimension columns: LowCardinality where the server has it
// without an experimental setting.
func dimensionType(d clickhouse.Dialect) string {
	if d.Features.LowCardinality {
		return "LowCardinality(String)"
	}
	return "String"
}

// CreateTable is the rollup table: one row per granularity, bucket and dimension values
// (the sorting key, which AggregatingMergeTree merges on), holding an aggregate state per
// metric. The partition key starts with the chunk that wrote the rows, so a backfill chunk
// is dropped and rewritten as a whole; the month of the bucket keeps partitions bounded.
func CreateTable(d clickhouse.Dialect, t Target, p *Plan) (clickhouse.Statement, error) {
	db, table, _, err := t.quoted()
	if err != nil {
		return clickhouse.Statement{}, err
	}
	oc, err := onCluster(d)
	if err != nil {
		return clickhouse.Statement{}, err
	}
	cols := []string{
		"`" + GranularityColumn + "` " + granularityEnum,
		"`" + BucketColumn + "` DateTime",
		"`" + ChunkColumn + "` UInt32",
	}
	order := []string{"`" + GranularityColumn + "`", "`" + BucketColumn + "`"}
	for _, dim := range p.dimensions {
		cols = append(cols, "`"+dim.column+"` "+dimensionType(d))
		order = append(order, "`"+dim.column+"`")
	}
	for _, m := range p.metrics {
		cols = append(cols, "`"+m.column+"` "+m.stateType)
	}
	return clickhouse.Statement{SQL: fmt.Sprintf(
		"CREATE TABLE IF NOT EXISTS %s.%s%s (%s) ENGINE = AggregatingMergeTree() PARTITION BY (`%s`, toYYYYMM(`%s`)) ORDER BY (%s)",
		db, table, oc, strings.Join(cols, ", "), ChunkColumn, BucketColumn, strings.Join(order, ", "))}, nil
}

// aggregate is the SELECT turning events into rollup rows of chunk, from the events
// matching the plan and cond.
func aggregate(db string, p *Plan, chunk int, final bool, cond string) string {
	bucket := bucketExpr(p.granularities)
	sel := []string{
		"CAST(`g` AS " + granularityEnum + ") AS `" + GranularityColumn + "`",
		bucket + " AS `" + BucketColumn + "`",
		fmt.Sprintf("toUInt32(%d) AS `%s`", chunk, ChunkColumn),
	}
	group := []string{"`" + GranularityColumn + "`", "`" + BucketColumn + "`", "`" + ChunkColumn + "`"}
	for _, dim := range p.dimensions {
		sel = append(sel, dim.expr+" AS `"+dim.column+"`")
		group = append(group, "`"+dim.column+"`")
	}
	for _, m := range p.metrics {
		sel = append(sel, m.state+" AS `"+m.column+"`")
	}
	grans := make([]string, len(p.granularities))
	for i, g := range p.granularities {
		grans[i] = "'" + string(g) + "'"
	}
	fin := ""
	if final {
		fin = " FINAL"
	}
	// ARRAY JOIN repeats each event once per granularity kept: one pass over the
	// events feeds every bucket size.
	return fmt.Sprintf("SELECT %s FROM %s.`%s`%s ARRAY JOIN [%s] AS `g` WHERE %s AND %s GROUP BY %s",
		strings.Join(sel, ", "), db, clickhouse.EventsTable, fin, strings.Join(grans, ", "), p.where, cond, strings.Join(group, ", "))
}

// bucketExpr truncates the event timestamp to the granularity in `g`.
func bucketExpr(grans []v1alpha1.Granularity) string {
	if len(grans) == 1 {
		fn, _ := bucketFunc(grans[0])
		return fn + "(`timestamp`)"
	}
	var parts []string
	for _, g := range grans[:len(grans)-1] {
		fn, _ := bucketFunc(g)
		parts = append(parts, "`g` = '"+string(g)+"'", fn+"(`timestamp`)")
	}
	fn, _ := bucketFunc(grans[len(grans)-1])
	return "multiIf(" + strings.Join(parts, ", ") + ", " + fn + "(`timestamp`))"
}

// columnList is the explicit INSERT column list of the rollup table.
func columnList(p *Plan) string {
	cols := []string{"`" + GranularityColumn + "`", "`" + BucketColumn + "`", "`" + ChunkColumn + "`"}
	for _, dim := range p.dimensions {
		cols = append(cols, "`"+dim.column+"`")
	}
	for _, m := range p.metrics {
		cols = append(cols, "`"+m.column+"`")
	}
	return "(" + strings.Join(cols, ", ") + ")"
}

// CreateView is the materialized view feeding the table with every event inserted into
// the events table from now on whose received_at is at or after w.Cutoff. The processor
// inserts each event once (it skips events already stored), so the view sees each once.
func CreateView(d clickhouse.Dialect, t Target, p *Plan, w Window) (clickhouse.Statement, error) {
	db, table, view, err := t.quoted()
	if err != nil {
		return clickhouse.Statement{}, err
	}
	oc, err := onCluster(d)
	if err != nil {
		return clickhouse.Statement{}, err
	}
	if w.Cutoff.IsZero() {
		return clickhouse.Statement{}, fmt.Errorf("rollup view %s: no cutoff", t.View)
	}
	return clickhouse.Statement{SQL: fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS %s.%s%s TO %s.%s AS %s",
		db, view, oc, db, table, aggregate(db, p, LiveChunk, false, w.live()))}, nil
}

// DropView drops the view (first, so nothing writes into a table being dropped).
func DropView(d clickhouse.Dialect, t Target) (clickhouse.Statement, error) {
	db, _, view, err := t.quoted()
	if err != nil {
		return clickhouse.Statement{}, err
	}
	oc, err := onCluster(d)
	if err != nil {
		return clickhouse.Statement{}, err
	}
	return clickhouse.Statement{SQL: "DROP TABLE IF EXISTS " + db + "." + view + oc}, nil
}

// DropTable drops the rollup table.
func DropTable(d clickhouse.Dialect, t Target) (clickhouse.Statement, error) {
	db, table, _, err := t.quoted()
	if err != nil {
		return clickhouse.Statement{}, err
	}
	oc, err := onCluster(d)
	if err != nil {
		return clickhouse.Statement{}, err
	}
	return clickhouse.Statement{SQL: "DROP TABLE IF EXISTS " + db + "." + table + oc}, nil
}

// validChunk: a backfill chunk is a month, yyyymm.
func validChunk(chunk int) error {
	if chunk < 197001 || chunk > 210512 || chunk%100 < 1 || chunk%100 > 12 {
		return fmt.Errorf("backfill chunk %d is not a yyyymm month between 1970 and 2105", chunk)
	}
	return nil
}

// DropChunk drops what an earlier attempt of a backfill chunk wrote. Its rows are all in
// partition (chunk, chunk): the chunk's events and so its buckets lie in that month. DROP
// PARTITION is synchronous, on 18.16 too.
func DropChunk(d clickhouse.Dialect, t Target, chunk int) (clickhouse.Statement, error) {
	db, table, _, err := t.quoted()
	if err != nil {
		return clickhouse.Statement{}, err
	}
	if err := validChunk(chunk); err != nil {
		return clickhouse.Statement{}, err
	}
	oc, err := onCluster(d)
	if err != nil {
		return clickhouse.Statement{}, err
	}
	return clickhouse.Statement{SQL: fmt.Sprintf("ALTER TABLE %s.%s%s DROP PARTITION (%d, %d)", db, table, oc, chunk, chunk)}, nil
}

func chunkCond(w Window, chunk int) string {
	return fmt.Sprintf("%s AND toYYYYMM(`timestamp`) = %d", w.backfill(), chunk)
}

// BackfillChunk aggregates the stored events of one month (chunk, yyyymm of their
// timestamp) received before the cutoff into the table. Run DropChunk first: together
// they make a chunk idempotent. FINAL collapses a duplicate the events table has not
// merged yet.
func BackfillChunk(d clickhouse.Dialect, t Target, p *Plan, w Window, chunk int) (clickhouse.Statement, error) {
	db, table, _, err := t.quoted()
	if err != nil {
		return clickhouse.Statement{}, err
	}
	if err := validChunk(chunk); err != nil {
		return clickhouse.Statement{}, err
	}
	if !w.Backfill {
		return clickhouse.Statement{}, fmt.Errorf("backfill chunk %d of %s: the window has no backfill", chunk, t.Table)
	}
	return clickhouse.Statement{SQL: fmt.Sprintf("INSERT INTO %s.%s %s %s",
		db, table, columnList(p), aggregate(db, p, chunk, true, chunkCond(w, chunk)))}, nil
}

// ChunkEvents counts the events a backfill chunk aggregates, for progress reports.
func ChunkEvents(d clickhouse.Dialect, database string, p *Plan, w Window, chunk int) (clickhouse.Statement, error) {
	if err := clickhouse.ValidateIdentifier(database); err != nil {
		return clickhouse.Statement{}, err
	}
	if err := validChunk(chunk); err != nil {
		return clickhouse.Statement{}, err
	}
	return clickhouse.Statement{SQL: fmt.Sprintf("SELECT count() FROM `%s`.`%s` FINAL WHERE %s AND %s",
		database, clickhouse.EventsTable, p.where, chunkCond(w, chunk))}, nil
}

// PendingChunks lists, ascending as UInt32, the months holding events the backfill
// aggregates, after chunk after (0 for all).
func PendingChunks(d clickhouse.Dialect, database string, p *Plan, w Window, after int) (clickhouse.Statement, error) {
	if err := clickhouse.ValidateIdentifier(database); err != nil {
		return clickhouse.Statement{}, err
	}
	return clickhouse.Statement{
		SQL: fmt.Sprintf("SELECT DISTINCT toYYYYMM(`timestamp`) AS `m` FROM `%s`.`%s` WHERE %s AND %s AND toYYYYMM(`timestamp`) > ? ORDER BY `m`",
			database, clickhouse.EventsTable, p.where, w.backfill()),
		Args: []any{uint32(max(after, 0))},
	}, nil
}

// Query is a read of a rollup: metrics per bucket of one granularity, grouped by some of
// the dimensions, over buckets starting in [From, To).
type Query struct {
	Granularity v1alpha1.Granularity
	// Metrics by name; all of the plan's when empty.
	Metrics []string
	// GroupBy are dimensions of the plan.
	GroupBy  []v1alpha1.FieldRef
	From, To time.Time
}

// Columns are the result columns of a query, in order: the bucket, the group-by
// dimensions, then the metrics (a quantile metric is an Array(Float64) of its levels).
type Columns struct {
	Dimensions []v1alpha1.FieldRef
	Metrics    []string
}

func (p *Plan) resolve(q Query) ([]dimension, []metric, error) {
	if !slices.Contains(p.granularities, q.Granularity) {
		return nil, nil, fmt.Errorf("granularity %q is not kept by this pipeline (it keeps %v)", q.Granularity, p.granularities)
	}
	if !q.To.After(q.From) {
		return nil, nil, fmt.Errorf("empty time range [%s, %s)", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	var dims []dimension
	for _, f := range q.GroupBy {
		i := slices.IndexFunc(p.dimensions, func(d dimension) bool { return d.field == f })
		if i < 0 {
			return nil, nil, fmt.Errorf("%q is not a dimension of this pipeline", f)
		}
		if slices.ContainsFunc(dims, func(d dimension) bool { return d.field == f }) {
			return nil, nil, fmt.Errorf("dimension %q is grouped by twice", f)
		}
		dims = append(dims, p.dimensions[i])
	}
	metrics := p.metrics
	if len(q.Metrics) > 0 {
		metrics = nil
		for _, name := range q.Metrics {
			i := slices.IndexFunc(p.metrics, func(m metric) bool { return m.name == name })
			if i < 0 {
				return nil, nil, fmt.Errorf("%q is not a metric of this pipeline", name)
			}
			metrics = append(metrics, p.metrics[i])
		}
	}
	return dims, metrics, nil
}

// Select reads a rollup: the stored states merged per bucket and chosen dimensions. The
// time range is bound parameters; every identifier comes from the plan.
func Select(d clickhouse.Dialect, t Target, p *Plan, q Query) (clickhouse.Statement, Columns, error) {
	db, table, _, err := t.quoted()
	if err != nil {
		return clickhouse.Statement{}, Columns{}, err
	}
	dims, metrics, err := p.resolve(q)
	if err != nil {
		return clickhouse.Statement{}, Columns{}, err
	}
	sel, group, cols := []string{"`" + BucketColumn + "`"}, []string{"`" + BucketColumn + "`"}, Columns{}
	for _, dim := range dims {
		sel = append(sel, "`"+dim.column+"`")
		group = append(group, "`"+dim.column+"`")
		cols.Dimensions = append(cols.Dimensions, dim.field)
	}
	for _, m := range metrics {
		sel = append(sel, fmt.Sprintf("%s(`%s`) AS `%s`", m.merge, m.column, m.column))
		cols.Metrics = append(cols.Metrics, m.name)
	}
	sql := fmt.Sprintf("SELECT %s FROM %s.%s WHERE `%s` = '%s' AND `%s` >= toDateTime(?) AND `%s` < toDateTime(?) GROUP BY %s ORDER BY %s",
		strings.Join(sel, ", "), db, table, GranularityColumn, q.Granularity, BucketColumn, BucketColumn,
		strings.Join(group, ", "), strings.Join(group, ", "))
	return clickhouse.Statement{SQL: sql, Args: []any{q.From.Unix(), q.To.Unix()}}, cols, nil
}

// RawSelect computes what Select returns straight from the events table: the events a
// rollup with window w aggregates, aggregated in one pass. It verifies a rollup, and
// answers for ranges no rollup covers.
func RawSelect(d clickhouse.Dialect, database string, p *Plan, w Window, q Query) (clickhouse.Statement, Columns, error) {
	if err := clickhouse.ValidateIdentifier(database); err != nil {
		return clickhouse.Statement{}, Columns{}, err
	}
	dims, metrics, err := p.resolve(q)
	if err != nil {
		return clickhouse.Statement{}, Columns{}, err
	}
	fn, _ := bucketFunc(q.Granularity)
	sel, group, cols := []string{fn + "(`timestamp`) AS `" + BucketColumn + "`"}, []string{"`" + BucketColumn + "`"}, Columns{}
	for _, dim := range dims {
		sel = append(sel, dim.expr+" AS `"+dim.column+"`")
		group = append(group, "`"+dim.column+"`")
		cols.Dimensions = append(cols.Dimensions, dim.field)
	}
	for _, m := range metrics {
		sel = append(sel, m.direct+" AS `"+m.column+"`")
		cols.Metrics = append(cols.Metrics, m.name)
	}
	window := w.live()
	if w.Backfill {
		window = "(" + window + " OR (" + w.backfill() + "))"
	}
	sql := fmt.Sprintf("SELECT %s FROM `%s`.`%s` FINAL WHERE %s AND %s AND `%s` >= toDateTime(?) AND `%s` < toDateTime(?) GROUP BY %s ORDER BY %s",
		strings.Join(sel, ", "), database, clickhouse.EventsTable, p.where, window, BucketColumn, BucketColumn,
		strings.Join(group, ", "), strings.Join(group, ", "))
	return clickhouse.Statement{SQL: sql, Args: []any{q.From.Unix(), q.To.Unix()}}, cols, nil
}
