package process

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/runtime/events"
)

func TestLakeKey(t *testing.T) {
	ts := time.Date(2026, 7, 9, 23, 59, 59, 0, time.FixedZone("x", 2*3600))
	got := LakeKey("extended/tenant=acme/", "shoal-events-acme", 2, 100, 199, ts)
	want := "extended/tenant=acme/dt=2026-07-09/hr=21/shoal-events-acme-p2-100-199.ndjson.gz"
	if got != want {
		t.Errorf("LakeKey = %q, want %q (UTC date and hour)", got, want)
	}
}

func TestParseIntent(t *testing.T) {
	for _, tc := range []struct {
		metadata string
		want     intent
		ok, err  bool
	}{
		{metadata: intent{5, 9}.metadata(), want: intent{5, 9}, ok: true},
		{metadata: intent{0, 0}.metadata(), want: intent{0, 0}, ok: true},
		{metadata: ""},
		{metadata: "member-1-abc"}, // the client's default metadata
		{metadata: intentPrefix + "9-5", err: true},
		{metadata: intentPrefix + "x-5", err: true},
		{metadata: intentPrefix + "5", err: true},
		{metadata: intentPrefix + "-1-5", err: true},
	} {
		got, ok, err := parseIntent(tc.metadata)
		if (err != nil) != tc.err || ok != tc.ok || got != tc.want {
			t.Errorf("parseIntent(%q) = %+v, %v, %v; want %+v, %v, error %v", tc.metadata, got, ok, err, tc.want, tc.ok, tc.err)
		}
	}
}

func wireRecord(t *testing.T, ev events.Event) *kgo.Record {
	t.Helper()
	v, err := events.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Value: v, Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte(events.WireFormat)}}}
}

func TestDecodeRecord(t *testing.T) {
	ev := testEvents("d", 1)[0]
	good := wireRecord(t, ev)
	noHeader := wireRecord(t, ev)
	noHeader.Headers = nil
	pretty := wireRecord(t, ev)
	pretty.Value = bytes.ReplaceAll(pretty.Value, []byte(`,"`), []byte(",\n  \""))
	future := ev
	future.Timestamp = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	lateReceipt := ev
	lateReceipt.ReceivedAt = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	otherType := wireRecord(t, ev)
	otherType.Headers[0].Value = []byte("text/plain")

	for _, tc := range []struct {
		name   string
		rec    *kgo.Record
		reason string // substring; empty for an event
		line   string
	}{
		{name: "event", rec: good, line: string(good.Value)},
		{name: "no content type is read as the wire format", rec: noHeader, line: string(good.Value)},
		{name: "lines are compacted", rec: pretty, line: string(good.Value)},
		{name: "other content type", rec: otherType, reason: "unsupported content-type"},
		{name: "empty", rec: &kgo.Record{}, reason: "empty record value"},
		{name: "not an object", rec: &kgo.Record{Value: []byte(`[1]`)}, reason: "not an object"},
		{name: "timestamp after DateTime", rec: wireRecord(t, future), reason: "timestamp 2200-01-01T00:00:00Z is outside"},
		{name: "received_at after DateTime", rec: wireRecord(t, lateReceipt), reason: "received_at 2200-01-01T00:00:00Z is outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, line, reason := decodeRecord(tc.rec)
			if tc.reason != "" {
				if !strings.Contains(reason, tc.reason) {
					t.Errorf("reason %q, want one containing %q", reason, tc.reason)
				}
				return
			}
			if reason != "" {
				t.Fatalf("quarantined: %s", reason)
			}
			if got.EventID != ev.EventID || string(line) != tc.line {
				t.Errorf("got %s with line %s, want %s with %s", got.EventID, line, ev.EventID, tc.line)
			}
		})
	}
}

func TestEncodeNDJSON(t *testing.T) {
	body, err := encodeNDJSON([][]byte{[]byte(`{"a":1}`), []byte(`{"b":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\"a\":1}\n{\"b\":2}\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestCut covers when buffered records become a batch, and where it ends.
func TestCut(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sized := func(first, n int64, size int) []*kgo.Record {
		out := make([]*kgo.Record, n)
		for i := range out {
			out[i] = &kgo.Record{Offset: first + int64(i), Value: make([]byte, size)}
		}
		return out
	}
	recs := func(first, n int64) []*kgo.Record { return sized(first, n, 50) }
	pending := &batch{records: recs(0, 3)}
	for _, tc := range []struct {
		name        string
		part        partition
		draining    bool
		first, last int64 // of the batch; -1 for none
		intentKept  bool
	}{
		{name: "empty", part: partition{}, first: -1},
		{name: "young and small", part: partition{buf: recs(0, 5), since: now}, first: -1},
		{name: "old enough", part: partition{buf: recs(0, 5), since: now.Add(-time.Second)}, first: 0, last: 4},
		{name: "full by count", part: partition{buf: recs(10, 25), since: now}, first: 10, last: 19},
		{name: "full by bytes", part: partition{buf: sized(0, 8, 200), since: now}, first: 0, last: 4},
		{name: "draining", part: partition{buf: recs(0, 5), since: now}, draining: true, first: 0, last: 4},
		{name: "pending retry not yet due", part: partition{pending: pending, retryAt: now.Add(time.Second), buf: recs(3, 20)}, first: -1},
		{name: "pending retry due", part: partition{pending: pending, retryAt: now, buf: recs(3, 20)}, first: 0, last: 2},
		{name: "pending retry when draining", part: partition{pending: pending, retryAt: now.Add(time.Hour)}, draining: true, first: 0, last: 2},
		{name: "intent waits for its last record", part: partition{buf: recs(0, 30), since: now.Add(-time.Hour), intent: &intent{0, 40}, intentSince: now}, first: -1, intentKept: true},
		{name: "intent waits when draining", part: partition{buf: recs(0, 30), since: now.Add(-time.Hour), intent: &intent{0, 40}, intentSince: now}, draining: true, first: -1, intentKept: true},
		{name: "intent cut beyond the limits", part: partition{buf: recs(0, 50), since: now, intent: &intent{0, 40}, intentSince: now}, first: 0, last: 40},
		{name: "intent shorter than the limits", part: partition{buf: recs(0, 50), since: now, intent: &intent{0, 2}, intentSince: now}, first: 0, last: 2},
		{name: "intent given up after a while", part: partition{buf: recs(0, 30), since: now.Add(-time.Hour), intent: &intent{0, 40}, intentSince: now.Add(-intentPatience)}, first: 0, last: 9},
		{name: "stale intent", part: partition{buf: recs(50, 5), since: now, intent: &intent{0, 40}, intentSince: now}, first: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{BatchMaxRecords: 10, BatchMaxBytes: 1000, BatchMaxWait: time.Second}
			opts.setDefaults()
			p := &Processor{opts: opts, log: opts.Logger}
			pt := tc.part
			if pt.bufBytes == 0 {
				for _, r := range pt.buf {
					pt.bufBytes += recordSize(r)
				}
			}
			before := len(pt.buf)
			b := p.cut(topicPartition{"shoal-events-x", 0}, &pt, now, tc.draining)
			switch {
			case tc.first < 0 && b != nil:
				t.Fatalf("cut %d-%d, want no batch", b.first(), b.last())
			case tc.first < 0:
			case b == nil:
				t.Fatalf("no batch, want %d-%d", tc.first, tc.last)
			case b.first() != tc.first || b.last() != tc.last:
				t.Fatalf("cut %d-%d, want %d-%d", b.first(), b.last(), tc.first, tc.last)
			case b != tc.part.pending && len(pt.buf)+len(b.records) != before:
				t.Errorf("%d records left of %d after cutting %d", len(pt.buf), before, len(b.records))
			}
			if (pt.intent != nil) != tc.intentKept {
				t.Errorf("intent kept: %v, want %v", pt.intent != nil, tc.intentKept)
			}
		})
	}
}

type fakeTenants struct {
	recs  map[string]metastore.TenantRecord
	err   error
	reads int
}

func (f *fakeTenants) GetTenant(_ context.Context, id string) (metastore.TenantRecord, error) {
	f.reads++
	if f.err != nil {
		return metastore.TenantRecord{}, f.err
	}
	rec, ok := f.recs[id]
	if !ok {
		return rec, metastore.ErrNotFound
	}
	return rec, nil
}

func TestTenantCache(t *testing.T) {
	src := &fakeTenants{recs: map[string]metastore.TenantRecord{
		"a": {ID: "a", LakeClass: "Extended"},
		"b": {ID: "b", Isolation: metastore.IsolationDedicated},
	}}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewTenantCache(src, time.Minute)
	c.now = func() time.Time { return now }
	ctx := context.Background()
	lookup := func(tenant string) Tenant {
		t.Helper()
		got, err := c.Tenant(ctx, tenant)
		if err != nil {
			t.Fatalf("Tenant(%s): %v", tenant, err)
		}
		return got
	}
	class := func(tenant string) string { return lookup(tenant).LakeClass }

	if got := class("a"); got != "Extended" {
		t.Errorf("a: %s", got)
	}
	if got := lookup("b"); got != (Tenant{LakeClass: "Standard", Dedicated: true}) {
		t.Errorf("b, Dedicated without a class: %+v, want Standard and Dedicated", got)
	}
	if lookup("a").Dedicated {
		t.Error("a is Shared, not Dedicated")
	}
	class("a")
	if src.reads != 2 {
		t.Errorf("%d reads, want 2: a cached", src.reads)
	}
	if _, err := c.Tenant(ctx, "missing"); !errors.Is(err, metastore.ErrNotFound) {
		t.Errorf("missing tenant: %v", err)
	}

	// After the TTL it is read again; an outage keeps the last known class.
	now = now.Add(time.Minute)
	src.recs["a"] = metastore.TenantRecord{ID: "a", LakeClass: "Compliance"}
	if got := class("a"); got != "Compliance" {
		t.Errorf("a after the TTL: %s, want the new class", got)
	}
	now = now.Add(time.Minute)
	src.err = errors.New("metastore down")
	if got := class("a"); got != "Compliance" {
		t.Errorf("a during an outage: %s, want the last known class", got)
	}
	if _, err := c.Tenant(ctx, "c"); err == nil {
		t.Error("an unseen tenant during an outage: want the error")
	}
}

func TestOptionsValidate(t *testing.T) {
	valid := func() Options {
		return Options{Brokers: []string{"127.0.0.1:9092"}, Warehouse: &ClickHouse{}, Lake: nopStore{}, Tenants: NewTenantCache(&fakeTenants{}, 0)}
	}
	for _, tc := range []struct {
		name   string
		modify func(*Options)
		ok     bool
	}{
		{"defaults", func(*Options) {}, true},
		{"no brokers", func(o *Options) { o.Brokers = nil }, false},
		{"bad tenant", func(o *Options) { o.Tenant = "Not_A_Tenant" }, false},
		{"no lake", func(o *Options) { o.Lake = nil }, false},
		{"negative batch", func(o *Options) { o.BatchMaxRecords = -1 }, false},
		{"backoff upside down", func(o *Options) { o.RetryMin, o.RetryMax = time.Second, time.Millisecond }, false},
		{"session timeout too short", func(o *Options) { o.SessionTimeout = time.Millisecond }, false},
		{"session timeout too long", func(o *Options) { o.SessionTimeout = time.Hour }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := valid()
			tc.modify(&o)
			_, err := New(o)
			if (err == nil) != tc.ok {
				t.Errorf("New: %v, want ok %v", err, tc.ok)
			}
		})
	}
}

type nopStore struct{}

func (nopStore) PutObject(context.Context, string, []byte, string) error { return nil }
