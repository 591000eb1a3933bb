package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/lake"
	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/runtime/events"
	"github.com/shoal-dev/shoal/runtime/ingest"
	"github.com/shoal-dev/shoal/runtime/process"
)

// ProcessTarget is the processor target: rows/s into ClickHouse (and the lake) at least
// this share of a direct batched clickhouse-go insert of the same rows.
const ProcessTarget = 0.5

// benchLakeClass is the retention class of the benchmarks' tenants.
const benchLakeClass = "Standard"

// ProcessOptions configure the processor benchmark.
type ProcessOptions struct {
	// Platform gives ClickHouse, the lake and, unless InProcessKafka, Kafka. Required.
	Platform *config.Platform
	// InProcessKafka uses a kfake broker in this process instead of the config's.
	InProcessKafka bool
	// Rows is how many events go through each side. Default 200000.
	Rows int
	// Partitions of the tenant's topic. Default 3.
	Partitions int32
	// The processor's batching; zero takes the processor's defaults. The direct insert
	// uses batches of BatchMaxRecords rows.
	BatchMaxRecords int
	BatchMaxBytes   int
	BatchMaxWait    time.Duration
	// ClientIDs produces the events as if their clients had given their ids, which the
	// processor looks up in the table before inserting (the worst case); otherwise as if
	// ingest had assigned them, which it does not look up once its group's commits say
	// they cannot be stored yet.
	ClientIDs bool
	// Progress receives a line per step.
	Progress io.Writer
}

// processWarmup is how many events a partition gets before the timed run: the processor
// writes them and stops, so the timed run starts where a running processor stands, its
// group's commits saying what is stored.
const processWarmup = 1000

func (o *ProcessOptions) setDefaults() {
	if o.Rows <= 0 {
		o.Rows = 200_000
	}
	if o.Partitions <= 0 {
		o.Partitions = 3
	}
	if o.BatchMaxRecords <= 0 {
		o.BatchMaxRecords = process.DefaultBatchMaxRecords
	}
	if o.BatchMaxBytes <= 0 {
		o.BatchMaxBytes = process.DefaultBatchMaxBytes
	}
	if o.BatchMaxWait <= 0 {
		o.BatchMaxWait = process.DefaultBatchMaxWait
	}
}

// RowsThroughput is what one side of the processor comparison did.
type RowsThroughput struct {
	Rows          int64   `json:"rows"`
	Seconds       float64 `json:"seconds"`
	RowsPerSecond float64 `json:"rowsPerSecond"`
	// Batches is how many inserts it took.
	Batches int64 `json:"batches"`
}

// ProcessReport is what one run of the processor benchmark measured.
type ProcessReport struct {
	Broker            string      `json:"broker"`
	ClickHouse        string      `json:"clickhouse"`
	ClickHouseVersion string      `json:"clickhouseVersion"`
	CPUs              int         `json:"cpus"`
	LoadAverage       LoadAverage `json:"loadAverage"`
	Partitions        int32       `json:"partitions"`
	EventBytes        int         `json:"eventBytes"`
	EventProperties   int         `json:"eventProperties"`
	// ClientIDs: the events' ids were the clients', so every one was looked up.
	ClientIDs       bool    `json:"clientIds"`
	BatchMaxRecords int     `json:"batchMaxRecords"`
	BatchMaxBytes   int     `json:"batchMaxBytes"`
	BatchMaxWait    float64 `json:"batchMaxWaitSeconds"`
	// DirectConcurrency is how many direct inserts were in flight: as many as the
	// processor writes partition batches at once.
	DirectConcurrency int            `json:"directConcurrency"`
	Direct            RowsThroughput `json:"direct"`
	Processor         RowsThroughput `json:"processor"`
	// JoinSeconds is how long the processor took to get its partitions, not timed.
	JoinSeconds float64 `json:"joinSeconds"`
	// LakeObjects the processor wrote.
	LakeObjects int64 `json:"lakeObjects"`
	// Ratio is Processor.RowsPerSecond / Direct.RowsPerSecond.
	Ratio  float64 `json:"ratio"`
	Target float64 `json:"target"`
}

// dataPath is what the process and freshness benchmarks hold open.
type dataPath struct {
	broker    *broker
	admin     *clickhouse.Client
	conn      driver.Conn
	warehouse *process.ClickHouse
	lake      *lake.Lake
	chAddr    string
	tenants   []string
}

func openDataPath(ctx context.Context, p *config.Platform, inProcessKafka bool) (_ *dataPath, err error) {
	if p == nil {
		return nil, errors.New("a platform config is required: ClickHouse and the lake come from it")
	}
	d := &dataPath{chAddr: p.ClickHouse.Addr}
	defer func() {
		if err != nil {
			d.close(ctx)
		}
	}()
	kcfg := &p.Kafka
	if inProcessKafka {
		kcfg = nil
	}
	if d.broker, err = openBroker(kcfg); err != nil {
		return nil, err
	}
	if d.admin, err = clickhouse.New(ctx, p.ClickHouse); err != nil {
		return nil, err
	}
	if d.conn, err = clickhouse.Dial(p.ClickHouse, 4); err != nil {
		return nil, err
	}
	if d.warehouse, err = process.OpenClickHouse(ctx, p.ClickHouse); err != nil {
		return nil, err
	}
	if d.lake, err = lake.New(ctx, p.Lake); err != nil {
		return nil, err
	}
	if err = d.lake.EnsureBucket(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// addTenant provisions what the operator would for a Shared tenant, minus its ClickHouse
// user: database and tables, and topic. close removes them.
func (d *dataPath) addTenant(ctx context.Context, tenant string, partitions int32) error {
	d.tenants = append(d.tenants, tenant)
	if err := d.admin.EnsureTenantDatabase(ctx, clickhouse.TenantDB{Database: naming.Database(tenant)}); err != nil {
		return err
	}
	if partitions > 0 {
		return d.broker.createTopic(ctx, tenant, partitions, nil)
	}
	return nil
}

func (d *dataPath) close(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for _, t := range d.tenants {
		if d.admin != nil {
			_ = d.admin.DropTenantDatabase(ctx, clickhouse.TenantDB{Database: naming.Database(t)})
		}
		if d.broker != nil {
			_ = d.broker.deleteTopic(ctx, t)
		}
		if d.lake != nil {
			_, _ = d.lake.DeleteTenantPrefix(ctx, naming.LakePrefix(benchLakeClass, t))
		}
	}
	if d.warehouse != nil {
		_ = d.warehouse.Close()
	}
	if d.conn != nil {
		_ = d.conn.Close()
	}
	if d.admin != nil {
		_ = d.admin.Close()
	}
	if d.broker != nil {
		d.broker.close()
	}
}

// count is the rows of the tenant's events table.
func (d *dataPath) count(ctx context.Context, tenant string) (uint64, error) {
	var n uint64
	if err := d.conn.QueryRow(ctx, "SELECT count() FROM `"+naming.Database(tenant)+"`.`"+clickhouse.EventsTable+"`").Scan(&n); err != nil {
		return 0, fmt.Errorf("counting the events of %s: %w", tenant, err)
	}
	return n, nil
}

// benchTenants answers the processor's tenant lookups for the benchmark's tenants, which
// have no metastore row: Shared, Standard retention.
type benchTenants struct{}

func (benchTenants) Tenant(context.Context, string) (process.Tenant, error) {
	return process.Tenant{LakeClass: benchLakeClass}, nil
}

// startProcessor runs a processor for one tenant in its own group until stop is called;
// the group stays, for another run to take over, until deleteGroup.
func (d *dataPath) startProcessor(ctx context.Context, tenant string, o ProcessOptions, reg prometheus.Registerer) (group string, stop func() error, err error) {
	group = "shoal-bench-" + tenant
	proc, err := process.New(process.Options{
		Brokers:         d.broker.cfg.Brokers,
		Group:           group,
		Tenant:          tenant,
		BatchMaxRecords: o.BatchMaxRecords,
		BatchMaxBytes:   o.BatchMaxBytes,
		BatchMaxWait:    o.BatchMaxWait,
		Warehouse:       d.warehouse,
		Lake:            d.lake,
		Tenants:         benchTenants{},
		Registerer:      reg,
		KafkaOptions:    []kgo.Opt{kgo.DialTimeout(d.broker.cfg.DialTimeout.Duration)},
	})
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	return group, func() error {
		cancel()
		return <-done
	}, nil
}

// deleteGroup deletes a benchmark's consumer group, so no commit of it is left behind.
func (d *dataPath) deleteGroup(group string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = d.broker.admin.DeleteGroup(ctx, group)
}

// waitAssigned waits until the group's member holds partitions.
func (d *dataPath) waitAssigned(ctx context.Context, group string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		described, err := d.broker.admin.DescribeGroups(ctx, group)
		if err == nil {
			if g, ok := described[group]; ok && g.Err == nil && g.State == "Stable" {
				for _, m := range g.Members {
					if c, ok := m.Assigned.AsConsumer(); ok && len(c.Topics) > 0 {
						return nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the processor did not get its partitions in %s: %w", timeout, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// committed sums the group's committed offsets.
func (d *dataPath) committed(ctx context.Context, group string) (int64, error) {
	offsets, err := d.broker.admin.FetchOffsets(ctx, group)
	if err != nil {
		return 0, fmt.Errorf("fetching the offsets of group %s: %w", group, err)
	}
	var n int64
	offsets.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.At > 0 {
			n += o.At
		}
	})
	return n, nil
}

// RunProcess measures the processor (Kafka to ClickHouse and the lake, offsets committed)
// against inserting the same rows straight into an identical table with clickhouse-go in
// batches of the same size. The direct side goes first, so background merges of its parts
// weigh on the processor, not the other way round.
func RunProcess(ctx context.Context, opts ProcessOptions) (*ProcessReport, error) {
	opts.setDefaults()
	d, err := openDataPath(ctx, opts.Platform, opts.InProcessKafka)
	if err != nil {
		return nil, err
	}
	defer d.close(ctx)
	now := time.Now()
	procTenant, directTenant := runTenant("proc", now), runTenant("direct", now)
	if err := d.addTenant(ctx, procTenant, opts.Partitions); err != nil {
		return nil, err
	}
	if err := d.addTenant(ctx, directTenant, 0); err != nil {
		return nil, err
	}

	evs := SampleEvents(opts.Rows, now, func(i int) string { return fmt.Sprintf("s-%05d", i/20) })
	warmup := SampleEvents(processWarmup*int(opts.Partitions), now, func(i int) string { return fmt.Sprintf("w-%05d", i/20) })
	for _, part := range [][]events.Event{evs, warmup} {
		for i := range part {
			part[i].IDAssigned = !opts.ClientIDs
		}
	}
	eventBytes, err := wireSize(evs[:min(len(evs), 1000)])
	if err != nil {
		return nil, err
	}

	concurrency := min(int(opts.Partitions), process.DefaultFlushConcurrency)
	report := &ProcessReport{
		LoadAverage: LoadAverage{Start: loadAverage1()},
		Broker:      d.broker.name(), ClickHouse: d.chAddr, ClickHouseVersion: d.admin.Version().String(),
		CPUs: runtime.NumCPU(), Partitions: opts.Partitions, EventBytes: eventBytes, EventProperties: 8, ClientIDs: opts.ClientIDs,
		BatchMaxRecords: opts.BatchMaxRecords, BatchMaxBytes: opts.BatchMaxBytes, BatchMaxWait: opts.BatchMaxWait.Seconds(),
		DirectConcurrency: concurrency, Target: ProcessTarget,
	}

	progressf(opts.Progress, "process: direct insert of %d rows in batches of %d, %d at a time", len(evs), opts.BatchMaxRecords, concurrency)
	elapsed, batches, err := insertDirect(ctx, d.conn, naming.Database(directTenant), evs, opts.BatchMaxRecords, concurrency)
	if err != nil {
		return nil, err
	}
	report.Direct = RowsThroughput{Rows: int64(len(evs)), Seconds: elapsed.Seconds(), RowsPerSecond: float64(len(evs)) / elapsed.Seconds(), Batches: batches}

	progressf(opts.Progress, "process: warming up: the processor writes %d events and stops (not timed)", len(warmup))
	if err := produceAll(ctx, d.broker, procTenant, warmup); err != nil {
		return nil, err
	}
	group, stop, err := d.startProcessor(ctx, procTenant, opts, prometheus.NewRegistry())
	if err != nil {
		return nil, err
	}
	defer d.deleteGroup(group)
	if err := waitCommitted(ctx, d, group, int64(len(warmup)), 5*time.Minute); err != nil {
		_ = stop()
		return nil, err
	}
	if err := stop(); err != nil {
		return nil, fmt.Errorf("stopping the processor: %w", err)
	}
	progressf(opts.Progress, "process: producing %d events to %s (not timed)", len(evs), naming.Topic(procTenant))
	if err := produceAll(ctx, d.broker, procTenant, evs); err != nil {
		return nil, err
	}

	progressf(opts.Progress, "process: processor over the same rows")
	reg := prometheus.NewRegistry()
	started := time.Now()
	_, stop, err = d.startProcessor(ctx, procTenant, opts, reg)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = stop()
		}
	}()
	if err := d.waitAssigned(ctx, group, time.Minute); err != nil {
		return nil, err
	}
	began := time.Now()
	report.JoinSeconds = began.Sub(started).Seconds()
	if err := waitCommitted(ctx, d, group, int64(len(warmup)+len(evs)), 10*time.Minute); err != nil {
		return nil, err
	}
	elapsed = time.Since(began)
	stopped = true
	if err := stop(); err != nil {
		return nil, fmt.Errorf("stopping the processor: %w", err)
	}
	report.Processor = RowsThroughput{
		Rows: int64(len(evs)), Seconds: elapsed.Seconds(), RowsPerSecond: float64(len(evs)) / elapsed.Seconds(),
		Batches: int64(counterValue(reg, "shoal_process_batches_total")),
	}
	report.LakeObjects = int64(counterValue(reg, "shoal_process_lake_objects_total"))
	if report.Direct.RowsPerSecond > 0 {
		report.Ratio = report.Processor.RowsPerSecond / report.Direct.RowsPerSecond
	}

	for t, want := range map[string]int{directTenant: len(evs), procTenant: len(warmup) + len(evs)} {
		n, err := d.count(ctx, t)
		if err != nil {
			return nil, err
		}
		if n != uint64(want) {
			return report, fmt.Errorf("%s holds %d rows, want %d", naming.Database(t), n, want)
		}
	}
	report.LoadAverage.End = loadAverage1()
	return report, nil
}

// waitCommitted waits until the group committed want offsets in all.
func waitCommitted(ctx context.Context, d *dataPath, group string, want int64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		n, err := d.committed(ctx, group)
		if err == nil && n >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the processor committed %d of %d records: %w", n, want, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// produceAll writes the events to the tenant's topic as ingest would: keyed by event_id,
// wire format and id headers, acks=all.
func produceAll(ctx context.Context, b *broker, tenant string, evs []events.Event) error {
	cl, err := kgo.NewClient(append(ingest.ClientOptions(b.cfg), kgo.MaxBufferedRecords(100_000))...)
	if err != nil {
		return fmt.Errorf("creating a producer: %w", err)
	}
	defer cl.Close()
	topic := naming.Topic(tenant)
	const chunk = 20_000
	for i := 0; i < len(evs); i += chunk {
		part := evs[i:min(i+chunk, len(evs))]
		records := make([]*kgo.Record, len(part))
		for j, e := range part {
			v, err := events.Marshal(e)
			if err != nil {
				return err
			}
			records[j] = &kgo.Record{Topic: topic, Key: []byte(e.EventID), Value: v, Headers: ingest.RecordHeaders(e.IDAssigned)}
		}
		if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
			return fmt.Errorf("producing to %s: %w", topic, err)
		}
	}
	return nil
}

// insertDirect inserts evs into the database's events table in batches of batchSize,
// concurrency inserts at a time, column by column (clickhouse-go's fastest path), and
// returns how long it took and how many inserts. It is the plain client the processor is
// compared with: no Kafka, no decoding, no deduplication, no lake.
func insertDirect(ctx context.Context, conn driver.Conn, database string, evs []events.Event, batchSize, concurrency int) (time.Duration, int64, error) {
	next := make(chan []events.Event)
	errs := make(chan error, concurrency)
	var wg sync.WaitGroup
	began := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for part := range next {
				if err := insertEvents(ctx, conn, database, part); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var batches int64
	for i := 0; i < len(evs); i += batchSize {
		select {
		case next <- evs[i:min(i+batchSize, len(evs))]:
			batches++
		case err := <-errs:
			close(next)
			wg.Wait()
			return 0, 0, err
		}
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(began)
	select {
	case err := <-errs:
		return 0, 0, err
	default:
	}
	return elapsed, batches, nil
}

// eventsInsert is the INSERT of the events table, with the explicit column list old
// servers need.
func eventsInsert(database string) (string, error) {
	if err := clickhouse.ValidateIdentifier(database); err != nil {
		return "", err
	}
	return "INSERT INTO `" + database + "`.`" + clickhouse.EventsTable + "` " +
		"(`event_id`, `event_type`, `timestamp`, `received_at`, `user_id`, `session_id`, `properties`)", nil
}

// insertEvents is one batched insert of evs.
func insertEvents(ctx context.Context, conn driver.Conn, database string, evs []events.Event) error {
	sql, err := eventsInsert(database)
	if err != nil {
		return err
	}
	n := len(evs)
	ids, types, users, sessions, props := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ts, received := make([]time.Time, n), make([]time.Time, n)
	for i := range evs {
		e := &evs[i]
		ids[i], types[i], users[i], sessions[i], props[i] = e.EventID, e.EventType, e.UserID, e.SessionID, string(e.Properties)
		ts[i], received[i] = e.Timestamp, e.ReceivedAt
	}
	batch, err := conn.PrepareBatch(ctx, sql)
	if err != nil {
		return fmt.Errorf("inserting into %s: %w", database, err)
	}
	for i, col := range []any{ids, types, ts, received, users, sessions, props} {
		if err := batch.Column(i).Append(col); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("inserting into %s: column %d: %w", database, i, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("inserting into %s: %w", database, err)
	}
	return nil
}

// counterValue reads a counter (or the sum of a counter vector) from reg; 0 when absent.
func counterValue(reg *prometheus.Registry, name string) float64 {
	families, err := reg.Gather()
	if err != nil {
		return 0
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range f.GetMetric() {
			sum += metricValue(m)
		}
		return sum
	}
	return 0
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	}
	return 0
}
