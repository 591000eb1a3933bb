package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/kafka"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/internal/testbackends"
	"github.com/shoal-dev/shoal/runtime/ingest"
)

// shared are the backends most tests use; tests that stop a backend start their own.
var shared struct {
	kafka    *testbackends.Kafka
	postgres *testbackends.Postgres
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	suite := testbackends.NewSuite("ingest")
	defer suite.Close()
	if err := suite.Do(func(tb testing.TB) {
		shared.kafka = testbackends.StartKafka(tb)
		shared.postgres = testbackends.StartPostgres(tb)
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// clock is a settable clock, so cache expiry and token refill happen when a test says.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now().UTC().Truncate(time.Millisecond)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Plans of the test catalog.
var testPlans = []config.Plan{
	{Name: "free"},
	{Name: "small", Ingest: config.IngestLimits{
		EventsPerSecond: 10, Burst: 20,
		MaxEventBytes: 512, MaxRequestBytes: 2048, MaxEventsPerRequest: 8,
	}},
	{Name: "tight", Ingest: config.IngestLimits{EventsPerSecond: 1, Burst: 2}},
	{Name: "unlimited", Ingest: config.IngestLimits{EventsPerSecond: 10_000_000, Burst: 100_000_000}},
}

type envOptions struct {
	kafka      *testbackends.Kafka
	postgres   *testbackends.Postgres
	ackTimeout time.Duration
}

// env is an ingest server over real backends, with the handles a test needs.
type env struct {
	t        testing.TB
	url      string
	brokers  []string
	store    *metastore.Store
	producer *ingest.KafkaProducer
	registry *prometheus.Registry
	clock    *clock
	admin    *kadm.Client
	client   *http.Client
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	if o.kafka == nil {
		o.kafka = shared.kafka
	}
	if o.postgres == nil {
		o.postgres = shared.postgres
	}
	ctx := testContext(t)
	store, err := metastore.Open(ctx, metastore.Config{DSN: o.postgres.CreateDatabase(t, databaseName(t))})
	if err != nil {
		t.Fatalf("opening the metastore: %v", err)
	}
	t.Cleanup(store.Close)
	producer, err := ingest.NewKafkaProducer(kafka.Config{Brokers: o.kafka.Brokers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	adminClient, err := kgo.NewClient(kgo.SeedBrokers(o.kafka.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(adminClient.Close)

	e := &env{
		t:        t,
		brokers:  o.kafka.Brokers,
		store:    store,
		producer: producer,
		registry: prometheus.NewRegistry(),
		clock:    newClock(),
		admin:    kadm.NewClient(adminClient),
	}
	platform := &config.Platform{Plans: append([]config.Plan(nil), testPlans...)}
	platform.Default()
	srv, err := ingest.New(ingest.Options{
		Platform:   platform,
		Keys:       store,
		Producer:   producer,
		Registry:   e.registry,
		Now:        e.clock.Now,
		AckTimeout: o.ackTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	e.url = hs.URL
	e.client = hs.Client()
	return e
}

// databaseName is a new database for the test: named after it, and numbered so -count
// and benchmarks (which run their function several times) get a fresh one each time.
func databaseName(t testing.TB) string {
	name := strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
	return fmt.Sprintf("%.40s_%s", name, strconv.FormatInt(time.Now().UnixNano(), 36))
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// addTenant creates the tenant in the metastore and its topic in Kafka, as the operator
// would, and returns its ingest key.
func (e *env) addTenant(name, plan string) string {
	e.t.Helper()
	ctx := testContext(e.t)
	if err := e.store.UpsertTenant(ctx, metastore.TenantRecord{ID: name, Plan: plan, Isolation: metastore.IsolationShared}); err != nil {
		e.t.Fatal(err)
	}
	key, _, err := e.store.EnsureIngestKey(ctx, name, "")
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := e.admin.CreateTopic(ctx, 3, 1, nil, naming.Topic(name))
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		e.t.Fatalf("creating the topic of %s: %v", name, err)
	}
	// Tests share the broker; each one's topics go with it.
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := e.admin.DeleteTopic(ctx, naming.Topic(name)); err != nil {
			e.t.Logf("deleting the topic of %s: %v", name, err)
		}
	})
	return key
}

// response is an answer, read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) result(t testing.TB) ingest.Result {
	t.Helper()
	var res ingest.Result
	if err := json.Unmarshal(r.body, &res); err != nil {
		t.Fatalf("decoding the result %s: %v", r.body, err)
	}
	return res
}

// problem is an application/problem+json body.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Error  string `json:"error"`
}

func (r response) problem(t testing.TB) problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json; body %s", ct, r.body)
	}
	var p problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("decoding the problem %s: %v", r.body, err)
	}
	if p.Status != r.status || p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Errorf("incomplete problem for status %d: %+v", r.status, p)
	}
	return p
}

// request is one ingest request to send.
type request struct {
	key       string
	keyHeader string // Authorization (Bearer) when empty
	body      io.Reader
	headers   map[string]string
}

func (e *env) do(req request) response {
	e.t.Helper()
	httpReq, err := http.NewRequest(http.MethodPost, e.url+ingest.Path, req.body)
	if err != nil {
		e.t.Fatal(err)
	}
	httpReq.Header.Set("Content-Type", "application/json")
	if req.key != "" {
		switch req.keyHeader {
		case "":
			httpReq.Header.Set("Authorization", "Bearer "+req.key)
		default:
			httpReq.Header.Set(req.keyHeader, req.key)
		}
	}
	for k, v := range req.headers {
		httpReq.Header.Set(k, v)
	}
	return e.send(httpReq)
}

func (e *env) send(req *http.Request) response {
	e.t.Helper()
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

func (e *env) get(path string) response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.url+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.send(req)
}

// post sends events as a JSON array with the key as a Bearer token.
func (e *env) post(key string, evs ...map[string]any) response {
	e.t.Helper()
	return e.do(request{key: key, body: bytes.NewReader(jsonArray(e.t, evs))})
}

func jsonArray(t testing.TB, evs []map[string]any) []byte {
	t.Helper()
	if evs == nil {
		evs = []map[string]any{}
	}
	body, err := json.Marshal(evs)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// event is a valid event at the env's current time.
func (e *env) event(eventType string, props map[string]any) map[string]any {
	ev := map[string]any{
		"event_type": eventType,
		"timestamp":  e.clock.Now().Add(-time.Second).Format(time.RFC3339Nano),
		"user_id":    "u-1",
	}
	if props != nil {
		ev["properties"] = props
	}
	return ev
}

// readTopic reads every record the tenant's topic holds now.
func (e *env) readTopic(tenant string) []*kgo.Record {
	e.t.Helper()
	ctx := testContext(e.t)
	topic := naming.Topic(tenant)
	ends, err := e.admin.ListEndOffsets(ctx, topic)
	if err != nil {
		e.t.Fatalf("listing end offsets of %s: %v", topic, err)
	}
	want := int64(0)
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	if want == 0 {
		return nil
	}
	consumer, err := kgo.NewClient(
		kgo.SeedBrokers(e.brokers...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		e.t.Fatal(err)
	}
	defer consumer.Close()
	var records []*kgo.Record
	for int64(len(records)) < want {
		fetches := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			e.t.Fatalf("read %d of the %d records of %s: %v", len(records), want, topic, err)
		}
		fetches.EachError(func(_ string, _ int32, err error) { e.t.Logf("fetch: %v", err) })
		records = append(records, fetches.Records()...)
	}
	return records
}
