package e2e_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/internal/testplatform"
)

// backends are the servers TestMain started; the crash test restarts ClickHouse.
var backends *testplatform.Platform

const (
	// crashTenantPrefix starts the crash test's tenant name; the seed ends it, so a
	// repeated run (-count) does not find the data of the one before.
	crashTenantPrefix = "crash-"
	// crashEvents are sent in requests of crashRequest by crashSenders at once.
	crashEvents  = 100_000
	crashRequest = 500
	crashSenders = 4
	// crashRate paces the requests (events per second), so the stream lasts while the
	// processor is disrupted; the last crashReserve requests wait for the last disruption.
	crashRate    = 2500
	crashReserve = 20
	// crashKills is how often the processor is killed (-9) while events flow.
	crashKills = 5
	// crashSeedEnv repeats a run's random moments: set it to the seed the test logged.
	crashSeedEnv = "SHOAL_CRASH_SEED"
)

// TestCrashSafety sends 100k events through `shoal ingest` while `shoal process`, a
// separate process, is killed with SIGKILL at random moments and started again, and
// ClickHouse is stopped and started once. Ingest keeps acknowledging throughout. Then
// ClickHouse must hold exactly the acknowledged events (deduplicated, none missing, none
// extra) and the lake each of them once, in objects whose keys name disjoint offset
// ranges holding exactly the records of those ranges.
func TestCrashSafety(t *testing.T) {
	began := time.Now()
	if _, err := os.Stat(filepath.Join(env.Bin, "shoal")); err != nil {
		t.Fatal("shoal is not built: run `make build` (make test does)")
	}
	if dataPathPlatform == nil || backends == nil {
		t.Fatal("TestMain did not set the platform config and backends")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", crashSeedEnv, s, err)
		}
	}
	t.Logf("seed %d (repeat the moments with %s=%d)", seed, crashSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1|1))

	crashTenant := crashTenantPrefix + strconv.FormatUint(seed%1_000_000, 36)
	cfg := dataPathPlatform
	configPath := writePlatformConfig(t, cfg)
	// Enterprise: its rate limit does not slow 100k events down; limits are tested elsewhere.
	key, prefix := applyTenant(t, crashTenant, "enterprise", 3)
	topic, db := naming.Topic(crashTenant), naming.Database(crashTenant)
	group := "shoal-process-" + crashTenant // the group of `shoal process --tenant`
	conn := clickHouseConn(t, cfg)

	ingestAddr := freeAddr(t)
	ingest := startShoal(t, "shoal ingest", "ingest", "--config", configPath, "--listen", ingestAddr)
	waitHTTPReady(t, ingestAddr, ingest)
	// The processor consumes only the crash tenant's topic, in a group of its own, so the
	// other tests' tenants neither slow it nor count.
	startProcess := func(n int) (*shoalProcess, string) {
		addr := freeAddr(t)
		p := startShoal(t, fmt.Sprintf("shoal process #%d", n), "process", "--config", configPath,
			"--tenant", crashTenant, "--listen", addr)
		return p, addr
	}
	proc, procAddr := startProcess(0)
	procs := []*shoalProcess{proc}
	waitHTTPReady(t, procAddr, proc)
	t.Logf("setup took %s", time.Since(began).Round(time.Millisecond))

	// Every event is sent until acknowledged, with the same id; only acknowledged ids count.
	sendStart := time.Now()
	ts := sendStart.UTC().Truncate(time.Second)
	url := "http://" + ingestAddr + "/api/v1/events/ingest"
	var (
		mu      sync.Mutex
		acked   = make(map[string]bool, crashEvents)
		retried int
	)
	requests := make(chan int)
	sendErr := make(chan error, crashSenders)
	var senders sync.WaitGroup
	for range crashSenders {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for r := range requests {
				evs := make([]map[string]any, 0, crashRequest)
				for i := range crashRequest {
					evs = append(evs, crashEvent(r*crashRequest+i, ts))
				}
				ids, retries, err := sendUntilAcked(url, key, evs)
				if err == nil {
					err = checkAckedIDs(ids, evs)
				}
				if err != nil {
					sendErr <- fmt.Errorf("request %d: %w", r, err)
					return
				}
				mu.Lock()
				retried += retries
				for _, id := range ids {
					acked[id] = true
				}
				mu.Unlock()
			}
		}()
	}
	sendingDone := make(chan struct{})
	disrupted := make(chan struct{})
	var held atomic.Bool // the reserve waits for the disruptions to end
	go func() {
		defer close(requests)
		tick := time.NewTicker(time.Second * crashRequest / crashRate)
		defer tick.Stop()
		total := crashEvents / crashRequest
		for r := range total {
			wait := tick.C
			if r == total-crashReserve {
				held.Store(true)
				select {
				case <-disrupted:
				case <-sendingDone:
					return
				}
				held.Store(false)
			} else if r > 0 {
				select {
				case <-wait:
				case <-sendingDone:
					return
				}
			}
			select {
			case requests <- r:
			case <-sendingDone:
				return
			}
		}
	}()
	sendersDone := make(chan struct{})
	go func() {
		senders.Wait()
		close(sendersDone)
	}()
	t.Cleanup(func() {
		select {
		case <-sendingDone:
		default:
			close(sendingDone)
		}
		<-sendersDone
	})
	ackedNow := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	// sleep waits d, failing the test when a sender gave up or a process died.
	sleep := func(d time.Duration) {
		t.Helper()
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			select {
			case err := <-sendErr:
				t.Fatalf("sending: %v", err)
			case <-time.After(min(50*time.Millisecond, time.Until(deadline))):
			}
			ingest.alive(t)
			proc.alive(t)
		}
	}

	// The disruptions, in an order drawn from the seed: crashKills kills and one ClickHouse
	// restart, never first, so the processor has written batches by then.
	disruptions := make([]string, crashKills)
	for i := range disruptions {
		disruptions[i] = "kill"
	}
	disruptions = slices.Insert(disruptions, 1+rng.IntN(crashKills-1), "clickhouse")
	writing := 0
	procStart := time.Now()
	for i, what := range disruptions {
		// Each disruption should hit a processor that is writing: it has written a batch
		// since it started, then a random while passes. Only when the paced requests ran
		// out before the disruptions did (a slow machine) may the processor be idle.
		idle := false
		poll(t, 90*time.Second, fmt.Sprintf("%s writing batches before disruption %d", proc.name, i+1), []*shoalProcess{ingest, proc}, func() error {
			n, err := metricValue(procAddr, "shoal_process_batches_total")
			switch {
			case err != nil:
				return err
			case n > 0:
				return nil
			case held.Load() && time.Since(procStart) > 10*time.Second:
				idle = true
				return nil
			}
			return fmt.Errorf("no batch written yet; %d of %d events acknowledged", ackedNow(), crashEvents)
		})
		if !idle {
			writing++
		}
		delay := time.Duration(200+rng.IntN(2300)) * time.Millisecond
		sleep(delay)
		switch what {
		case "kill":
			// Every other kill waits, after the random delay, for a batch to be in flight,
			// so some crashes surely interrupt a batch between its range and its commit.
			moment := "at a random moment"
			if i%2 == 1 {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				inFlight, err := waitBatchInFlight(ctx, cfg.Kafka.Brokers, group)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				moment = "with no batch in flight within 3s"
				if inFlight {
					moment = "with a batch in flight"
				}
			}
			proc.kill(t)
			// The broker drops a killed member when its session times out (45 s), and only
			// then hands its partitions to the next processor. Evicting it at once keeps five
			// crashes within the test's time, and recovery is the same: the next processor
			// reads the committed offsets and the interrupted batch's range. The last kill is
			// left to the session timeout, as in production.
			evicted := "left to the group's session timeout"
			if i < len(disruptions)-1 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				n, err := evictGroupMembers(ctx, cfg.Kafka.Brokers, group)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				evicted = fmt.Sprintf("evicted %d group member(s)", n)
			}
			t.Logf("disruption %d after %s: killed %s (-9) %s, %d of %d events acknowledged; %s",
				i+1, delay, proc.name, moment, ackedNow(), crashEvents, evicted)
			proc, procAddr = startProcess(i + 1)
			procStart = time.Now()
			procs = append(procs, proc)
		case "clickhouse":
			stopping := time.Now()
			backends.ClickHouse.Stop()
			stopped := time.Now()
			down := time.Duration(2000+rng.IntN(2000)) * time.Millisecond
			sleep(down)
			failures, _ := metricValue(procAddr, "shoal_process_failures_total")
			backends.ClickHouse.Restart(t)
			t.Logf("disruption %d after %s: ClickHouse stopped (in %s) and started again, down %s in all, with %d of %d events acknowledged; the processor counted %v failures",
				i+1, delay, stopped.Sub(stopping).Round(time.Millisecond), time.Since(stopping).Round(time.Millisecond), ackedNow(), crashEvents, failures)
		}
	}
	close(disrupted)
	select {
	case <-sendersDone:
	case err := <-sendErr:
		t.Fatalf("sending: %v", err)
	case <-time.After(3 * time.Minute):
		t.Fatalf("sending did not end within 3m: %d of %d events acknowledged", ackedNow(), crashEvents)
	}
	select {
	case err := <-sendErr:
		t.Fatalf("sending: %v", err)
	default:
	}
	close(sendingDone)
	sent := time.Now()
	t.Logf("sent and acknowledged %d events in %s (%d requests sent again); %d of %d disruptions hit a processor writing batches",
		len(acked), sent.Sub(sendStart).Round(time.Millisecond), retried, writing, len(disruptions))
	if len(acked) != crashEvents {
		t.Fatalf("acknowledged %d distinct event ids, want %d", len(acked), crashEvents)
	}
	if writing < len(disruptions) {
		t.Errorf("only %d of %d disruptions hit a processor writing batches: the paced stream ran out first", writing, len(disruptions))
	}

	want := len(acked)
	running := []*shoalProcess{ingest, proc}
	poll(t, 2*time.Minute, fmt.Sprintf("the %d acknowledged events in %s", want, db), running, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		unique, final, err := clickHouseCounts(ctx, conn, db)
		if err != nil {
			return err
		}
		if unique > uint64(want) || final > uint64(want) {
			t.Fatalf("%s: uniqExact(event_id) %d, count() FINAL %d: more than the %d acknowledged", db, unique, final, want)
		}
		if unique != uint64(want) || final != uint64(want) {
			lag, _ := metricValue(procAddr, "shoal_process_consumer_lag_records")
			return fmt.Errorf("uniqExact(event_id) %d, count() FINAL %d, want %d; processor lag %v records", unique, final, want, lag)
		}
		return nil
	})
	t.Logf("ClickHouse held every acknowledged event %s after sending ended", time.Since(sent).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Not one event was inserted twice, even before merges: what keeps a Pipeline's rollup
	// (which sees every inserted row) exact. No processor was alive while another had its
	// partitions, the one case the lookup before each insert cannot see.
	if rows, err := clickHouseRows(ctx, conn, db); err != nil {
		t.Fatal(err)
	} else if rows != uint64(want) {
		t.Errorf("%s holds %d rows without FINAL, want the %d acknowledged: some event was inserted twice", db, rows, want)
	}
	stored, err := clickHouseIDs(ctx, conn, db)
	if err != nil {
		t.Fatal(err)
	}
	if missing, n := setDiff(acked, stored, 10); n > 0 {
		t.Errorf("%d acknowledged events are not in ClickHouse, e.g. %v", n, missing)
	}
	if extra, n := setDiff(stored, acked, 10); n > 0 {
		t.Errorf("ClickHouse holds %d events that were never acknowledged, e.g. %v", n, extra)
	}
	// Every record is a valid event: none may have been quarantined on the way, for
	// instance while ClickHouse was down.
	var quarantined uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM `"+db+"`.`quarantine`").Scan(&quarantined); err != nil {
		t.Fatal(err)
	}
	if quarantined != 0 {
		t.Errorf("%d records were quarantined, want none", quarantined)
	}
	replays := 0
	for _, p := range procs {
		replays += strings.Count(p.log.String(), "replaying an interrupted batch")
	}
	t.Logf("the restarted processors replayed %d interrupted batches", replays)

	log := readTopic(t, cfg.Kafka.Brokers, topic)
	checkLog(t, log, acked)
	var objs []lakeObject
	poll(t, time.Minute, "the lake covering the whole topic", running, func() error {
		var bad []string
		objs, bad = readLake(t, cfg, prefix, topic)
		if len(bad) > 0 {
			t.Fatalf("lake objects not named <topic>-p<partition>-<first>-<last>: %v", bad)
		}
		return lakeCoverage(objs, log)
	})
	checkLake(t, objs, log, acked, prefix, topic)
	t.Logf("lake: %d objects; test took %s", len(objs), time.Since(began).Round(time.Millisecond))
}

// checkAckedIDs checks a request's acknowledged ids: the client's where it gave one, an
// assigned one otherwise.
func checkAckedIDs(ids []string, evs []map[string]any) error {
	if len(ids) != len(evs) {
		return fmt.Errorf("%d ids acknowledged for %d events", len(ids), len(evs))
	}
	for i, ev := range evs {
		given, ok := ev["event_id"].(string)
		switch {
		case ok && ids[i] != given:
			return fmt.Errorf("event %d: acknowledged id %q, the client gave %q", i, ids[i], given)
		case !ok && (ids[i] == "" || strings.HasPrefix(ids[i], "crash-")):
			return fmt.Errorf("event %d: acknowledged id %q, want one assigned by ingest", i, ids[i])
		}
	}
	return nil
}

// checkLog checks the topic holds each acknowledged event once and nothing else: ingest
// was never disturbed, so no request can have been produced twice.
func checkLog(t *testing.T, log map[int32][]logRecord, acked map[string]bool) {
	t.Helper()
	seen := map[string]int{}
	records := 0
	for _, recs := range log {
		for _, r := range recs {
			seen[r.id]++
			records++
		}
	}
	for id, n := range seen {
		switch {
		case !acked[id]:
			t.Errorf("the topic holds %s, which was never acknowledged", id)
		case n > 1:
			t.Errorf("the topic holds %s %d times", id, n)
		}
	}
	if len(seen) != len(acked) {
		t.Errorf("the topic holds %d distinct events in %d records, want the %d acknowledged", len(seen), records, len(acked))
	}
}

// lakeCoverage says whether the objects' offset ranges cover every partition of the log
// from its first record to its last; overlaps are checkLake's business.
func lakeCoverage(objs []lakeObject, log map[int32][]logRecord) error {
	covered := map[int32]int64{}
	for _, o := range objs {
		covered[o.partition] += o.last - o.first + 1
	}
	for p, recs := range log {
		if n := int64(len(recs)); covered[p] < n {
			return fmt.Errorf("partition %d: objects cover %d of %d offsets (%d objects in all)", p, covered[p], n, len(objs))
		}
	}
	return nil
}

// checkLake checks the lake objects against the log: in each partition their offset
// ranges are disjoint, each object holds exactly the records of its range in order, and
// every acknowledged event is in exactly one object.
func checkLake(t *testing.T, objs []lakeObject, log map[int32][]logRecord, acked map[string]bool, prefix, topic string) {
	t.Helper()
	byPartition := map[int32][]lakeObject{}
	for _, o := range objs {
		byPartition[o.partition] = append(byPartition[o.partition], o)
	}
	for p, list := range byPartition {
		slices.SortFunc(list, func(a, b lakeObject) int { return int(a.first - b.first) })
		for i, o := range list {
			if o.last < o.first {
				t.Errorf("lake object %s: range %d-%d is empty", o.key, o.first, o.last)
			}
			if i > 0 && o.first <= list[i-1].last {
				t.Errorf("lake objects overlap in partition %d: %s and %s (a replay added an object instead of overwriting)", p, list[i-1].key, o.key)
			}
			recs := log[p]
			if o.first < 0 || o.last >= int64(len(recs)) {
				t.Errorf("lake object %s: range past the partition's %d records", o.key, len(recs))
				continue
			}
			want := recs[o.first : o.last+1]
			// Named by the hour of its first record's Kafka timestamp: a replay of the same
			// range gets the same key.
			ts := want[0].ts.UTC()
			if key := fmt.Sprintf("%sdt=%s/hr=%s/%s-p%d-%d-%d.ndjson.gz", prefix, ts.Format("2006-01-02"), ts.Format("15"),
				topic, p, o.first, o.last); o.key != key {
				t.Errorf("lake object %s: want the key %s", o.key, key)
			}
			if len(o.lines) != len(want) {
				t.Errorf("lake object %s: %d lines, want the %d records of its range", o.key, len(o.lines), len(want))
				continue
			}
			for j, line := range o.lines {
				if string(line) != string(want[j].value) {
					t.Errorf("lake object %s: line %d (%s) is not the record at offset %d (%s)", o.key, j+1, o.ids[j], want[j].offset, want[j].id)
					break
				}
			}
		}
	}
	count := map[string]int{}
	for _, o := range objs {
		for _, id := range o.ids {
			count[id]++
		}
	}
	var missing, twice, unknown []string
	for id := range acked {
		switch count[id] {
		case 0:
			missing = append(missing, id)
		case 1:
		default:
			twice = append(twice, id)
		}
	}
	for id := range count {
		if !acked[id] {
			unknown = append(unknown, id)
		}
	}
	for _, c := range []struct {
		what string
		ids  []string
	}{
		{"acknowledged events missing from the lake", missing},
		{"acknowledged events in the lake more than once", twice},
		{"events in the lake that were never sent", unknown},
	} {
		if len(c.ids) > 0 {
			slices.Sort(c.ids)
			t.Errorf("%d %s, e.g. %v", len(c.ids), c.what, c.ids[:min(10, len(c.ids))])
		}
	}
}
