package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/runtime/query/metricquery"
)

// EventsIngested counts the tenant's events received (received_at, when ingest accepted
// them) in [from, to): the usage the subscription endpoint shows. It counts stored
// rows without FINAL: the processor stores each event once (it looks an event up before
// inserting it), so a duplicate is an exception the table's merges remove, and a usage
// figure does not justify merging a whole billing period's rows at query time.
func (e *Engine) EventsIngested(ctx context.Context, tenantID string, from, to time.Time) (uint64, error) {
	db, err := e.database(tenantID)
	if err != nil {
		return 0, err
	}
	// DateTime starts in 1970.
	since := max(from.Unix(), 0)
	st := clickhouse.Statement{
		SQL:  fmt.Sprintf("SELECT count() FROM `%s`.`%s` WHERE `received_at` >= toDateTime(?) AND `received_at` < toDateTime(?)", db, clickhouse.EventsTable),
		Args: []any{since, to.Unix()},
	}
	var n uint64
	var stats metricquery.Stats
	err = e.exec(ctx, st, &stats, func(values []any) error {
		v, ok := values[0].(uint64)
		if !ok {
			return fmt.Errorf("count is %T", values[0])
		}
		n = v
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("counting the events of tenant %s: %w", tenantID, err)
	}
	return n, nil
}
