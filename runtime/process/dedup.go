package process

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	shoalch "github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/runtime/events"
)

// Why the processor deduplicates before inserting, although the events table already
// collapses copies by event_id: the table only collapses them when parts merge, while a
// materialized view (a Pipeline's rollup) sees every inserted row at insert time and
// cannot take a copy back. Skipping what is stored already keeps a redelivered batch, or
// an event a client sent twice, out of every rollup. The table's own deduplication stays
// as the backstop for the one case the lookup cannot see: two processors inserting the
// same event at the same moment during a partition handover.

// eventKey is what identifies an event in the events table: its sorting key.
type eventKey struct {
	eventType string
	day       int64 // days since 1970-01-01, UTC
	id        string
}

func keyOf(e *events.Event) eventKey {
	return eventKey{eventType: e.EventType, day: e.Timestamp.Unix() / 86400, id: e.EventID}
}

// firstOfEach keeps the first event of each key, in order: a client resending an event
// within one batch is one event. Unless all, only events whose ids clients gave are
// compared, and the others kept: ingest assigned theirs, so they are distinct.
func firstOfEach(evs []events.Event, all bool) []events.Event {
	compared := 0
	for i := range evs {
		if all || !evs[i].IDAssigned {
			compared++
		}
	}
	if compared < 2 {
		return evs
	}
	seen := make(map[eventKey]struct{}, compared)
	out := evs[:0:0]
	for i := range evs {
		if all || !evs[i].IDAssigned {
			k := keyOf(&evs[i])
			if _, dup := seen[k]; dup {
				continue
			}
			seen[k] = struct{}{}
		}
		out = append(out, evs[i])
	}
	return out
}

// keysTable is the external table the lookup sends the batch's keys in. It travels
// beside the query as data, so a batch of any size fits without a long IN list in the
// query text (which max_query_size would cut).
const keysTable = "batch_keys"

// storedSQL selects the positions, in the batch, of the events the table holds already.
// The conditions on event_type and toDate(timestamp) are there for the primary key:
// alone, event_id (its last column) would make the lookup read the whole table.
func storedSQL(database string) (string, error) {
	if err := shoalch.ValidateIdentifier(database); err != nil {
		return "", err
	}
	events := "`" + database + "`.`" + shoalch.EventsTable + "`"
	return "SELECT i FROM " + keysTable + " WHERE (event_type, toDate(ts), event_id) IN (" +
		"SELECT event_type, toDate(`timestamp`), event_id FROM " + events +
		" WHERE event_type IN (SELECT event_type FROM " + keysTable + ")" +
		" AND toDate(`timestamp`) IN (SELECT toDate(ts) FROM " + keysTable + ")" +
		" AND event_id IN (SELECT event_id FROM " + keysTable + "))", nil
}

// unstored returns the events of evs not in the database's events table yet, one per key.
// Unless lookupAll, events whose id ingest assigned are taken as not stored without
// looking, or comparing with the batch's others: nothing but a redelivery repeats them,
// and lookupAll is how a batch that may be one says so.
func (c *ClickHouse) unstored(ctx context.Context, database string, evs []events.Event, lookupAll bool) ([]events.Event, error) {
	evs = firstOfEach(evs, lookupAll)
	look := make([]int, 0, len(evs)) // positions in evs of the events to look for
	for i := range evs {
		if lookupAll || !evs[i].IDAssigned {
			look = append(look, i)
		}
	}
	if len(look) == 0 {
		return evs, nil
	}
	sql, err := storedSQL(database)
	if err != nil {
		return nil, err
	}
	keys, err := ext.NewTable(keysTable,
		ext.Column("i", column.Type("UInt32")),
		ext.Column("event_type", column.Type("String")),
		ext.Column("ts", column.Type("DateTime")),
		ext.Column("event_id", column.Type("String")),
	)
	if err != nil {
		return nil, fmt.Errorf("looking up stored events: %w", err)
	}
	for _, i := range look {
		if err := keys.Append(uint32(i), evs[i].EventType, evs[i].Timestamp.Truncate(time.Second), evs[i].EventID); err != nil {
			return nil, fmt.Errorf("looking up stored events: %w", err)
		}
	}
	rows, err := c.conn.Query(clickhouse.Context(ctx, clickhouse.WithExternalTable(keys)), sql)
	if err != nil {
		return nil, fmt.Errorf("looking up stored events in %s.%s: %w", database, shoalch.EventsTable, err)
	}
	defer func() { _ = rows.Close() }()
	stored := make([]bool, len(evs))
	n := 0
	for rows.Next() {
		var i uint32
		if err := rows.Scan(&i); err != nil {
			return nil, fmt.Errorf("looking up stored events in %s.%s: %w", database, shoalch.EventsTable, err)
		}
		if int(i) < len(stored) && !stored[i] {
			stored[i] = true
			n++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("looking up stored events in %s.%s: %w", database, shoalch.EventsTable, err)
	}
	if n == 0 {
		return evs, nil
	}
	out := make([]events.Event, 0, len(evs)-n)
	for i := range evs {
		if !stored[i] {
			out = append(out, evs[i])
		}
	}
	return out, nil
}
