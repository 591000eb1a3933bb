package process

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/shoal-dev/shoal/internal/naming"
)

// The two benchmarks measure one target (process Kafka -> ClickHouse at least 0.5x a
// direct batched insert of the same rows): compare their rows/s from one run, such as
//
//	go test ./runtime/process/ -run '^$' -bench . -benchtime 200000x
//
// One op is one row (a ~300-byte event with 8 properties).

var benchTenants atomic.Int64

// BenchmarkProcess times the processor from the moment it has its partitions until every
// produced row is stored in ClickHouse and the lake and committed; producing the rows and
// joining the group (logged) are not timed.
func BenchmarkProcess(b *testing.B) {
	e := backends
	tenant := fmt.Sprintf("bench-p%d", benchTenants.Add(1))
	e.tenant(b, tenant, "Standard", 3)
	// Ids as ingest assigns them, in a group whose commits say nothing is stored from
	// offset 0 on: where a running processor stands.
	evs := assigned(testEvents(tenant, b.N))
	for i := 0; i < len(evs); i += 50000 {
		e.produceEvents(b, tenant, evs[i:min(i+50000, len(evs))])
	}
	start0 := kadm.Offsets{}
	for p := range int32(3) {
		start0.Add(kadm.Offset{Topic: naming.Topic(tenant), Partition: p, At: 0, LeaderEpoch: -1, Metadata: writtenMetadata})
	}
	if _, err := e.kadm.CommitOffsets(context.Background(), tenant, start0); err != nil {
		b.Fatal(err)
	}
	if len(evs) > 0 {
		b.SetBytes(int64(len(record(b, naming.Topic(tenant), evs[0]).Value)))
	}

	opts := e.newOptions(tenant)
	opts.Tenant = tenant
	opts.BatchMaxRecords = DefaultBatchMaxRecords
	opts.BatchMaxWait = DefaultBatchMaxWait
	var mu sync.Mutex
	committed := 0
	done := make(chan struct{})
	var firstCommit time.Time
	opts.afterCommit = func(bs []*batch) {
		mu.Lock()
		defer mu.Unlock()
		if firstCommit.IsZero() {
			firstCommit = time.Now()
		}
		for _, bt := range bs {
			committed += len(bt.records)
		}
		if committed == len(evs) {
			close(done)
		}
	}

	b.ResetTimer()
	b.StopTimer()
	started := time.Now()
	pr := start(b, opts)
	for {
		pr.p.mu.Lock()
		assigned := len(pr.p.parts) > 0
		pr.p.mu.Unlock()
		if assigned {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.StartTimer()
	began := time.Now()
	<-done
	elapsed := time.Since(began)
	b.StopTimer()

	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "rows/s")
	mu.Lock()
	b.Logf("%d rows in %s after joining the group in %s; first commit %s after joining", b.N, elapsed, began.Sub(started), firstCommit.Sub(began))
	mu.Unlock()
	if err := pr.stop(); err != nil {
		b.Fatal(err)
	}
	if final, _, _ := e.counts(b, tenant); final != uint64(b.N) {
		b.Fatalf("%d rows stored, want %d", final, b.N)
	}
}

// BenchmarkDirectInsert inserts the same rows into the same kind of table with one batched
// clickhouse-go insert, column by column (the driver's fastest path).
func BenchmarkDirectInsert(b *testing.B) {
	e := backends
	tenant := fmt.Sprintf("bench-d%d", benchTenants.Add(1))
	e.tenant(b, tenant, "Standard", 1)
	evs := testEvents(tenant, b.N)
	wh, err := OpenClickHouse(context.Background(), e.clickHouseConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = wh.Close() }()

	b.ResetTimer()
	began := time.Now()
	if err := wh.insertEvents(context.Background(), naming.Database(tenant), evs); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(began)
	b.StopTimer()

	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "rows/s")
	if final, _, _ := e.counts(b, tenant); final != uint64(b.N) {
		b.Fatalf("%d rows stored, want %d", final, b.N)
	}
}
