// Package archive copies a tenant's ClickHouse tables into the lake before they are
// dropped, for the Tenant's Archive deletion policy. Each table becomes one gzipped NDJSON
// object, streamed from the database to the bucket without being held whole, and a
// manifest written last says the archive is complete.
package archive

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/internal/clickhouse"
)

// Source exports tables; *clickhouse.Client is one.
type Source interface {
	// ExportTable writes every row of db.table to w as NDJSON and returns the row count.
	ExportTable(ctx context.Context, db, table string, w io.Writer) (rows int64, err error)
}

// Sink stores objects; *lake.Lake is one.
type Sink interface {
	// PutStream writes an object from r, leaving none behind when r fails, and returns
	// its size.
	PutStream(ctx context.Context, key string, r io.Reader, contentType string) (bytes int64, err error)
	// PutObject writes a small object.
	PutObject(ctx context.Context, key string, body []byte, contentType string) error
}

// ManifestName is the last object of an archive: its presence means every table object
// before it was written whole.
const ManifestName = "manifest.json"

// Format names how table objects are encoded, in the manifest.
const Format = "ndjson+gzip"

// timeLayout names an archive's directory: sortable, and free of characters that need
// escaping in keys.
const timeLayout = "20060102T150405Z"

// Manifest describes a complete archive.
type Manifest struct {
	// Database is the ClickHouse database the tables came from.
	Database string `json:"database"`
	// Time is when the archive was taken, to the second, in UTC; its directory is named
	// after it.
	Time time.Time `json:"time"`
	// Format is how each table object is encoded (Format).
	Format string `json:"format"`
	// Tables are the archived tables, in the order they were written.
	Tables []Table `json:"tables"`
}

// Table is one archived table.
type Table struct {
	// Name is the table's name in Database.
	Name string `json:"name"`
	// Key is the object holding it.
	Key string `json:"key"`
	// Rows is the number of rows, one NDJSON line each.
	Rows int64 `json:"rows"`
	// Bytes is the size of the object (gzipped).
	Bytes int64 `json:"bytes"`
	// UncompressedBytes is the size of the NDJSON before gzip.
	UncompressedBytes int64 `json:"uncompressedBytes"`
}

// Tables are the tenant tables an archive holds, in the order they are written.
func Tables() []string { return []string{clickhouse.EventsTable, clickhouse.QuarantineTable} }

// Dir is the directory (key prefix) of the archive of a tenant prefix taken at t.
func Dir(prefix string, t time.Time) string {
	return prefix + "archive/" + t.UTC().Format(timeLayout) + "/"
}

// Tenant archives the tenant tables of database db under prefix (a tenant's lake prefix,
// ending in "/"): each table to <prefix>archive/<now>/<table>.ndjson.gz, then the
// manifest, which it returns. A failed run writes no manifest; table objects it wrote may
// remain. Passing the same now on a retry (such as the tenant's deletion time) makes the
// retry overwrite them rather than start another directory.
//
// Errors wrap the cause, so clickhouse.IsUnavailable and lake.IsUnavailable tell an
// outage worth retrying from other failures.
func Tenant(ctx context.Context, src Source, dst Sink, db, prefix string, now time.Time) (Manifest, error) {
	if db == "" {
		return Manifest{}, errors.New("archive: empty database name")
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		return Manifest{}, fmt.Errorf("archive of %s: prefix %q does not end in /", db, prefix)
	}
	if now.IsZero() {
		return Manifest{}, fmt.Errorf("archive of %s: zero time", db)
	}
	m := Manifest{Database: db, Time: now.UTC().Truncate(time.Second), Format: Format}
	dir := Dir(prefix, m.Time)
	for _, name := range Tables() {
		key := dir + name + ".ndjson.gz"
		t, err := archiveTable(ctx, src, dst, db, name, key)
		if err != nil {
			return Manifest{}, fmt.Errorf("archiving %s.%s to %s: %w", db, name, key, err)
		}
		m.Tables = append(m.Tables, t)
	}
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, fmt.Errorf("encoding the archive manifest of %s: %w", db, err)
	}
	key := dir + ManifestName
	if err := dst.PutObject(ctx, key, append(body, '\n'), "application/json"); err != nil {
		return Manifest{}, fmt.Errorf("writing the archive manifest of %s to %s: %w", db, key, err)
	}
	return m, nil
}

// archiveTable streams one table through gzip into one object. The export runs in its own
// goroutine, writing into a pipe the sink reads from, so at most a part of the object is
// in memory at any time.
func archiveTable(ctx context.Context, src Source, dst Sink, db, table, key string) (Table, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	type result struct {
		rows, uncompressed int64
		err                error
	}
	exported := make(chan result, 1)
	go func() {
		gz := gzip.NewWriter(pw)
		cw := &countingWriter{w: gz}
		rows, err := src.ExportTable(ctx, db, table, cw)
		if err == nil {
			err = gz.Close()
		}
		// nil closes the pipe with EOF, so the sink sees the end of a whole object; an
		// error reaches the sink's read instead, so it stores nothing.
		pw.CloseWithError(err)
		exported <- result{rows, cw.n, err}
	}()

	size, putErr := dst.PutStream(ctx, key, pr, "application/gzip")
	if putErr != nil {
		// The sink stopped reading: fail the export's writes and stop its query.
		pr.CloseWithError(putErr)
		cancel()
	} else {
		// A sink that returned before the end gets the export to stop too.
		pr.CloseWithError(io.ErrClosedPipe)
	}
	res := <-exported

	switch {
	case res.err != nil && (putErr == nil || errors.Is(putErr, res.err)):
		// The export failed first; the sink only read its error.
		return Table{}, res.err
	case putErr != nil:
		return Table{}, putErr
	}
	return Table{Name: table, Key: key, Rows: res.rows, Bytes: size, UncompressedBytes: res.uncompressed}, nil
}

// countingWriter counts what passes through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
