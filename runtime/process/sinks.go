package process

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/runtime/events"
)

// Warehouse stores a batch in a tenant's ClickHouse database. InsertEvents stores each
// event once: events already stored (a redelivery, a client's resend) are skipped, and
// it returns how many it inserted. Only events that can be stored already need to be
// looked for: those whose id a client gave (it may send one twice), and, with
// lookupAll, every event of a batch that may have been written before (a replay or a
// retry). On error it may have inserted some; the processor then writes the batch
// again, with lookupAll, and those are skipped.
type Warehouse interface {
	InsertEvents(ctx context.Context, database string, evs []events.Event, lookupAll bool) (int, error)
	InsertQuarantine(ctx context.Context, database string, rows []Quarantined) error
}

// ObjectStore is the lake bucket; *lake.Lake is one.
type ObjectStore interface {
	PutObject(ctx context.Context, key string, body []byte, contentType string) error
}

// TenantInfo says what the processor needs to know of a tenant.
type TenantInfo interface {
	Tenant(ctx context.Context, tenant string) (Tenant, error)
}

// Tenant is what the processor needs to know of a tenant.
type Tenant struct {
	// LakeClass is the tenant's retention class: Standard, Extended or Compliance.
	LakeClass string
	// Dedicated tenants have a processor of their own (Options.Tenant) writing to their
	// own ClickHouse installation; the shared processor leaves their topics alone.
	Dedicated bool
}

// Quarantined is a record that did not become an event, kept with where it came from so
// it can be replayed once the reason is fixed.
type Quarantined struct {
	Raw    []byte
	Reason string
	// ReceivedAt is the record's Kafka timestamp: when ingest wrote it.
	ReceivedAt time.Time
	Topic      string
	Partition  int32
	Offset     int64
}

// ClickHouse is the Warehouse on a ClickHouse server, through the native protocol.
type ClickHouse struct {
	conn driver.Conn
}

// NewClickHouse uses an open connection; Close closes it.
func NewClickHouse(conn driver.Conn) *ClickHouse { return &ClickHouse{conn: conn} }

// OpenClickHouse connects with the platform's ClickHouse settings (address, user,
// password or password file) and checks the server answers.
func OpenClickHouse(ctx context.Context, cfg clickhouse.Config) (*ClickHouse, error) {
	conn, err := clickhouse.Dial(cfg, 16)
	if err != nil {
		return nil, err
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("connecting to ClickHouse at %s as %s: %w", cfg.Addr, cfg.User, err)
	}
	return &ClickHouse{conn: conn}, nil
}

// Close closes the connections.
func (c *ClickHouse) Close() error { return c.conn.Close() }

// Column lists are explicit: old servers need them, and they keep an insert working
// when a later release adds columns.
const (
	eventsColumns     = "(`event_id`, `event_type`, `timestamp`, `received_at`, `user_id`, `session_id`, `properties`)"
	quarantineColumns = "(`raw`, `reason`, `received_at`, `topic`, `partition`, `offset`)"
)

// insertSQL is the INSERT head for a table of a tenant database; the database name is
// checked because it is put into the SQL text.
func insertSQL(database, table, columns string) (string, error) {
	if err := clickhouse.ValidateIdentifier(database); err != nil {
		return "", err
	}
	return "INSERT INTO `" + database + "`.`" + table + "` " + columns, nil
}

// InsertEvents inserts the events of evs the database's events table does not hold yet,
// one per event_id, and returns how many.
func (c *ClickHouse) InsertEvents(ctx context.Context, database string, evs []events.Event, lookupAll bool) (int, error) {
	fresh, err := c.unstored(ctx, database, evs, lookupAll)
	if err != nil {
		return 0, err
	}
	if err := c.insertEvents(ctx, database, fresh); err != nil {
		return 0, err
	}
	return len(fresh), nil
}

// insertEvents inserts evs into the database's events table in one batch, column by
// column (cheaper for the driver than row by row).
func (c *ClickHouse) insertEvents(ctx context.Context, database string, evs []events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	sql, err := insertSQL(database, clickhouse.EventsTable, eventsColumns)
	if err != nil {
		return err
	}
	n := len(evs)
	ids, types, users, sessions, props := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ts, received := make([]time.Time, n), make([]time.Time, n)
	for i := range evs {
		e := &evs[i]
		ids[i], types[i], users[i], sessions[i] = e.EventID, e.EventType, e.UserID, e.SessionID
		ts[i], received[i] = e.Timestamp, e.ReceivedAt
		props[i] = string(e.Properties)
		if props[i] == "" {
			props[i] = "{}"
		}
	}
	return c.send(ctx, database, clickhouse.EventsTable, sql, n, ids, types, ts, received, users, sessions, props)
}

// InsertQuarantine inserts rows into the database's quarantine table in one batch.
func (c *ClickHouse) InsertQuarantine(ctx context.Context, database string, rows []Quarantined) error {
	if len(rows) == 0 {
		return nil
	}
	sql, err := insertSQL(database, clickhouse.QuarantineTable, quarantineColumns)
	if err != nil {
		return err
	}
	n := len(rows)
	raw, reasons, topics := make([]string, n), make([]string, n), make([]string, n)
	received := make([]time.Time, n)
	partitions, offsets := make([]int32, n), make([]int64, n)
	for i, q := range rows {
		raw[i], reasons[i], topics[i] = string(q.Raw), q.Reason, q.Topic
		received[i], partitions[i], offsets[i] = q.ReceivedAt, q.Partition, q.Offset
	}
	return c.send(ctx, database, clickhouse.QuarantineTable, sql, n, raw, reasons, received, topics, partitions, offsets)
}

// insertBlockRows is how many rows go in one block of an INSERT. The driver's columns
// keep their buffers from one block to the next, so a batch sent in blocks grows them
// once to a block's size instead of growing and copying them to the whole batch's; the
// server squashes the blocks of one INSERT back into one part.
const insertBlockRows = 2000

// send inserts one batch of rows given as columns (slices of rows values each), in the
// order of the INSERT's column list, as one INSERT.
func (c *ClickHouse) send(ctx context.Context, database, table, sql string, rows int, columns ...any) error {
	batch, err := c.conn.PrepareBatch(ctx, sql)
	if err != nil {
		return fmt.Errorf("inserting into %s.%s: %w", database, table, err)
	}
	for from := 0; from < rows; from += insertBlockRows {
		to := min(from+insertBlockRows, rows)
		for i, col := range columns {
			if err := batch.Column(i).Append(reflect.ValueOf(col).Slice(from, to).Interface()); err != nil {
				_ = batch.Abort()
				return fmt.Errorf("inserting into %s.%s: column %d: %w", database, table, i, err)
			}
		}
		if to < rows {
			if err := batch.Flush(); err != nil {
				_ = batch.Abort()
				return fmt.Errorf("inserting into %s.%s: %w", database, table, err)
			}
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("inserting into %s.%s: %w", database, table, err)
	}
	return nil
}
