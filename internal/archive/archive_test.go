package archive

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

var (
	errExport = errors.New("export broke")
	errPut    = errors.New("put broke")
)

// fakeSource writes rows lines per table, one write each; failAfter >= 0 fails a table's
// export after that many lines.
type fakeSource struct {
	rows      int
	failTable string
	failAfter int
}

func (s *fakeSource) ExportTable(ctx context.Context, db, table string, w io.Writer) (int64, error) {
	var n int64
	for i := range s.rows {
		if table == s.failTable && i == s.failAfter {
			return n, errExport
		}
		if _, err := fmt.Fprintf(w, `{"table":%q,"i":%d}`+"\n", table, i); err != nil {
			return n, fmt.Errorf("writing: %w", err)
		}
		n++
	}
	return n, nil
}

// fakeSink keeps objects in memory. putFailAfter >= 0 fails PutStream after reading
// that many bytes, without draining the reader; manifestFails fails PutObject.
type fakeSink struct {
	objects       map[string][]byte
	putFailAfter  int64
	manifestFails bool
}

func newFakeSink() *fakeSink { return &fakeSink{objects: map[string][]byte{}, putFailAfter: -1} }

func (s *fakeSink) PutStream(ctx context.Context, key string, r io.Reader, contentType string) (int64, error) {
	if s.putFailAfter >= 0 {
		if _, err := io.CopyN(io.Discard, r, s.putFailAfter); err != nil {
			return 0, err
		}
		return 0, errPut
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", key, err)
	}
	s.objects[key] = data
	return int64(len(data)), nil
}

func (s *fakeSink) PutObject(ctx context.Context, key string, body []byte, contentType string) error {
	if s.manifestFails {
		return errPut
	}
	s.objects[key] = body
	return nil
}

func gunzip(t *testing.T, data []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestTenantWithFakes(t *testing.T) {
	now := time.Date(2026, 11, 26, 22, 0, 0, 123, time.FixedZone("CET", 3600))
	const dir = "standard/tenant=acme/archive/20261126T210000Z/"
	tests := []struct {
		name    string
		src     *fakeSource
		sink    func() *fakeSink
		prefix  string
		wantErr error    // nil for success
		objects []string // keys written, whatever the outcome
	}{{
		name:    "both tables and the manifest",
		src:     &fakeSource{rows: 5000, failAfter: -1},
		sink:    newFakeSink,
		prefix:  "standard/tenant=acme/",
		objects: []string{dir + "events.ndjson.gz", dir + "quarantine.ndjson.gz", dir + "manifest.json"},
	}, {
		name:    "export fails on the second table",
		src:     &fakeSource{rows: 5000, failTable: "quarantine", failAfter: 3000},
		sink:    newFakeSink,
		prefix:  "standard/tenant=acme/",
		wantErr: errExport,
		objects: []string{dir + "events.ndjson.gz"},
	}, {
		name: "sink fails midway",
		src:  &fakeSource{rows: 50000, failAfter: -1},
		sink: func() *fakeSink {
			s := newFakeSink()
			s.putFailAfter = 100
			return s
		},
		prefix:  "standard/tenant=acme/",
		wantErr: errPut,
	}, {
		name: "manifest fails",
		src:  &fakeSource{rows: 10, failAfter: -1},
		sink: func() *fakeSink {
			s := newFakeSink()
			s.manifestFails = true
			return s
		},
		prefix:  "standard/tenant=acme/",
		wantErr: errPut,
		objects: []string{dir + "events.ndjson.gz", dir + "quarantine.ndjson.gz"},
	}, {
		name:    "prefix without slash",
		src:     &fakeSource{rows: 1, failAfter: -1},
		sink:    newFakeSink,
		prefix:  "standard/tenant=acme",
		wantErr: errors.New("does not end in /"),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := tt.sink()
			m, err := Tenant(context.Background(), tt.src, sink, "tenant_acme", tt.prefix, now)
			var written []string
			for _, k := range append(Tables(), ManifestName) {
				for key := range sink.objects {
					if strings.HasSuffix(key, "/"+k) || strings.HasSuffix(key, "/"+k+".ndjson.gz") {
						written = append(written, key)
					}
				}
			}
			if strings.Join(written, ",") != strings.Join(tt.objects, ",") {
				t.Errorf("objects written %v, want %v", written, tt.objects)
			}
			if tt.wantErr != nil {
				if err == nil || (!errors.Is(err, tt.wantErr) && !strings.Contains(err.Error(), tt.wantErr.Error())) {
					t.Fatalf("Tenant = %v, want %v", err, tt.wantErr)
				}
				if m.Tables != nil {
					t.Errorf("a manifest was returned with the error: %+v", m)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var stored Manifest
			if err := json.Unmarshal(sink.objects[dir+ManifestName], &stored); err != nil {
				t.Fatal(err)
			}
			if !stored.Time.Equal(time.Date(2026, 11, 26, 21, 0, 0, 0, time.UTC)) || stored.Database != "tenant_acme" || stored.Format != Format {
				t.Errorf("manifest %+v", stored)
			}
			if len(stored.Tables) != 2 || len(m.Tables) != 2 {
				t.Fatalf("manifest tables %+v, returned %+v; want events and quarantine", stored.Tables, m.Tables)
			}
			for i, tb := range stored.Tables {
				if tb != m.Tables[i] {
					t.Errorf("stored table %+v, returned %+v", tb, m.Tables[i])
				}
				data := sink.objects[tb.Key]
				text := gunzip(t, data)
				if tb.Name != Tables()[i] || tb.Rows != int64(tt.src.rows) || tb.Bytes != int64(len(data)) ||
					tb.UncompressedBytes != int64(len(text)) || int64(strings.Count(text, "\n")) != tb.Rows {
					t.Errorf("table %+v; object %d bytes, %d uncompressed, %d lines", tb, len(data), len(text), strings.Count(text, "\n"))
				}
			}
		})
	}
}
