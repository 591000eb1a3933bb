package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoal-dev/shoal/internal/kafka"
	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/runtime/events"
	"github.com/shoal-dev/shoal/runtime/ingest"
)

// The two benchmarks write the same batches to the same broker, with the same client
// options and the same concurrency, so their events/s give the ingest overhead as a
// ratio: BenchmarkIngest through HTTP (auth, decoding, validation, rate limiting,
// encoding), BenchmarkRawProducer straight from prepared records.
//
//	go test ./runtime/ingest/ -run '^$' -bench . -benchtime 20000x
const (
	benchBatch       = 100
	benchParallelism = 4 // goroutines per GOMAXPROCS
)

// benchEvents are benchBatch events of about 300 bytes each once encoded, 8 properties.
func benchEvents(now time.Time) []events.Event {
	evs := make([]events.Event, benchBatch)
	for i := range evs {
		props, _ := json.Marshal(map[string]any{
			"path": fmt.Sprintf("/p/%04d", i), "ref": "search", "plan": "team", "country": "DE",
			"ms": 120 + i, "items": i % 7, "price": 19.99, "logged_in": i%2 == 0,
		})
		evs[i] = events.Event{
			EventID:    events.NewID(now),
			EventType:  "page_view",
			Timestamp:  now.Add(-time.Second).Truncate(time.Millisecond),
			ReceivedAt: now.Truncate(time.Millisecond),
			UserID:     fmt.Sprintf("u-%05d", i),
			SessionID:  fmt.Sprintf("s-%05d", i),
			Properties: props,
		}
	}
	return evs
}

// benchTenant is a tenant name no earlier run of the benchmark function used.
func benchTenant() string { return fmt.Sprintf("bench-%d", time.Now().UnixNano()) }

func BenchmarkRawProducer(b *testing.B) {
	e := newEnv(b, envOptions{})
	tenant := benchTenant()
	e.addTenant(tenant, "unlimited")
	producer, err := kgo.NewClient(ingest.ClientOptions(kafka.Config{Brokers: e.brokers})...)
	if err != nil {
		b.Fatal(err)
	}
	defer producer.Close()

	topic := naming.Topic(tenant)
	header := ingest.RecordHeaders(false) // the API side sends event ids
	evs := benchEvents(time.Now())
	keys, values := make([][]byte, len(evs)), make([][]byte, len(evs))
	size := 0
	for i, ev := range evs {
		v, err := events.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		keys[i], values[i] = []byte(ev.EventID), v
		size += len(v)
	}
	b.Logf("%d events of %d bytes on average", len(evs), size/len(evs))

	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			records := make([]*kgo.Record, len(keys))
			for i := range records {
				records[i] = &kgo.Record{Topic: topic, Key: keys[i], Value: values[i], Headers: header}
			}
			if err := producer.ProduceSync(ctx, records...).FirstErr(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkIngest(b *testing.B) {
	e := newEnv(b, envOptions{})
	e.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	tenant := benchTenant()
	key := e.addTenant(tenant, "unlimited")
	evs := benchEvents(e.clock.Now())
	in := make([]map[string]any, len(evs))
	for i, ev := range evs {
		in[i] = map[string]any{
			"event_id": ev.EventID, "event_type": ev.EventType, "timestamp": ev.Timestamp.Format(time.RFC3339Nano),
			"user_id": ev.UserID, "session_id": ev.SessionID, "properties": ev.Properties,
		}
	}
	body := jsonArray(b, in)
	b.Logf("request body of %d bytes", len(body))

	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	want := []byte(fmt.Sprintf(`{"accepted":%d,`, benchBatch))
	b.RunParallel(func(pb *testing.PB) {
		head := make([]byte, 64)
		for pb.Next() {
			req, err := http.NewRequest(http.MethodPost, e.url+ingest.Path, bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := e.client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			// The client only checks the count: decoding the ids too would cost this
			// process CPU the server then lacks.
			n, err := resp.Body.Read(head)
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(head[:n], want) {
				b.Errorf("status %d: %s (%v)", resp.StatusCode, head[:n], err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
}
