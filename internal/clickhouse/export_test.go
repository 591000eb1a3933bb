package clickhouse

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/testbackends"
)

func TestExportFinal(t *testing.T) {
	tests := map[string]bool{
		"MergeTree":                              false,
		"ReplicatedMergeTree":                    false,
		"SharedMergeTree":                        false,
		"ReplacingMergeTree":                     true,
		"ReplicatedReplacingMergeTree":           true,
		"SharedReplacingMergeTree":               true,
		"CollapsingMergeTree":                    true,
		"ReplicatedVersionedCollapsingMergeTree": true,
		"Log":                                    false,
		"Memory":                                 false,
	}
	for engine, want := range tests {
		if got := exportFinal(engine); got != want {
			t.Errorf("exportFinal(%q) = %v, want %v", engine, got, want)
		}
	}
}

func TestExportQuery(t *testing.T) {
	cols := []column{{"event_id", "String"}, {"timestamp", "DateTime"}}
	tests := []struct {
		name      string
		db, table string
		cols      []column
		final     bool
		want      string // SQL, or empty for an error
	}{
		{"final", "tenant_a", "events", cols, true, "SELECT `event_id`, `timestamp` FROM `tenant_a`.`events` FINAL"},
		{"plain", "tenant_a", "quarantine", cols[:1], false, "SELECT `event_id` FROM `tenant_a`.`quarantine`"},
		{"bad database", "tenant-a", "events", cols, true, ""},
		{"bad table", "tenant_a", "events;", cols, true, ""},
		{"bad column", "tenant_a", "events", []column{{"a`b", "String"}}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := exportQuery(tt.db, tt.table, tt.cols, tt.final)
			switch {
			case tt.want == "" && err == nil:
				t.Errorf("exportQuery = %q, want an error", st.SQL)
			case tt.want != "" && (err != nil || st.SQL != tt.want):
				t.Errorf("exportQuery = %q, %v; want %q", st.SQL, err, tt.want)
			}
		})
	}
}

func TestWriteRow(t *testing.T) {
	s := "x"
	var null *string
	ts := time.Date(2026, 11, 20, 11, 0, 0, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		val  any // what dest points to
		want string
	}{
		{"string", "a<b>&\"c\"\n", `"a<b>&\"c\"\n"`},
		{"invalid UTF-8", "\xff", `"\ufffd"`},
		{"int32", int32(-7), `-7`},
		{"uint64", uint64(math.MaxUint64), `18446744073709551615`},
		{"float", 1.5, `1.5`},
		{"NaN", math.NaN(), `"NaN"`},
		{"-Inf", float32(math.Inf(-1)), `"-Inf"`},
		{"time in UTC", ts, `"2026-11-20T10:00:00Z"`},
		{"nullable", &s, `"x"`},
		{"null", null, `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := bufio.NewWriter(&buf)
			dest := reflect.New(reflect.TypeOf(tt.val))
			dest.Elem().Set(reflect.ValueOf(tt.val))
			if err := writeRow(w, newValueEncoder(), [][]byte{[]byte(`"v"`)}, []any{dest.Interface()}); err != nil {
				t.Fatal(err)
			}
			_ = w.Flush()
			if want := `{"v":` + tt.want + "}\n"; buf.String() != want {
				t.Errorf("row = %q, want %q", buf.String(), want)
			}
		})
	}
}

// exportLines exports a table and returns its lines, sorted.
func exportLines(t *testing.T, c *Client, db, table string) []string {
	t.Helper()
	var buf bytes.Buffer
	n, err := c.ExportTable(context.Background(), db, table, &buf)
	if err != nil {
		t.Fatalf("exporting %s.%s: %v", db, table, err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if buf.Len() == 0 {
		lines = nil
	}
	if int64(len(lines)) != n {
		t.Fatalf("exporting %s.%s: %d rows reported, %d lines written", db, table, n, len(lines))
	}
	sort.Strings(lines)
	return lines
}

func TestExportTable(t *testing.T) {
	srv := testbackends.StartClickHouse(t)
	c := newTestClient(t, srv)
	ctx := context.Background()
	spec := TenantDB{Database: "tenant_x"}
	if err := c.EnsureTenantDatabase(ctx, spec); err != nil {
		t.Fatal(err)
	}
	// No merge may remove the duplicate before the export: FINAL must do it.
	if err := c.conn.Exec(ctx, "SYSTEM STOP MERGES `tenant_x`.`events`"); err != nil {
		t.Fatal(err)
	}

	ts := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	insertEvent := func(id string, received time.Time, props string) {
		t.Helper()
		batch, err := c.conn.PrepareBatch(ctx, "INSERT INTO `tenant_x`.`events` (event_id, event_type, timestamp, received_at, user_id, session_id, properties) VALUES")
		if err != nil {
			t.Fatal(err)
		}
		if err := batch.Append(id, "page_view", ts, received, "u1", "s1", props); err != nil {
			t.Fatal(err)
		}
		if err := batch.Send(); err != nil { // one part per insert
			t.Fatal(err)
		}
	}
	insertEvent("e1", ts.Add(time.Second), `{"path":"/"}`)
	insertEvent("e1", ts.Add(2*time.Second), `{"path":"/"}`) // redelivered later: this copy wins
	insertEvent("e2", ts.Add(time.Second), `{"q":"a<b & \"c\"","ü":"\n"}`)
	var raw uint64
	if err := c.conn.QueryRow(ctx, "SELECT count() FROM `tenant_x`.`events`").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if raw != 3 {
		t.Fatalf("%d rows stored, want 3 with the duplicate not merged away", raw)
	}

	t.Run("events, duplicates once", func(t *testing.T) {
		want := []string{
			`{"event_id":"e1","event_type":"page_view","timestamp":"2026-11-20T10:00:00Z","received_at":"2026-11-20T10:00:02Z","user_id":"u1","session_id":"s1","properties":"{\"path\":\"/\"}"}`,
			`{"event_id":"e2","event_type":"page_view","timestamp":"2026-11-20T10:00:00Z","received_at":"2026-11-20T10:00:01Z","user_id":"u1","session_id":"s1","properties":"{\"q\":\"a<b & \\\"c\\\"\",\"ü\":\"\\n\"}"}`,
		}
		got := exportLines(t, c, spec.Database, EventsTable)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("export:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		for _, line := range got {
			var ev struct {
				EventID    string    `json:"event_id"`
				Timestamp  time.Time `json:"timestamp"`
				Properties string    `json:"properties"`
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("line %s: %v", line, err)
			}
			if !ev.Timestamp.Equal(ts) || !json.Valid([]byte(ev.Properties)) {
				t.Errorf("decoded %+v: timestamp or properties lost", ev)
			}
		}
	})

	t.Run("quarantine, numbers as numbers", func(t *testing.T) {
		batch, err := c.conn.PrepareBatch(ctx, "INSERT INTO `tenant_x`.`quarantine` (raw, reason, received_at, topic, partition, offset) VALUES")
		if err != nil {
			t.Fatal(err)
		}
		for i, raw := range []string{"not json", "{}"} {
			if err := batch.Append(raw, "invalid", ts, "tenant.x.events", int32(i), int64(1)<<40+int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.Send(); err != nil {
			t.Fatal(err)
		}
		want := []string{
			`{"raw":"not json","reason":"invalid","received_at":"2026-11-20T10:00:00Z","topic":"tenant.x.events","partition":0,"offset":1099511627776}`,
			`{"raw":"{}","reason":"invalid","received_at":"2026-11-20T10:00:00Z","topic":"tenant.x.events","partition":1,"offset":1099511627777}`,
		}
		got := exportLines(t, c, spec.Database, QuarantineTable)
		sort.Strings(want)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("export:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})

	t.Run("a failing writer stops the export", func(t *testing.T) {
		// Far more than one write buffer, so the writer is called while rows remain.
		batch, err := c.conn.PrepareBatch(ctx, "INSERT INTO `tenant_x`.`events` (event_id, event_type, timestamp, received_at, user_id, session_id, properties) VALUES")
		if err != nil {
			t.Fatal(err)
		}
		const many = 20000
		for i := range many {
			if err := batch.Append(fmt.Sprintf("bulk-%05d", i), "bulk", ts, ts, "u", "s", `{"padding":"`+strings.Repeat("x", 100)+`"}`); err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.Send(); err != nil {
			t.Fatal(err)
		}
		w := &failingWriter{after: 1}
		n, err := c.ExportTable(ctx, spec.Database, EventsTable, w)
		if !errors.Is(err, errWrite) {
			t.Fatalf("ExportTable = %d, %v; want the writer's error", n, err)
		}
		if n >= many {
			t.Errorf("%d rows exported before the error, want it to stop early", n)
		}
		// The connection is usable afterwards, and a full export finds every row.
		if got := exportLines(t, c, spec.Database, EventsTable); len(got) != many+2 {
			t.Errorf("%d rows exported, want %d", len(got), many+2)
		}
	})

	t.Run("missing table", func(t *testing.T) {
		_, err := c.ExportTable(ctx, spec.Database, "nothing", &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("ExportTable of a missing table = %v, want an error saying so", err)
		}
		if _, err := c.ExportTable(ctx, "tenant-x", EventsTable, &bytes.Buffer{}); err == nil {
			t.Error("an invalid database name was accepted")
		}
	})
}

var errWrite = errors.New("write refused")

// failingWriter accepts after writes, then refuses every write.
type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errWrite
	}
	w.after--
	return len(p), nil
}
