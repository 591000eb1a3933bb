package archive_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/internal/archive"
	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/lake"
	"github.com/shoal-dev/shoal/internal/testbackends"
)

// The adapters are what the Tenant controller passes.
var (
	_ archive.Source = (*clickhouse.Client)(nil)
	_ archive.Sink   = (*lake.Lake)(nil)
)

// insertEvents inserts n events with 2 KiB of hex properties each (half of it entropy),
// so the gzipped events object outgrows one part of the lake's multipart upload.
func insertEvents(t *testing.T, srv *testbackends.ClickHouse, db string, n int) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := ch.Open(&ch.Options{Addr: []string{srv.Addr}, Auth: ch.Auth{Username: srv.User, Password: srv.Password}, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO `"+db+"`.`events` (event_id, event_type, timestamp, received_at, user_id, session_id, properties) VALUES")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pad := make([]byte, 1024)
	ts := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("0190c3f4-0000-7000-8000-%012d", i)
		for j := range pad {
			pad[j] = byte(rng.Uint32())
		}
		props := `{"pad":"` + hex.EncodeToString(pad) + `"}`
		if err := batch.Append(ids[i], "page_view", ts.Add(time.Duration(i)*time.Second), ts, "u", "s", props); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	q, err := conn.PrepareBatch(ctx, "INSERT INTO `"+db+"`.`quarantine` (raw, reason, received_at, topic, partition, offset) VALUES")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := q.Append("bad", "invalid json", ts, "events", int32(0), int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Send(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(ids)
	return ids
}

// readNDJSON reads a gzipped NDJSON object and returns its lines decoded.
func readNDJSON(t *testing.T, l *lake.Lake, key string) (data []byte, uncompressed int64, rows []map[string]any) {
	t.Helper()
	data, err := l.GetObject(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		uncompressed += int64(len(sc.Bytes())) + 1
		var row map[string]any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("%s line %d: %v", key, len(rows)+1, err)
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return data, uncompressed, rows
}

func TestTenantAgainstBackends(t *testing.T) {
	chSrv := testbackends.StartClickHouse(t)
	s3Srv := testbackends.StartS3(t)
	ctx := context.Background()

	c, err := clickhouse.New(ctx, clickhouse.Config{
		Addr: chSrv.Addr, User: chSrv.User, Password: chSrv.Password,
		DialTimeout: metav1.Duration{Duration: 2 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	l, err := lake.New(ctx, lake.Config{
		Endpoint: s3Srv.Endpoint, Region: s3Srv.Region, Bucket: "shoal-lake", PathStyle: true,
		AccessKeyID: s3Srv.AccessKey, SecretAccessKey: s3Srv.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}

	const db, prefix, n = "tenant_arch", "standard/tenant=arch/", 10000
	if err := c.EnsureTenantDatabase(ctx, clickhouse.TenantDB{Database: db}); err != nil {
		t.Fatal(err)
	}
	ids := insertEvents(t, chSrv, db, n)

	t.Run("archive", func(t *testing.T) {
		now := time.Date(2026, 11, 26, 21, 0, 0, 0, time.UTC)
		m, err := archive.Tenant(ctx, c, l, db, prefix, now)
		if err != nil {
			t.Fatal(err)
		}
		dir := "standard/tenant=arch/archive/20261126T210000Z/"
		want := archive.Manifest{Database: db, Time: now, Format: archive.Format, Tables: []archive.Table{
			{Name: "events", Key: dir + "events.ndjson.gz", Rows: n},
			{Name: "quarantine", Key: dir + "quarantine.ndjson.gz", Rows: 3},
		}}
		for i, tb := range m.Tables {
			if i >= len(want.Tables) {
				break
			}
			data, uncompressed, rows := readNDJSON(t, l, tb.Key)
			if int64(len(data)) != tb.Bytes || uncompressed != tb.UncompressedBytes || int64(len(rows)) != tb.Rows {
				t.Errorf("%s: object %d bytes, %d uncompressed, %d lines; manifest says %+v", tb.Name, len(data), uncompressed, len(rows), tb)
			}
			want.Tables[i].Bytes, want.Tables[i].UncompressedBytes = tb.Bytes, tb.UncompressedBytes
			if tb.Name != "events" {
				continue
			}
			if tb.Bytes <= lake.DefaultPartSize {
				t.Errorf("events object is %d bytes, want more than one part (%d) so the multipart path is taken", tb.Bytes, lake.DefaultPartSize)
			}
			got := make([]string, 0, len(rows))
			for _, row := range rows {
				id, _ := row["event_id"].(string)
				got = append(got, id)
			}
			sort.Strings(got)
			if !reflect.DeepEqual(got, ids) {
				t.Errorf("archived event_ids differ from the %d inserted (%d archived)", len(ids), len(got))
			}
		}
		if !reflect.DeepEqual(m, want) {
			t.Errorf("manifest\n%+v\nwant\n%+v", m, want)
		}
		raw, err := l.GetObject(ctx, dir+archive.ManifestName)
		if err != nil {
			t.Fatal(err)
		}
		var stored archive.Manifest
		if err := json.Unmarshal(raw, &stored); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(stored, m) {
			t.Errorf("stored manifest\n%+v\nreturned\n%+v", stored, m)
		}
	})

	t.Run("ClickHouse down", func(t *testing.T) {
		chSrv.Stop()
		now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := archive.Tenant(octx, c, l, db, prefix, now)
		t.Logf("error: %v", err)
		if !clickhouse.IsUnavailable(err) {
			t.Errorf("clickhouse.IsUnavailable(%v) = false, want true", err)
		}
		dir := archive.Dir(prefix, now)
		for _, key := range []string{dir + archive.ManifestName, dir + "events.ndjson.gz"} {
			_, err := l.GetObject(ctx, key)
			var missing *types.NoSuchKey
			if !errors.As(err, &missing) {
				t.Errorf("%s after a failed archive: GetObject = %v, want NoSuchKey", key, err)
			}
		}
	})
}
