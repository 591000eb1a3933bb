package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/runtime/ingest"
)

// BenchmarkHandler is the CPU the server spends on one request of benchBatch events with
// Kafka and the network taken away: the handler is called directly, and the producer
// acknowledges at once. It is a stand-in for what cannot be isolated otherwise (the
// broker and the client share the CPU in BenchmarkIngest); what it leaves out is the
// franz-go client's work, which the raw producer pays too.
//
//	go test ./runtime/ingest/ -run '^$' -bench Handler -benchmem
func BenchmarkHandler(b *testing.B) {
	const key = metastore.KeyPrefix + "bench"
	platform := &config.Platform{Plans: append([]config.Plan(nil), testPlans...)}
	platform.Default()
	srv, err := ingest.New(ingest.Options{
		Platform: platform,
		Keys:     oneKey{key: key, tenant: "bench"},
		Producer: ackingProducer{},
	})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	evs := benchEvents(now)
	in := make([]map[string]any, len(evs))
	for i, ev := range evs {
		in[i] = map[string]any{
			"event_id": ev.EventID, "event_type": ev.EventType, "timestamp": ev.Timestamp.Format(time.RFC3339Nano),
			"user_id": ev.UserID, "session_id": ev.SessionID, "properties": ev.Properties,
		}
	}
	body := jsonArray(b, in)
	want := []byte(fmt.Sprintf(`{"accepted":%d,`, benchBatch))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req := httptest.NewRequest(http.MethodPost, ingest.Path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !bytes.HasPrefix(rec.Body.Bytes(), want) {
			b.Fatalf("status %d: %.200s", rec.Code, rec.Body.Bytes())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/event")
}

// oneKey resolves one ingest key to a tenant on the unlimited plan.
type oneKey struct{ key, tenant string }

func (k oneKey) LookupIngestKey(_ context.Context, plaintext string) (string, bool, error) {
	if plaintext != k.key {
		return "", false, metastore.ErrNotFound
	}
	return k.tenant, false, nil
}

func (k oneKey) GetTenant(_ context.Context, id string) (metastore.TenantRecord, error) {
	return metastore.TenantRecord{ID: id, Plan: "unlimited", Isolation: metastore.IsolationShared}, nil
}

// ackingProducer acknowledges every record at once.
type ackingProducer struct{}

func (ackingProducer) Produce(_ context.Context, _ []*kgo.Record, release func()) error {
	release()
	return nil
}
func (ackingProducer) Ping(context.Context) error { return nil }
