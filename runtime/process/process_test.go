package process

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/runtime/events"
)

func TestRoundTrip(t *testing.T) {
	e := backends
	e.tenant(t, "rt-a", "Standard", 3)
	e.tenant(t, "rt-b", "Extended", 1)
	a, b := testEvents("rt-a", 2500), testEvents("rt-b", 300)
	e.produceEvents(t, "rt-a", a)
	e.produceEvents(t, "rt-b", b)

	opts := e.newOptions("rt")
	pr := start(t, opts)
	e.waitCommitted(t, "rt", naming.Topic("rt-a"))
	e.waitCommitted(t, "rt", naming.Topic("rt-b"))

	objects := 0
	for _, tc := range []struct {
		tenant, class string
		evs           []events.Event
	}{{"rt-a", "Standard", a}, {"rt-b", "Extended", b}} {
		final, unique, raw := e.counts(t, tc.tenant)
		if final != uint64(len(tc.evs)) || unique != uint64(len(tc.evs)) || raw != uint64(len(tc.evs)) {
			t.Errorf("%s: count FINAL %d, uniqExact %d, count %d; want %d", tc.tenant, final, unique, raw, len(tc.evs))
		}
		objs := e.checkLake(t, tc.tenant, tc.class, ids(tc.evs))
		for _, o := range objs {
			if len(o.ids) > opts.BatchMaxRecords || int64(len(o.ids)) != o.last-o.first+1 {
				t.Errorf("lake object %s holds %d events", o.key, len(o.ids))
			}
		}
		objects += len(objs)
		// Nothing is left pending: the metadata of the final commits is empty.
		for p, o := range e.committed(t, "rt", naming.Topic(tc.tenant)) {
			if o.Metadata != writtenMetadata {
				t.Errorf("%s[%d]: commit metadata %q after the last batch, want %q", tc.tenant, p, o.Metadata, writtenMetadata)
			}
		}
	}
	if got := pr.metric(t, "shoal_process_batches_total"); got != float64(objects) {
		t.Errorf("%v batches for %d lake objects: want one object per batch", got, objects)
	}
	if got := pr.metric(t, "shoal_process_rows_inserted_total"); got != float64(len(a)+len(b)) {
		t.Errorf("rows inserted %v, want %d", got, len(a)+len(b))
	}
	if got := pr.metric(t, "shoal_process_failures_total"); got != 0 {
		t.Errorf("%v failures, want none", got)
	}
	if err := pr.stop(); err != nil {
		t.Errorf("stopping: %v", err)
	}
}

func TestQuarantine(t *testing.T) {
	e := backends
	e.tenant(t, "quar", "Standard", 1)
	topic := naming.Topic("quar")
	good := testEvents("quar", 6)
	old := good[0]
	old.EventID, old.Timestamp = "quar-1960", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	wrongType := record(t, topic, testEvents("quar-json", 1)[0])
	wrongType.Headers[0].Value = []byte("application/json")
	raw := func(value string) *kgo.Record {
		r := record(t, topic, good[0])
		r.Value = []byte(value)
		return r
	}
	bad := []struct {
		name   string
		rec    *kgo.Record
		reason string
	}{
		{"not JSON", raw("not json"), "not JSON"},
		{"no event_id", raw(`{"event_type":"x","timestamp":"2026-01-01T00:00:00.000Z","received_at":"2026-01-01T00:00:00.000Z"}`), "event_id is missing"},
		{"content type", wrongType, `unsupported content-type "application/json"`},
		{"before 1970", record(t, topic, old), "outside 1970-01-01 to 2105-12-31"},
		{"empty", raw(""), "empty record value"},
	}
	// Bad records between good ones, all in one partition: offsets are their positions.
	var recs []*kgo.Record
	wantReason := map[int64]string{}
	for i, ev := range good {
		recs = append(recs, record(t, topic, ev))
		if i < len(bad) {
			wantReason[int64(len(recs))] = bad[i].reason
			recs = append(recs, bad[i].rec)
		}
	}
	e.produce(t, recs...)

	opts := e.newOptions("quar")
	opts.Tenant = "quar"
	pr := start(t, opts)
	e.waitCommitted(t, "quar", topic)

	ctx := context.Background()
	rows, err := e.conn.Query(ctx, "SELECT `offset`, `reason`, `topic`, `partition`, `raw` FROM `"+naming.Database("quar")+"`.`quarantine` ORDER BY `offset`")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	got := map[int64]string{}
	for rows.Next() {
		var (
			offset           int64
			reason, tp, body string
			partition        int32
		)
		if err := rows.Scan(&offset, &reason, &tp, &partition, &body); err != nil {
			t.Fatal(err)
		}
		if tp != topic || partition != 0 || body != string(recs[offset].Value) {
			t.Errorf("quarantined offset %d: topic %s, partition %d, raw %q; want %s, 0, %q", offset, tp, partition, body, topic, recs[offset].Value)
		}
		got[offset] = reason
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for offset, want := range wantReason {
		if !strings.Contains(got[offset], want) {
			t.Errorf("offset %d: quarantined with reason %q, want one containing %q", offset, got[offset], want)
		}
	}
	if len(got) != len(wantReason) {
		t.Errorf("%d records quarantined, want %d: %v", len(got), len(wantReason), got)
	}
	if final, _, _ := e.counts(t, "quar"); final != uint64(len(good)) {
		t.Errorf("%d events stored, want %d", final, len(good))
	}
	e.checkLake(t, "quar", "Standard", ids(good))
	if q := pr.metric(t, "shoal_process_rows_quarantined_total"); q != float64(len(bad)) {
		t.Errorf("quarantined metric %v, want %d", q, len(bad))
	}
}

func TestOutage(t *testing.T) {
	e := backends
	for _, tc := range []struct {
		name       string
		stage      string
		stop, back func(t *testing.T)
	}{
		{"clickhouse", stageClickHouse, func(*testing.T) { e.platform.ClickHouse.Stop() }, func(t *testing.T) { e.platform.ClickHouse.Restart(t) }},
		{"lake", stageLake, func(*testing.T) { e.platform.S3.Stop() }, func(*testing.T) { e.platform.S3.Start() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tenant := "out-" + tc.name
			topic := naming.Topic(tenant)
			e.tenant(t, tenant, "Standard", 1)
			before, during := testEvents(tenant, 300), testEvents(tenant+"-down", 300)
			e.produceEvents(t, tenant, before)

			opts := e.newOptions(tenant)
			opts.Tenant = tenant
			pr := start(t, opts)
			e.waitCommitted(t, tenant, topic)

			tc.stop(t)
			stopped := true
			t.Cleanup(func() {
				if stopped {
					tc.back(t)
				}
			})
			e.produceEvents(t, tenant, during)
			eventually(t, 60*time.Second, "failed attempts", func() error {
				if n := pr.metric(t, "shoal_process_failures_total", "stage", tc.stage); n < 3 {
					return fmt.Errorf("%v failures at stage %s", n, tc.stage)
				}
				return nil
			})
			// Nothing was committed past what was stored; the batch being retried is
			// recorded as the commit's metadata.
			c := e.committed(t, tenant, topic)[0]
			if c.At != int64(len(before)) {
				t.Errorf("committed offset %d while %s is down, want %d", c.At, tc.name, len(before))
			}
			if in, ok, err := parseIntent(c.Metadata); err != nil || !ok || in.first != int64(len(before)) {
				t.Errorf("commit metadata %q while %s is down: want the range of the batch being retried", c.Metadata, tc.name)
			}

			tc.back(t)
			stopped = false
			e.waitCommitted(t, tenant, topic)
			all := append(before, during...)
			if final, unique, _ := e.counts(t, tenant); final != uint64(len(all)) || unique != uint64(len(all)) {
				t.Errorf("count FINAL %d, uniqExact %d; want %d", final, unique, len(all))
			}
			e.checkLake(t, tenant, "Standard", ids(all))
		})
	}
}

// TestRedeliveryAfterCrash: a batch written but not committed is replayed by the next
// owner, cut the same way, and skipped as stored, whether the events' ids are the
// clients' or were assigned at ingest (which the processor otherwise does not look up).
func TestRedeliveryAfterCrash(t *testing.T) {
	for _, ids := range []string{"client", "assigned"} {
		t.Run(ids, func(t *testing.T) { testRedeliveryAfterCrash(t, "crash-"+ids, ids == "assigned") })
	}
}

func testRedeliveryAfterCrash(t *testing.T, tenant string, idsAssigned bool) {
	e := backends
	topic := naming.Topic(tenant)
	e.tenant(t, tenant, "Compliance", 1)
	evs := testEvents(tenant, 1000)
	if idsAssigned {
		evs = assigned(evs)
	}
	e.produceEvents(t, tenant, evs)

	// The first processor writes a batch and dies before committing it.
	var mu sync.Mutex
	var crashed intent
	opts := e.newOptions(tenant)
	opts.Tenant = tenant
	opts.BatchMaxRecords = 300
	opts.beforeCommit = func(written []*batch) error {
		mu.Lock()
		defer mu.Unlock()
		crashed = intent{written[0].first(), written[0].last()}
		return errCrash
	}
	first := start(t, opts)
	if err := <-first.done; !errors.Is(err, errCrash) {
		t.Fatalf("first processor ended with %v, want the crash", err)
	}
	close(first.done)
	mu.Lock()
	defer mu.Unlock()
	c := e.committed(t, tenant, topic)[0]
	if c.At != crashed.first || c.Metadata != crashed.metadata() {
		t.Fatalf("after the crash: committed %d with metadata %q, want %d with %q", c.At, c.Metadata, crashed.first, crashed.metadata())
	}
	if final, _, _ := e.counts(t, tenant); final != uint64(crashed.last-crashed.first+1) {
		t.Fatalf("after the crash: %d events stored, want the crashed batch's %d", final, crashed.last-crashed.first+1)
	}

	// The second one, with other batch limits, replays the batch exactly, then goes on.
	opts = e.newOptions(tenant)
	opts.Tenant = tenant
	opts.BatchMaxRecords = 400
	second := start(t, opts)
	e.waitCommitted(t, tenant, topic)
	// The replayed batch was skipped as stored: not one row twice, even before merges,
	// which is what keeps a materialized view on the table exact.
	final, unique, raw := e.counts(t, tenant)
	if final != uint64(len(evs)) || unique != uint64(len(evs)) || raw != uint64(len(evs)) {
		t.Errorf("count FINAL %d, uniqExact %d, count %d; want %d", final, unique, raw, len(evs))
	}
	replayed := int(crashed.last - crashed.first + 1)
	if got := second.metric(t, "shoal_process_rows_inserted_total"); got != float64(len(evs)-replayed) {
		t.Errorf("second processor inserted %v rows, want %d: all but the crashed batch", got, len(evs)-replayed)
	}
	if got := second.metric(t, "shoal_process_rows_duplicate_total"); got != float64(replayed) {
		t.Errorf("second processor skipped %v rows as stored, want the crashed batch's %d", got, replayed)
	}
	objs := e.checkLake(t, tenant, "Compliance", ids(evs))
	if len(objs) == 0 || objs[0].first != crashed.first || objs[0].last != crashed.last {
		t.Errorf("first lake object %+v, want the crashed batch's range %+v rewritten", objs[0], crashed)
	}
}

func TestDedicatedTenant(t *testing.T) {
	e := backends
	e.tenant(t, "ded-a", "Standard", 2)
	e.tenant(t, "ded-b", "Extended", 1)
	if err := e.store.UpsertTenant(context.Background(), metastore.TenantRecord{
		ID: "ded-a", Plan: "starter", Isolation: metastore.IsolationDedicated, LakeClass: "Standard",
	}); err != nil {
		t.Fatal(err)
	}
	a, b := testEvents("ded-a", 400), testEvents("ded-b", 100)
	e.produceEvents(t, "ded-a", a)
	e.produceEvents(t, "ded-b", b)

	// ded-a's own processor, in its own group, and the shared one.
	opts := e.newOptions("")
	opts.Tenant = "ded-a"
	own := start(t, opts)
	ownGroup := own.p.opts.Group
	if ownGroup != DefaultGroup+"-ded-a" {
		t.Errorf("group %q, want %q", ownGroup, DefaultGroup+"-ded-a")
	}
	shared := start(t, e.newOptions("ded-shared"))

	e.waitCommitted(t, ownGroup, naming.Topic("ded-a"))
	e.waitCommitted(t, "ded-shared", naming.Topic("ded-b"))
	eventually(t, 30*time.Second, "the shared processor leaving ded-a alone", func() error {
		shared.p.mu.Lock()
		defer shared.p.mu.Unlock()
		if !shared.p.skipped[naming.Topic("ded-a")] {
			return errors.New("not yet")
		}
		return nil
	})
	if got := e.committed(t, ownGroup, naming.Topic("ded-b")); len(got) != 0 {
		t.Errorf("ded-a's processor committed offsets of ded-b: %v", got)
	}
	if got := e.committed(t, "ded-shared", naming.Topic("ded-a")); len(got) != 0 {
		t.Errorf("the shared processor committed offsets of the Dedicated ded-a: %v", got)
	}
	for _, tc := range []struct {
		tenant, class string
		evs           []events.Event
	}{{"ded-a", "Standard", a}, {"ded-b", "Extended", b}} {
		if final, _, _ := e.counts(t, tc.tenant); final != uint64(len(tc.evs)) {
			t.Errorf("%s: %d events, want %d", tc.tenant, final, len(tc.evs))
		}
		e.checkLake(t, tc.tenant, tc.class, ids(tc.evs))
	}
}

func TestGracefulShutdown(t *testing.T) {
	e := backends
	tenant := "stop"
	topic := naming.Topic(tenant)
	e.tenant(t, tenant, "Standard", 1)
	evs := testEvents(tenant, 50)
	e.produceEvents(t, tenant, evs)

	// Batches never fill up or age: only the shutdown writes them.
	opts := e.newOptions(tenant)
	opts.Tenant = tenant
	opts.BatchMaxWait = time.Hour
	opts.BatchMaxRecords = 10000
	pr := start(t, opts)
	eventually(t, 30*time.Second, "records buffered", func() error {
		if n := pr.metric(t, "shoal_process_buffered_records"); n != float64(len(evs)) {
			return fmt.Errorf("%v records buffered", n)
		}
		return nil
	})
	if got := e.committed(t, tenant, topic); len(got) != 0 {
		t.Fatalf("committed before the shutdown: %v", got)
	}
	if err := pr.stop(); err != nil {
		t.Fatalf("stopping: %v", err)
	}
	if c := e.committed(t, tenant, topic)[0]; c.At != int64(len(evs)) || c.Metadata != writtenMetadata {
		t.Errorf("after the shutdown: committed %d with metadata %q, want %d", c.At, c.Metadata, len(evs))
	}
	if final, _, _ := e.counts(t, tenant); final != uint64(len(evs)) {
		t.Errorf("%d events stored, want %d", final, len(evs))
	}
	e.checkLake(t, tenant, "Standard", ids(evs))
	// The member left the group: nothing is assigned any more.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	groups, err := e.kadm.DescribeGroups(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	if g := groups[tenant]; len(g.Members) != 0 {
		t.Errorf("group %s still has members %v after the shutdown", tenant, g.Members)
	}
}

func TestRebalance(t *testing.T) {
	e := backends
	tenant := "reb"
	topic := naming.Topic(tenant)
	e.tenant(t, tenant, "Standard", 4)
	evs := testEvents(tenant, 3000)
	e.produceEvents(t, tenant, evs[:1000])

	// A second member joins while the first is busy, then the first leaves: partitions
	// move both ways with records buffered and batches in flight.
	first := start(t, e.newOptions(tenant))
	eventually(t, 30*time.Second, "a first commit", func() error {
		if len(e.committed(t, tenant, topic)) == 0 {
			return errors.New("nothing committed yet")
		}
		return nil
	})
	second := start(t, e.newOptions(tenant))
	eventually(t, 30*time.Second, "partitions assigned to the second member", func() error {
		second.p.mu.Lock()
		defer second.p.mu.Unlock()
		if len(second.p.parts) == 0 {
			return errors.New("none yet")
		}
		return nil
	})
	e.produceEvents(t, tenant, evs[1000:2000])
	eventually(t, 30*time.Second, "the second member writing", func() error {
		if n := second.metric(t, "shoal_process_batches_total"); n == 0 {
			return errors.New("no batch from the second member yet")
		}
		return nil
	})
	if err := first.stop(); err != nil {
		t.Fatalf("stopping the first member: %v", err)
	}
	e.produceEvents(t, tenant, evs[2000:])
	e.waitCommitted(t, tenant, topic)

	if final, unique, _ := e.counts(t, tenant); final != uint64(len(evs)) || unique != uint64(len(evs)) {
		t.Errorf("count FINAL %d, uniqExact %d; want %d", final, unique, len(evs))
	}
	e.checkLake(t, tenant, "Standard", ids(evs))
}

// slowWarehouse takes delay for every insert, as a loaded ClickHouse would.
type slowWarehouse struct {
	Warehouse
	delay time.Duration
}

func (w slowWarehouse) InsertEvents(ctx context.Context, db string, evs []events.Event, lookupAll bool) (int, error) {
	select {
	case <-time.After(w.delay):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return w.Warehouse.InsertEvents(ctx, db, evs, lookupAll)
}

// TestBackpressure: when batches are written slower than records are fetched, a partition
// stops being fetched once it holds two batches, so a backlog is not read into memory
// whole; everything is still stored.
func TestBackpressure(t *testing.T) {
	e := backends
	const tenant = "bp"
	e.tenant(t, tenant, "Standard", 2)
	evs := testEvents(tenant, 20000)
	// Small produce requests make small record batches, so a fetch can stop at its byte
	// limit (a broker returns at least one whole record batch).
	for i := 0; i < len(evs); i += 100 {
		e.produceEvents(t, tenant, evs[i:i+100])
	}

	opts := e.newOptions(tenant)
	opts.Tenant = tenant
	// A fetch (16 KiB compressed, ~200 records here) brings more than a batch of 50
	// records, so without a bound every cycle would buffer more.
	opts.BatchMaxRecords = 50
	opts.KafkaOptions = append(opts.KafkaOptions, kgo.FetchMaxBytes(16<<10))
	opts.Warehouse = slowWarehouse{Warehouse: opts.Warehouse, delay: 20 * time.Millisecond}
	var most atomic.Int64
	pr := start(t, opts)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if n := int64(pr.metric(t, "shoal_process_buffered_records")); n > most.Load() {
				most.Store(n)
			}
		}
	}()
	e.waitCommitted(t, tenant, naming.Topic(tenant))
	close(stop)
	<-sampled

	if most.Load() == 0 {
		t.Fatal("the buffered-records gauge never moved")
	}
	// Two batches a partition plus one fetch is about 600; the backlog is 20000.
	if limit := int64(len(evs) / 8); most.Load() > limit {
		t.Errorf("%d records buffered at most, want at most %d of the %d produced", most.Load(), limit, len(evs))
	}
	if final, unique, raw := e.counts(t, tenant); final != uint64(len(evs)) || unique != final || raw != final {
		t.Errorf("count FINAL %d, uniqExact %d, count %d; want %d", final, unique, raw, len(evs))
	}
	e.checkLake(t, tenant, "Standard", ids(evs))
}

// countingWarehouse counts the events each insert has looked up in the table.
type countingWarehouse struct {
	Warehouse
	looked *atomic.Int64
}

func (w countingWarehouse) InsertEvents(ctx context.Context, db string, evs []events.Event, lookupAll bool) (int, error) {
	n, err := w.Warehouse.InsertEvents(ctx, db, evs, lookupAll)
	if err == nil {
		for i := range evs {
			if lookupAll || !evs[i].IDAssigned {
				w.looked.Add(1)
			}
		}
	}
	return n, err
}

// TestLookupOnlyWhereStorable: events whose ids ingest assigned are looked up only where
// they may be stored already: a partition whose commit the processor did not write (a new
// group, an offset set back by hand) up to the end of the log it found. Client ids are
// always looked up.
func TestLookupOnlyWhereStorable(t *testing.T) {
	e := backends
	const tenant = "lookup"
	topic := naming.Topic(tenant)
	e.tenant(t, tenant, "Standard", 1)
	backlog, later, clients := assigned(testEvents(tenant, 400)), assigned(testEvents(tenant+"-later", 300)), testEvents(tenant+"-client", 100)
	e.produceEvents(t, tenant, backlog)

	run := func() (*processor, *atomic.Int64) {
		opts := e.newOptions(tenant)
		opts.Tenant = tenant
		looked := &atomic.Int64{}
		opts.Warehouse = countingWarehouse{Warehouse: opts.Warehouse, looked: looked}
		return start(t, opts), looked
	}
	first, looked := run()
	e.waitCommitted(t, tenant, topic)
	// A new group cannot know nothing is stored: the backlog is looked up.
	if n := looked.Load(); n != int64(len(backlog)) {
		t.Errorf("new group: %d events looked up, want the backlog's %d", n, len(backlog))
	}
	e.produceEvents(t, tenant, later)
	e.produceEvents(t, tenant, clients)
	e.waitCommitted(t, tenant, topic)
	if n := looked.Load() - int64(len(backlog)); n != int64(len(clients)) {
		t.Errorf("after the backlog: %d events looked up, want only the %d with client ids", n, len(clients))
	}
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}

	// An operator sets the offset back by hand: the commit metadata is gone, so the next
	// processor looks everything up and stores nothing twice.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reset := kadm.Offsets{}
	reset.Add(kadm.Offset{Topic: topic, Partition: 0, At: 0, LeaderEpoch: -1})
	if _, err := e.kadm.CommitOffsets(ctx, tenant, reset); err != nil {
		t.Fatal(err)
	}
	second, looked := run()
	e.waitCommitted(t, tenant, topic)
	total := len(backlog) + len(later) + len(clients)
	if n := looked.Load(); n != int64(total) {
		t.Errorf("after the reset: %d events looked up, want all %d", n, total)
	}
	if got := second.metric(t, "shoal_process_rows_duplicate_total"); got != float64(total) {
		t.Errorf("after the reset: %v events skipped as stored, want %d", got, total)
	}
	if final, unique, raw := e.counts(t, tenant); final != uint64(total) || unique != final || raw != final {
		t.Errorf("count FINAL %d, uniqExact %d, count %d; want %d", final, unique, raw, total)
	}
}
