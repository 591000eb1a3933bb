package rollup

import (
	"fmt"
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
