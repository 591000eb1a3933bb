package clickhouse

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"time"
)

// exportTimeout bounds an export whose context has no deadline. The driver applies one
// read deadline to a whole query (the client's one-minute read timeout, or the context's
// deadline when it has one), so a large table needs a deadline of its own to be read
// through; an hour is far more than a tenant table takes and still ends a hung server.
const exportTimeout = time.Hour

// exportBufferSize is how much NDJSON is gathered before each write to w.
const exportBufferSize = 64 << 10

// column is a column of a table as DESCRIBE lists it.
type column struct {
	name, typ string
}

// ExportTable writes every row of db.table to w as NDJSON: one JSON object per line whose
// keys are the column names in table order. Strings stay strings (bytes that are not
// UTF-8 become U+FFFD), numbers are JSON numbers (non-finite floats the strings "NaN",
// "+Inf", "-Inf"), DateTime and Date are RFC 3339 in UTC, Nullable NULL is null.
//
// Rows are streamed block by block, so the table is never held in memory. Tables of the
// deduplicating MergeTree engines (events and quarantine are ReplacingMergeTrees) are read
// with FINAL, so a duplicate that no merge has removed yet is exported once, as a query
// would count it; a plain MergeTree (a quarantine table made before it deduplicated) is
// read as it is, since it has nothing to collapse and older servers (18.16 among them)
// refuse FINAL on it.
//
// The export is one query bounded by ctx's deadline, or by an hour when ctx has none. It
// returns the number of rows written; on an error, w may hold a part of the export.
func (c *Client) ExportTable(ctx context.Context, db, table string, w io.Writer) (rows int64, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, exportTimeout)
		defer cancel()
	}
	engine, err := c.tableEngine(ctx, db, table)
	if err != nil {
		return 0, err
	}
	cols, err := c.describe(ctx, db, table)
	if err != nil {
		return 0, err
	}
	st, err := exportQuery(db, table, cols, exportFinal(engine))
	if err != nil {
		return 0, fmt.Errorf("exporting %s.%s: %w", db, table, err)
	}
	return c.export(ctx, db+"."+table, st, cols, w)
}

// export runs the query of ExportTable and writes its rows.
func (c *Client) export(ctx context.Context, what string, st Statement, cols []column, w io.Writer) (n int64, err error) {
	// Cancelling before Close stops the query on the server; without it, Close would read
	// the rest of the table to drain the connection after a failed write.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rows, err := c.conn.Query(ctx, st.SQL, st.Args...)
	if err != nil {
		return 0, fmt.Errorf("ClickHouse at %s: exporting %s: %w", c.addr, what, err)
	}
	defer func() {
		if err != nil {
			cancel()
		}
		_ = rows.Close()
	}()

	types := rows.ColumnTypes()
	if len(types) != len(cols) {
		return 0, fmt.Errorf("ClickHouse at %s: exporting %s: %d columns returned, %d described", c.addr, what, len(types), len(cols))
	}
	dest := make([]any, len(types))
	for i, ct := range types {
		dest[i] = reflect.New(ct.ScanType()).Interface()
	}
	keys := make([][]byte, len(cols))
	for i, col := range cols {
		k, err := json.Marshal(col.name)
		if err != nil {
			return 0, fmt.Errorf("exporting %s: column %s: %w", what, col.name, err)
		}
		keys[i] = k
	}

	bw := bufio.NewWriterSize(w, exportBufferSize)
	enc := newValueEncoder()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return n, fmt.Errorf("ClickHouse at %s: reading %s: %w", c.addr, what, err)
		}
		if err := writeRow(bw, enc, keys, dest); err != nil {
			return n, fmt.Errorf("exporting %s: %w", what, err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("ClickHouse at %s: reading %s: %w", c.addr, what, err)
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("exporting %s: %w", what, err)
	}
	return n, nil
}

// tableEngine returns the engine of db.table; a missing table is an error.
func (c *Client) tableEngine(ctx context.Context, db, table string) (string, error) {
	if _, err := quoteAll(db, table); err != nil {
		return "", err
	}
	var engines []string
	rows, err := c.conn.Query(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = ?", db, table)
	if err != nil {
		return "", fmt.Errorf("ClickHouse at %s: looking up table %s.%s: %w", c.addr, db, table, err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			return "", fmt.Errorf("ClickHouse at %s: looking up table %s.%s: %w", c.addr, db, table, err)
		}
		engines = append(engines, e)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("ClickHouse at %s: looking up table %s.%s: %w", c.addr, db, table, err)
	}
	if len(engines) != 1 {
		return "", fmt.Errorf("ClickHouse at %s: table %s.%s does not exist", c.addr, db, table)
	}
	return engines[0], nil
}

// describe lists the columns of db.table in table order. DESCRIBE is used rather than
// system.columns because it promises that order on every version; its result has more
// columns on newer servers, all strings, of which the first two are name and type.
func (c *Client) describe(ctx context.Context, db, table string) ([]column, error) {
	q, err := quoteAll(db, table)
	if err != nil {
		return nil, err
	}
	rows, err := c.conn.Query(ctx, "DESCRIBE TABLE "+q[0]+"."+q[1])
	if err != nil {
		return nil, fmt.Errorf("ClickHouse at %s: describing %s.%s: %w", c.addr, db, table, err)
	}
	defer func() { _ = rows.Close() }()
	fields := make([]string, len(rows.Columns()))
	dest := make([]any, len(fields))
	for i := range fields {
		dest[i] = &fields[i]
	}
	if len(fields) < 2 {
		return nil, fmt.Errorf("ClickHouse at %s: describing %s.%s: %d result columns, want name and type", c.addr, db, table, len(fields))
	}
	var cols []column
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("ClickHouse at %s: describing %s.%s: %w", c.addr, db, table, err)
		}
		cols = append(cols, column{name: fields[0], typ: fields[1]})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ClickHouse at %s: describing %s.%s: %w", c.addr, db, table, err)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("ClickHouse at %s: %s.%s has no columns", c.addr, db, table)
	}
	return cols, nil
}

// exportFinal reports whether a table of engine is read with FINAL: the MergeTree
// variants that collapse rows at merge time (Replacing, Collapsing, Summing, ...), also
// replicated. Plain MergeTree has nothing to collapse.
func exportFinal(engine string) bool {
	e := strings.TrimPrefix(strings.TrimPrefix(engine, "Replicated"), "Shared")
	return e != "MergeTree" && strings.HasSuffix(e, "MergeTree")
}

// exportQuery is the SELECT of an export, naming every column so their order is the
// described one whatever SELECT * would do.
func exportQuery(db, table string, cols []column, final bool) (Statement, error) {
	q, err := quoteAll(db, table)
	if err != nil {
		return Statement{}, err
	}
	names := make([]string, len(cols))
	for i, col := range cols {
		qc, err := quote(col.name)
		if err != nil {
			return Statement{}, fmt.Errorf("column: %w", err)
		}
		names[i] = qc
	}
	sql := "SELECT " + strings.Join(names, ", ") + " FROM " + q[0] + "." + q[1]
	if final {
		sql += " FINAL"
	}
	return Statement{SQL: sql}, nil
}

// valueEncoder encodes one JSON value at a time without HTML escaping, which would turn
// every < > & in event properties into \u003c and the like.
type valueEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

func newValueEncoder() *valueEncoder {
	e := &valueEncoder{}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}

// encode returns the JSON of v, valid until the next call.
func (e *valueEncoder) encode(v any) ([]byte, error) {
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(e.buf.Bytes(), []byte("\n")), nil
}

// writeRow writes one scanned row as a JSON object and a newline.
func writeRow(w *bufio.Writer, enc *valueEncoder, keys [][]byte, dest []any) error {
	_ = w.WriteByte('{')
	for i, d := range dest {
		if i > 0 {
			_ = w.WriteByte(',')
		}
		_, _ = w.Write(keys[i])
		_ = w.WriteByte(':')
		b, err := enc.encode(jsonValue(reflect.ValueOf(d).Elem()))
		if err != nil {
			return fmt.Errorf("column %s: %w", keys[i], err)
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	// bufio.Writer keeps its first write error and returns it from every later call, so
	// checking the last write catches a failure of any.
	_, err := w.WriteString("}\n")
	return err
}

// jsonValue is what a scanned value is exported as: times in UTC RFC 3339, non-finite
// floats as strings (JSON has no number for them), pointers (Nullable) followed.
func jsonValue(v reflect.Value) any {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch x := v.Interface().(type) {
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case float64:
		if s := nonFinite(x); s != "" {
			return s
		}
	case float32:
		if s := nonFinite(float64(x)); s != "" {
			return s
		}
	}
	return v.Interface()
}

// nonFinite names NaN and the infinities, and is empty for any other float.
func nonFinite(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return ""
}
