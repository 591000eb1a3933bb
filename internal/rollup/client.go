package rollup

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/shoal-dev/shoal/internal/clickhouse"
)

// Client runs the rollup SQL on one ClickHouse server, in the dialect of its version.
type Client struct {
	conn    driver.Conn
	dialect clickhouse.Dialect
}

// NewClient reads the server version over conn (not closed by the client) and builds SQL
// for it, with ON CLUSTER cluster in DDL when cluster is set.
func NewClient(ctx context.Context, conn driver.Conn, cluster string) (*Client, error) {
	var raw string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&raw); err != nil {
		return nil, fmt.Errorf("reading the ClickHouse version: %w", err)
	}
	v, err := clickhouse.ParseVersion(raw)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, dialect: clickhouse.NewDialect(v, cluster)}, nil
}

// Dialect is the SQL dialect of the server.
func (c *Client) Dialect() clickhouse.Dialect { return c.dialect }

func (c *Client) exec(ctx context.Context, what string, st clickhouse.Statement, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := c.conn.Exec(ctx, st.SQL, st.Args...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Now is the server's clock, whole seconds (what DateTime holds).
func (c *Client) Now(ctx context.Context) (time.Time, error) {
	var now time.Time
	if err := c.conn.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
		return time.Time{}, fmt.Errorf("reading the ClickHouse clock: %w", err)
	}
	return now.UTC(), nil
}

// Create creates the table, then the view feeding it from w.Cutoff on; both are left as
// they are when they exist.
func (c *Client) Create(ctx context.Context, t Target, p *Plan, w Window) error {
	st, err := CreateTable(c.dialect, t, p)
	if err := c.exec(ctx, "creating rollup table "+t.Database+"."+t.Table, st, err); err != nil {
		return err
	}
	st, err = CreateView(c.dialect, t, p, w)
	return c.exec(ctx, "creating rollup view "+t.Database+"."+t.View, st, err)
}

// Drop drops the view, then the table; what is already gone is fine.
func (c *Client) Drop(ctx context.Context, t Target) error {
	st, err := DropView(c.dialect, t)
	if err := c.exec(ctx, "dropping rollup view "+t.Database+"."+t.View, st, err); err != nil {
		return err
	}
	st, err = DropTable(c.dialect, t)
	return c.exec(ctx, "dropping rollup table "+t.Database+"."+t.Table, st, err)
}

// DropView drops only the view: the table stops receiving events.
func (c *Client) DropView(ctx context.Context, t Target) error {
	st, err := DropView(c.dialect, t)
	return c.exec(ctx, "dropping rollup view "+t.Database+"."+t.View, st, err)
}

// Exists reports whether the table and the view exist.
func (c *Client) Exists(ctx context.Context, t Target) (table, view bool, err error) {
	rows, err := c.conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ? AND name IN (?, ?)", t.Database, t.Table, t.View)
	if err != nil {
		return false, false, fmt.Errorf("looking up rollup %s.%s: %w", t.Database, t.Table, err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return false, false, fmt.Errorf("looking up rollup %s.%s: %w", t.Database, t.Table, err)
		}
		table = table || name == t.Table
		view = view || name == t.View
	}
	if err := rows.Err(); err != nil {
		return false, false, fmt.Errorf("looking up rollup %s.%s: %w", t.Database, t.Table, err)
	}
	return table, view, nil
}

// PendingChunks lists the backfill chunks (yyyymm) after after that hold events to
// aggregate, ascending.
func (c *Client) PendingChunks(ctx context.Context, database string, p *Plan, w Window, after int) ([]int, error) {
	st, err := PendingChunks(c.dialect, database, p, w, after)
	if err != nil {
		return nil, err
	}
	rows, err := c.conn.Query(ctx, st.SQL, st.Args...)
	if err != nil {
		return nil, fmt.Errorf("listing backfill chunks of %s: %w", database, err)
	}
	defer func() { _ = rows.Close() }()
	var out []int
	for rows.Next() {
		var m uint32
		if err := rows.Scan(&m); err != nil {
			return nil, fmt.Errorf("listing backfill chunks of %s: %w", database, err)
		}
		out = append(out, int(m))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing backfill chunks of %s: %w", database, err)
	}
	return out, nil
}

// BackfillChunk (re)writes one chunk: it drops what an earlier attempt wrote, then
// aggregates the chunk's events. Running it again gives the same rollup rows. It returns
// the number of events aggregated.
func (c *Client) BackfillChunk(ctx context.Context, t Target, p *Plan, w Window, chunk int) (uint64, error) {
	st, err := ChunkEvents(c.dialect, t.Database, p, w, chunk)
	if err != nil {
		return 0, err
	}
	var n uint64
	if err := c.conn.QueryRow(ctx, st.SQL, st.Args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting the events of backfill chunk %d of %s.%s: %w", chunk, t.Database, t.Table, err)
	}
	st, err = DropChunk(c.dialect, t, chunk)
	if err := c.exec(ctx, fmt.Sprintf("dropping backfill chunk %d of %s.%s", chunk, t.Database, t.Table), st, err); err != nil {
		return 0, err
	}
	st, err = BackfillChunk(c.dialect, t, p, w, chunk)
	if err := c.exec(ctx, fmt.Sprintf("backfilling chunk %d of %s.%s", chunk, t.Database, t.Table), st, err); err != nil {
		return 0, err
	}
	return n, nil
}
