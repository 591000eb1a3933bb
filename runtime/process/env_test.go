package process

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/lake"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/internal/testbackends"
	"github.com/shoal-dev/shoal/internal/testplatform"
	"github.com/shoal-dev/shoal/runtime/events"
	"github.com/shoal-dev/shoal/runtime/ingest"
)

// backends are shared by the package's tests; each test uses its own tenants and group.
var backends *testEnv

type testEnv struct {
	platform *testplatform.Platform
	admin    *clickhouse.Client
	conn     driver.Conn // admin connection for queries
	lake     *lake.Lake
	s3       *s3.Client
	bucket   string
	store    *metastore.Store
	kadm     *kadm.Client
	kcl      *kgo.Client
}

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	suite := testbackends.NewSuite("process")
	defer suite.Close()
	if err := suite.Do(func(tb testing.TB) { backends = startEnv(tb) }); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func startEnv(tb testing.TB) *testEnv {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := testplatform.Start(tb, false)
	e := &testEnv{platform: p, bucket: "shoal-lake"}

	var err error
	e.admin, err = clickhouse.New(ctx, e.clickHouseConfig())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = e.admin.Close() })
	e.conn, err = ch.Open(&ch.Options{
		Addr: []string{p.ClickHouse.Addr},
		Auth: ch.Auth{Username: p.ClickHouse.User, Password: p.ClickHouse.Password},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = e.conn.Close() })

	e.lake, err = lake.New(ctx, e.lakeConfig())
	if err != nil {
		tb.Fatal(err)
	}
	if err := e.lake.EnsureBucket(ctx); err != nil {
		tb.Fatal(err)
	}
	e.s3 = s3.New(s3.Options{
		Region:       p.S3.Region,
		BaseEndpoint: aws.String(p.S3.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(p.S3.AccessKey, p.S3.SecretKey, ""),
	})

	e.store, err = metastore.Open(ctx, metastore.Config{DSN: p.MetastoreDSN})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(e.store.Close)

	e.kcl, err = kgo.NewClient(kgo.SeedBrokers(p.Kafka.Brokers...))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(e.kcl.Close)
	e.kadm = kadm.NewClient(e.kcl)
	return e
}

func (e *testEnv) clickHouseConfig() clickhouse.Config {
	c := e.platform.ClickHouse
	return clickhouse.Config{
		Addr: c.Addr, User: c.User, Password: c.Password, UsersDir: c.UsersDir,
		DialTimeout: metav1.Duration{Duration: 2 * time.Second},
	}
}

func (e *testEnv) lakeConfig() lake.Config {
	s := e.platform.S3
	return lake.Config{
		Endpoint: s.Endpoint, Region: s.Region, Bucket: e.bucket, PathStyle: true,
		AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey,
	}
}

// tenant provisions what the operator would: database, metastore row and topic.
func (e *testEnv) tenant(t testing.TB, name, class string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.admin.EnsureTenantDatabase(ctx, clickhouse.TenantDB{
		Database: naming.Database(name), User: naming.ClickHouseUser(name), Password: "pw-" + name,
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.UpsertTenant(ctx, metastore.TenantRecord{
		ID: name, Plan: "starter", Isolation: metastore.IsolationShared, LakeClass: class,
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := e.kadm.CreateTopic(ctx, partitions, 1, nil, naming.Topic(name))
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating topic of %s: %v", name, err)
	}
	// Removed at the end so a later test's processor, which subscribes to every tenant
	// topic, does not consume it, and a repeated test starts empty.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := e.kadm.DeleteTopic(ctx, naming.Topic(name)); err != nil {
			t.Errorf("deleting topic of %s: %v", name, err)
		}
		if err := e.admin.DropTenantDatabase(ctx, clickhouse.TenantDB{Database: naming.Database(name), User: naming.ClickHouseUser(name)}); err != nil {
			t.Errorf("dropping database of %s: %v", name, err)
		}
		if _, err := e.lake.DeleteTenantPrefix(ctx, naming.LakePrefix(class, name)); err != nil {
			t.Errorf("deleting lake prefix of %s: %v", name, err)
		}
	})
}

// processor is a processor running in the background.
type processor struct {
	p      *Processor
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

// newOptions are the options of a test processor: small batches and fast retries.
func (e *testEnv) newOptions(group string) Options {
	wh, err := OpenClickHouse(context.Background(), e.clickHouseConfig())
	if err != nil {
		panic(err)
	}
	return Options{
		Brokers:         e.platform.Kafka.Brokers,
		Group:           group,
		BatchMaxRecords: 200,
		BatchMaxWait:    200 * time.Millisecond,
		Warehouse:       wh,
		Lake:            e.lake,
		Tenants:         NewTenantCache(e.store, 0),
		RetryMin:        50 * time.Millisecond,
		RetryMax:        500 * time.Millisecond,
		SinkTimeout:     5 * time.Second,
		TopicRefresh:    500 * time.Millisecond,
		Logger:          slog.New(slog.NewTextHandler(testWriter{}, &slog.HandlerOptions{Level: slog.LevelInfo})),
		KafkaOptions:    []kgo.Opt{kgo.WithLogger(kgo.BasicLogger(testWriter{}, kgo.LogLevelWarn, nil))},
	}
}

// testWriter sends logs to stderr only when asked for with -v, keeping failures readable.
type testWriter struct{}

func (testWriter) Write(b []byte) (int, error) {
	if testing.Verbose() {
		return os.Stderr.Write(b)
	}
	return len(b), nil
}

func start(t testing.TB, opts Options) *processor {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr := &processor{p: p, reg: reg, cancel: cancel, done: make(chan error, 1)}
	t.Cleanup(func() {
		_ = pr.stop()
		// A repeated test must not find this run's commits.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = backends.kadm.DeleteGroup(ctx, p.opts.Group)
	})
	go func() {
		err := p.Run(ctx)
		if err != nil && !errors.Is(err, errCrash) {
			fmt.Fprintln(os.Stderr, "processor stopped:", err)
		}
		pr.done <- err
	}()
	return pr
}

// stop ends the processor gracefully and returns Run's error.
func (pr *processor) stop() error {
	pr.cancel()
	err, ok := <-pr.done
	if !ok {
		return nil
	}
	close(pr.done)
	return err
}

// metric reads a counter or gauge, summed over label values.
func (pr *processor) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	families, err := pr.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// eventTime is the Kafka timestamp of produced records: it decides the lake's dt and hr.
var eventTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// testEvents makes n events of about 300 bytes with 8 properties, ids prefix-0 up.
func testEvents(prefix string, n int) []events.Event {
	evs := make([]events.Event, n)
	for i := range evs {
		evs[i] = events.Event{
			EventID:    fmt.Sprintf("%s-%07d", prefix, i),
			EventType:  []string{"page_view", "click", "signup"}[i%3],
			Timestamp:  eventTime.Add(time.Duration(i) * time.Millisecond),
			ReceivedAt: eventTime.Add(time.Duration(i)*time.Millisecond + time.Second),
			UserID:     fmt.Sprintf("user-%d", i%97),
			SessionID:  fmt.Sprintf("session-%d", i%31),
			Properties: json.RawMessage(fmt.Sprintf(
				`{"path":"/products/%d","referrer":"https://example.com/","browser":"firefox","os":"linux","country":"NZ","amount":%d.5,"plan":"pro","ab":"b"}`, i%500, i%1000)),
		}
	}
	return evs
}

// record is ev as ingest writes it.
func record(t testing.TB, topic string, ev events.Event) *kgo.Record {
	t.Helper()
	value, err := events.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{
		Topic: topic, Key: []byte(ev.EventID), Value: value, Timestamp: eventTime,
		Headers: ingest.RecordHeaders(ev.IDAssigned),
	}
}

// assigned marks evs as having ids ingest assigned.
func assigned(evs []events.Event) []events.Event {
	for i := range evs {
		evs[i].IDAssigned = true
	}
	return evs
}

// produce writes records and waits for the broker's acks.
func (e *testEnv) produce(t testing.TB, records ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.platform.Kafka.Brokers...), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
}

func (e *testEnv) produceEvents(t testing.TB, tenant string, evs []events.Event) {
	t.Helper()
	recs := make([]*kgo.Record, len(evs))
	for i, ev := range evs {
		recs[i] = record(t, naming.Topic(tenant), ev)
	}
	e.produce(t, recs...)
}

// endOffsets are the high watermarks of a topic's partitions.
func (e *testEnv) endOffsets(t testing.TB, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := e.kadm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// committed are the group's committed offsets of a topic, with their metadata.
func (e *testEnv) committed(t testing.TB, group, topic string) map[int32]kadm.Offset {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e.kadm.FetchOffsets(ctx, group)
	out := map[int32]kadm.Offset{}
	if errors.Is(err, kerr.GroupIDNotFound) {
		return out // nothing committed yet
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil && o.At >= 0 {
			out[o.Partition] = o.Offset
		}
	})
	return out
}

// waitCommitted waits until the group committed the topic's end offsets.
func (e *testEnv) waitCommitted(t testing.TB, group, topic string) {
	t.Helper()
	ends := e.endOffsets(t, topic)
	eventually(t, 60*time.Second, "offsets of "+topic+" committed to the end", func() error {
		got := e.committed(t, group, topic)
		for p, end := range ends {
			if got[p].At != end {
				return fmt.Errorf("partition %d: committed %d, end %d", p, got[p].At, end)
			}
		}
		return nil
	})
}

// eventually polls f every 100 ms until it returns nil, failing after timeout.
func eventually(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// counts are the exact event count of a tenant (FINAL collapses redelivered copies),
// the distinct event ids, and the raw row count.
func (e *testEnv) counts(t testing.TB, tenant string) (final, unique, raw uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := naming.Database(tenant)
	if err := e.conn.QueryRow(ctx, "SELECT count() FROM `"+db+"`.`events` FINAL").Scan(&final); err != nil {
		t.Fatal(err)
	}
	if err := e.conn.QueryRow(ctx, "SELECT uniqExact(event_id), count() FROM `"+db+"`.`events`").Scan(&unique, &raw); err != nil {
		t.Fatal(err)
	}
	return final, unique, raw
}

// lakeObject is one batch object of the lake.
type lakeObject struct {
	key         string
	partition   int32
	first, last int64
	ids         []string
}

var lakeKeyPattern = regexp.MustCompile(`^(.*)dt=(\d{4}-\d{2}-\d{2})/hr=(\d{2})/(.+)-p(\d+)-(\d+)-(\d+)\.ndjson\.gz$`)

// lakeObjects lists and reads every object under prefix, straight through S3.
func (e *testEnv) lakeObjects(t testing.TB, prefix string) []lakeObject {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []lakeObject
	pages := s3.NewListObjectsV2Paginator(e.s3, &s3.ListObjectsV2Input{Bucket: &e.bucket, Prefix: &prefix})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range page.Contents {
			key := aws.ToString(obj.Key)
			if key == lake.MarkerKey(prefix) {
				continue
			}
			m := lakeKeyPattern.FindStringSubmatch(key)
			if m == nil {
				t.Fatalf("lake key %s does not have the batch shape", key)
			}
			p, _ := strconv.Atoi(m[5])
			first, _ := strconv.ParseInt(m[6], 10, 64)
			last, _ := strconv.ParseInt(m[7], 10, 64)
			body, err := e.lake.GetObject(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, lakeObject{key: key, partition: int32(p), first: first, last: last, ids: readNDJSON(t, key, body)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].partition != out[j].partition {
			return out[i].partition < out[j].partition
		}
		return out[i].first < out[j].first
	})
	return out
}

// readNDJSON gunzips an object and returns the event ids of its lines, checking each line
// is an event.
func readNDJSON(t testing.TB, key string, body []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	var ids []string
	for line := range bytes.Lines(data) {
		ev, err := events.Unmarshal(bytes.TrimSuffix(line, []byte("\n")))
		if err != nil {
			t.Fatalf("%s: line %q: %v", key, line, err)
		}
		ids = append(ids, ev.EventID)
	}
	return ids
}

// checkLake checks a tenant's lake objects: each at the expected place, together covering
// every offset of the topic once (no two overlap: a replay overwrote instead of adding),
// and holding exactly the wanted event ids.
func (e *testEnv) checkLake(t testing.TB, tenant, class string, want []string) []lakeObject {
	t.Helper()
	prefix := naming.LakePrefix(class, tenant)
	objs := e.lakeObjects(t, prefix)
	next := map[int32]int64{}
	var got []string
	for _, o := range objs {
		wantKey := LakeKey(prefix, naming.Topic(tenant), o.partition, o.first, o.last, eventTime)
		if o.key != wantKey {
			t.Errorf("lake object %s, want it at %s", o.key, wantKey)
		}
		if o.first < next[o.partition] {
			t.Errorf("lake object %s overlaps the one before (which ended at %d)", o.key, next[o.partition]-1)
		}
		next[o.partition] = o.last + 1
		got = append(got, o.ids...)
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("lake of %s holds %d event ids, want %d (first difference: %s)", tenant, len(got), len(want), firstDiff(got, want))
	}
	return objs
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("%q vs %q", a[i], b[i])
		}
	}
	return "one is a prefix of the other"
}

func ids(evs []events.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.EventID
	}
	return out
}

var errCrash = errors.New("crashed before committing")
