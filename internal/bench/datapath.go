package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/kafka"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/runtime/events"
)

// The data-path benchmarks (ingest, process, freshness) share their events, their Kafka
// broker and their throwaway tenant; what each one measures is in its own file.

// SampleEvents are n events of about 300 bytes each on the wire, with 8 properties of
// mixed types: the event size the targets are stated for. Ids are UUIDv7 of now; session
// ids follow sessionOf, so a caller can group events (the freshness benchmark gives each
// request its own session).
func SampleEvents(n int, now time.Time, sessionOf func(i int) string) []events.Event {
	evs := make([]events.Event, n)
	for i := range evs {
		props, _ := json.Marshal(map[string]any{
			"path": fmt.Sprintf("/p/%04d", i%10000), "ref": "search", "plan": "team", "country": "DE",
			"ms": 120 + i%1000, "items": i % 7, "price": 19.99, "logged_in": i%2 == 0,
		})
		evs[i] = events.Event{
			EventID:    events.NewID(now),
			EventType:  "page_view",
			Timestamp:  now.Add(-time.Second).UTC().Truncate(time.Millisecond),
			ReceivedAt: now.UTC().Truncate(time.Millisecond),
			UserID:     fmt.Sprintf("u-%05d", i%100000),
			SessionID:  sessionOf(i),
			Properties: props,
		}
	}
	return evs
}

// requestBody is the JSON array a client would send for evs: received_at is the
// server's to set, so it is left out.
func requestBody(evs []events.Event) ([]byte, error) {
	type wireEvent struct {
		EventID    string          `json:"event_id"`
		EventType  string          `json:"event_type"`
		Timestamp  string          `json:"timestamp"`
		UserID     string          `json:"user_id"`
		SessionID  string          `json:"session_id"`
		Properties json.RawMessage `json:"properties"`
	}
	in := make([]wireEvent, len(evs))
	for i, e := range evs {
		in[i] = wireEvent{e.EventID, e.EventType, e.Timestamp.Format(time.RFC3339Nano), e.UserID, e.SessionID, e.Properties}
	}
	body, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("encoding a request body: %w", err)
	}
	return body, nil
}

// wireSize is the average size of the events' Kafka record values.
func wireSize(evs []events.Event) (int, error) {
	total := 0
	for _, e := range evs {
		v, err := events.Marshal(e)
		if err != nil {
			return 0, err
		}
		total += len(v)
	}
	return total / max(len(evs), 1), nil
}

// broker is the Kafka the benchmark uses: the platform config's, or a kfake broker in
// this process when there is none.
type broker struct {
	cfg   kafka.Config
	fake  *kfake.Cluster
	admin *kadm.Client
	cl    *kgo.Client
}

// BrokerInProcess is what reports name as the broker when kfake ran in this process.
const BrokerInProcess = "in-process kfake (1 broker)"

func openBroker(cfg *kafka.Config) (*broker, error) {
	b := &broker{}
	if cfg != nil && len(cfg.Brokers) > 0 {
		b.cfg = *cfg
	} else {
		// Retention is applied every second, as a real broker does on its own: without
		// it the broker would keep every event of a run in memory (see ingestTopicConfigs).
		fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": "1000"}))
		if err != nil {
			return nil, fmt.Errorf("starting an in-process Kafka broker: %w", err)
		}
		b.fake = fake
		b.cfg = kafka.Config{Brokers: fake.ListenAddrs()}
	}
	b.cfg.Default()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.cfg.Brokers...), kgo.DialTimeout(b.cfg.DialTimeout.Duration))
	if err != nil {
		b.close()
		return nil, fmt.Errorf("connecting to Kafka at %s: %w", strings.Join(b.cfg.Brokers, ","), err)
	}
	b.cl, b.admin = cl, kadm.NewClient(cl)
	return b, nil
}

// name says which broker it is, for the report.
func (b *broker) name() string {
	if b.fake != nil {
		return BrokerInProcess
	}
	return strings.Join(b.cfg.Brokers, ",")
}

func (b *broker) close() {
	if b.cl != nil {
		b.cl.Close()
	}
	if b.fake != nil {
		b.fake.Close()
	}
}

// createTopic creates the tenant's topic as the operator would, replication 1 (the local
// broker has one).
func (b *broker) createTopic(ctx context.Context, tenant string, partitions int32, configs map[string]*string) error {
	resp, err := b.admin.CreateTopic(ctx, partitions, 1, configs, naming.Topic(tenant))
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("creating the topic of %s: %w", tenant, err)
	}
	return nil
}

func (b *broker) deleteTopic(ctx context.Context, tenant string) error {
	resp, err := b.admin.DeleteTopic(ctx, naming.Topic(tenant))
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("deleting the topic of %s: %w", tenant, err)
	}
	return nil
}

// benchPlan is the plan of the benchmarks' tenant: the default size limits, and a rate
// limit no run reaches, so the limiter is charged on every request but never refuses.
const benchPlan = "bench"

func benchPlatform() *config.Platform {
	p := &config.Platform{Plans: []config.Plan{{
		Name:   benchPlan,
		Ingest: config.IngestLimits{EventsPerSecond: 100_000_000, Burst: 1_000_000_000},
	}}}
	p.Default()
	return p
}

// staticKeys resolves the one ingest key of the benchmark's tenant. The server caches
// lookups (ingest.DefaultKeyCacheTTL) whatever answers them, so PostgreSQL would be asked
// once every few seconds; it is left out so the ingest benchmark needs only Kafka.
type staticKeys struct {
	key, tenant string
}

func (k staticKeys) LookupIngestKey(_ context.Context, plaintext string) (string, bool, error) {
	if plaintext != k.key {
		return "", false, fmt.Errorf("ingest key: %w", metastore.ErrNotFound)
	}
	return k.tenant, false, nil
}

func (k staticKeys) GetTenant(_ context.Context, id string) (metastore.TenantRecord, error) {
	if id != k.tenant {
		return metastore.TenantRecord{}, fmt.Errorf("tenant %s: %w", id, metastore.ErrNotFound)
	}
	return metastore.TenantRecord{ID: id, Plan: benchPlan, Isolation: metastore.IsolationShared}, nil
}

// benchKey is the ingest key of the benchmark's tenant, shaped like the keys Shoal mints
// (the server refuses others without a lookup).
func benchKey(tenant string) string { return metastore.KeyPrefix + "bench_" + tenant }

// runTenant is a tenant name of its own for each run, so runs never share a topic or a
// database.
func runTenant(kind string, now time.Time) string {
	return fmt.Sprintf("bench-%s-%s", kind, strings.ToLower(fmt.Sprintf("%x", now.UnixNano())))
}

// progressf writes a progress line when w is set.
func progressf(w io.Writer, format string, args ...any) {
	if w != nil {
		_, _ = fmt.Fprintf(w, format+"\n", args...)
	}
}

// LoadAverage is the machine's 1-minute load average at the start and end of a run
// (Linux; zeros elsewhere): a figure taken while other work kept the CPUs busy is not
// comparable with one taken on an idle machine.
type LoadAverage struct {
	Start float64 `json:"start"`
	End   float64 `json:"end"`
}

// loadAverage1 reads the 1-minute load average; 0 when it cannot.
func loadAverage1() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return 0
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return 0
	}
	return v
}
