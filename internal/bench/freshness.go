package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/runtime/events"
	"github.com/shoal-dev/shoal/runtime/ingest"
	"github.com/shoal-dev/shoal/runtime/process"
)

// FreshnessTargetP99 is the freshness target: p99 from ingest acknowledgement to visible
// in a ClickHouse query at most this many seconds.
const FreshnessTargetP99 = 2.0

// FreshnessOptions configure the freshness benchmark.
type FreshnessOptions struct {
	// Platform gives ClickHouse, the lake and, unless InProcessKafka, Kafka. Required.
	Platform *config.Platform
	// InProcessKafka uses a kfake broker in this process instead of the config's.
	InProcessKafka bool
	// Rate is the events per second sent, steadily. Default 10000.
	Rate int
	// EventsPerRequest is the events of one request. Default 100.
	EventsPerRequest int
	// Duration is how long events are sent. Default 30s.
	Duration time.Duration
	// Partitions of the tenant's topic. Default 3.
	Partitions int32
	// The processor's batching; zero takes its defaults. Each of BatchMaxWaits (default:
	// the processor's BatchMaxWait) is one measurement, with a new tenant and processor.
	BatchMaxRecords int
	BatchMaxBytes   int
	BatchMaxWaits   []time.Duration
	// PollInterval is the pause between the queries that look for the events. Default
	// 50ms.
	PollInterval time.Duration
	// Drain bounds the wait, once sending stopped, for the last events to show. Default
	// 30s.
	Drain time.Duration
	// Progress receives a line every few seconds.
	Progress io.Writer
}

func (o *FreshnessOptions) setDefaults() {
	if o.Rate <= 0 {
		o.Rate = 10_000
	}
	if o.EventsPerRequest <= 0 {
		o.EventsPerRequest = 100
	}
	if o.Duration <= 0 {
		o.Duration = 30 * time.Second
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
	if len(o.BatchMaxWaits) == 0 {
		o.BatchMaxWaits = []time.Duration{process.DefaultBatchMaxWait}
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 50 * time.Millisecond
	}
	if o.Drain <= 0 {
		o.Drain = 30 * time.Second
	}
}

// FreshnessReport is what one run of the freshness benchmark measured.
type FreshnessReport struct {
	Broker            string      `json:"broker"`
	ClickHouse        string      `json:"clickhouse"`
	ClickHouseVersion string      `json:"clickhouseVersion"`
	CPUs              int         `json:"cpus"`
	LoadAverage       LoadAverage `json:"loadAverage"`
	Partitions        int32       `json:"partitions"`
	EventBytes        int         `json:"eventBytes"`
	EventProperties   int         `json:"eventProperties"`
	EventsPerRequest  int         `json:"eventsPerRequest"`
	RequestBytes      int         `json:"requestBytes"`
	Rate              int         `json:"rate"`
	DurationSeconds   float64     `json:"durationSeconds"`
	BatchMaxRecords   int         `json:"batchMaxRecords"`
	BatchMaxBytes     int         `json:"batchMaxBytes"`
	// PollSeconds is the pause between the queries that look for the events: an event
	// counts as visible at the end of the first query that returned it.
	PollSeconds float64 `json:"pollSeconds"`
	TargetP99   float64 `json:"targetP99Seconds"`
	// Runs has one entry per BatchMaxWait.
	Runs []FreshnessRun `json:"runs"`
}

// FreshnessRun is one measurement at one processor batching.
type FreshnessRun struct {
	BatchMaxWait float64 `json:"batchMaxWaitSeconds"`
	// SentRate is the acknowledged events per second over the sending period.
	SentRate float64 `json:"sentRate"`
	Acked    int64   `json:"acked"`
	Visible  int64   `json:"visible"`
	// Failed counts requests not answered 200 (their events are not in Acked).
	Failed int64 `json:"failed"`
	// Late counts requests sent more than one request interval after their time,
	// because every sender was busy: the load fell behind the rate.
	Late int64 `json:"late"`
	// Freshness is from each event's acknowledgement to visible in a query.
	Freshness Latency `json:"freshnessSeconds"`
	// Ack is from sending a request to its answer.
	Ack Latency `json:"ackSeconds"`
	// Batches is the processor's inserts; RowsPerBatch their average size.
	Batches      int64   `json:"batches"`
	RowsPerBatch float64 `json:"rowsPerBatch"`
}

// RunFreshness sends a steady rate of events through the ingest API into Kafka while a
// processor moves them into ClickHouse (both in this process), and measures for every
// acknowledged event how long after its acknowledgement a query first returned it.
//
// Each request's events share a session id of their own, so the query that looks for
// them is a count per session over the recent rows, not a list of event ids.
func RunFreshness(ctx context.Context, opts FreshnessOptions) (*FreshnessReport, error) {
	opts.setDefaults()
	d, err := openDataPath(ctx, opts.Platform, opts.InProcessKafka)
	if err != nil {
		return nil, err
	}
	defer d.close(ctx)

	sample := SampleEvents(opts.EventsPerRequest, time.Now(), func(int) string { return "r-0000000" })
	eventBytes, err := wireSize(sample)
	if err != nil {
		return nil, err
	}
	tmpl := newBodyTemplate(sample)
	report := &FreshnessReport{
		LoadAverage: LoadAverage{Start: loadAverage1()},
		Broker:      d.broker.name(), ClickHouse: d.chAddr, ClickHouseVersion: d.admin.Version().String(),
		CPUs: runtime.NumCPU(), Partitions: opts.Partitions, EventBytes: eventBytes, EventProperties: 8,
		EventsPerRequest: opts.EventsPerRequest, RequestBytes: len(tmpl.body(0)), Rate: opts.Rate,
		DurationSeconds: opts.Duration.Seconds(), BatchMaxRecords: opts.BatchMaxRecords, BatchMaxBytes: opts.BatchMaxBytes,
		PollSeconds: opts.PollInterval.Seconds(), TargetP99: FreshnessTargetP99,
	}
	for i, wait := range opts.BatchMaxWaits {
		run, err := freshnessRun(ctx, d, opts, tmpl, wait, i)
		if err != nil {
			return nil, fmt.Errorf("batch max wait %s: %w", wait, err)
		}
		report.Runs = append(report.Runs, *run)
	}
	report.LoadAverage.End = loadAverage1()
	return report, nil
}

// bodyTemplate renders request bodies whose events carry the request's session id.
type bodyTemplate struct {
	parts [][]byte // the body split where the session ids go
}

// sessionDigits is the width of the request number in a session id, so every body of a
// run has the same size.
const sessionDigits = 7

func sessionID(k int) string { return fmt.Sprintf("r-%0*d", sessionDigits, k) }

func newBodyTemplate(evs []events.Event) *bodyTemplate {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, e := range evs {
		if i > 0 {
			b.WriteByte(',')
		}
		// No event_id: the server assigns one, as for most clients.
		fmt.Fprintf(&b, `{"event_type":%q,"timestamp":%q,"user_id":%q,"session_id":"`, e.EventType, e.Timestamp.Format(time.RFC3339Nano), e.UserID)
		b.WriteByte(0) // the session id goes here
		fmt.Fprintf(&b, `","properties":%s}`, e.Properties)
	}
	b.WriteByte(']')
	return &bodyTemplate{parts: bytes.Split(b.Bytes(), []byte{0})}
}

func (t *bodyTemplate) body(k int) []byte {
	id := sessionID(k)
	out := make([]byte, 0, len(t.parts)*len(id)+len(t.parts[0])*len(t.parts))
	for i, p := range t.parts {
		if i > 0 {
			out = append(out, id...)
		}
		out = append(out, p...)
	}
	return out
}

// request is one request of a run: when it was due, sent and acknowledged, and when its
// events showed up.
type request struct {
	sent, acked time.Time
	ok          bool
	// seen counts its events a query returned; shown are the times the count grew, and by
	// how much.
	seen  int
	shown []shown
}

type shown struct {
	n  int
	at time.Time
}

func freshnessRun(ctx context.Context, d *dataPath, opts FreshnessOptions, tmpl *bodyTemplate, wait time.Duration, index int) (*FreshnessRun, error) {
	tenant := runTenant(fmt.Sprintf("fresh%d", index), time.Now())
	if err := d.addTenant(ctx, tenant, opts.Partitions); err != nil {
		return nil, err
	}
	producer, err := ingest.NewKafkaProducer(d.broker.cfg)
	if err != nil {
		return nil, err
	}
	defer producer.Close()
	key := benchKey(tenant)
	handler, err := ingest.New(ingest.Options{Platform: benchPlatform(), Keys: staticKeys{key: key, tenant: tenant}, Producer: producer})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the ingest server: %w", err)
	}
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = server.Serve(ln) }()
	defer func() { _ = server.Close() }()
	url := "http://" + ln.Addr().String() + ingest.Path

	popts := ProcessOptions{BatchMaxRecords: opts.BatchMaxRecords, BatchMaxBytes: opts.BatchMaxBytes, BatchMaxWait: wait}
	reg := prometheus.NewRegistry()
	group, stop, err := d.startProcessor(ctx, tenant, popts, reg)
	if err != nil {
		return nil, err
	}
	defer d.deleteGroup(group)
	stopped := false
	defer func() {
		if !stopped {
			_ = stop()
		}
	}()
	if err := d.waitAssigned(ctx, group, time.Minute); err != nil {
		return nil, err
	}
	progressf(opts.Progress, "freshness: batch max wait %s: sending %d events/s for %s to %s", wait, opts.Rate, opts.Duration, naming.Topic(tenant))

	interval := time.Duration(float64(time.Second) * float64(opts.EventsPerRequest) / float64(opts.Rate))
	total := int(opts.Duration / interval)
	reqs := make([]request, total)
	var mu sync.Mutex // guards reqs
	run := &FreshnessRun{BatchMaxWait: wait.Seconds()}

	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	pollDone := make(chan error, 1)
	var began time.Time // set before the first request is due, and not after
	due := func(k int) time.Time { return began.Add(time.Duration(k) * interval) }
	poller := &sessionPoller{conn: d, database: naming.Database(tenant), reqs: reqs, mu: &mu, interval: opts.PollInterval,
		perRequest: opts.EventsPerRequest, due: due}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxIdleConns: 64}, Timeout: time.Minute}
	defer client.CloseIdleConnections()
	var failed, late atomic.Int64
	var firstErr atomic.Value
	jobs := make(chan int, 64)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range jobs {
				sent := time.Now()
				err := postBody(ctx, client, url, key, tmpl.body(k), opts.EventsPerRequest)
				acked := time.Now()
				mu.Lock()
				reqs[k].sent, reqs[k].acked, reqs[k].ok = sent, acked, err == nil
				mu.Unlock()
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	began = time.Now()
	go func() { pollDone <- poller.run(pollCtx) }()
	nextReport := began.Add(5 * time.Second)
	for k := range total {
		at := due(k)
		if pause := time.Until(at); pause > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
		}
		if ctx.Err() != nil {
			break
		}
		if time.Since(at) > interval {
			late.Add(1)
		}
		jobs <- k
		if time.Now().After(nextReport) {
			progressf(opts.Progress, "freshness: %d/%d requests sent, %d visible so far", k+1, total, poller.visible.Load())
			nextReport = nextReport.Add(5 * time.Second)
		}
	}
	close(jobs)
	wg.Wait()
	sendSeconds := time.Since(began).Seconds()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	var acked int64
	mu.Lock()
	for _, r := range reqs {
		if r.ok {
			acked += int64(opts.EventsPerRequest)
		}
	}
	mu.Unlock()
	drainCtx, cancelDrain := context.WithTimeout(ctx, opts.Drain)
	for drainCtx.Err() == nil && poller.visible.Load() < acked {
		select {
		case <-drainCtx.Done():
		case <-time.After(opts.PollInterval):
		}
	}
	cancelDrain()
	stopPolling()
	if err := <-pollDone; err != nil && !errors.Is(err, context.Canceled) {
		return nil, err
	}
	stopped = true
	if err := stop(); err != nil {
		return nil, fmt.Errorf("stopping the processor: %w", err)
	}

	run.Acked, run.Visible, run.Failed, run.Late = acked, poller.visible.Load(), failed.Load(), late.Load()
	run.SentRate = float64(acked) / sendSeconds
	run.Freshness, run.Ack = spreads(reqs)
	run.Batches = int64(counterValue(reg, "shoal_process_batches_total"))
	if run.Batches > 0 {
		run.RowsPerBatch = counterValue(reg, "shoal_process_rows_inserted_total") / float64(run.Batches)
	}
	if msg, ok := firstErr.Load().(string); ok && run.Failed > 0 {
		progressf(opts.Progress, "freshness: %d requests failed; the first: %s", run.Failed, msg)
	}
	return run, nil
}

// spreads are the freshness of every event shown and the ack latency of every request
// answered 200.
func spreads(reqs []request) (freshness, ack Latency) {
	var fresh, acks []time.Duration
	for _, r := range reqs {
		if !r.ok {
			continue
		}
		acks = append(acks, r.acked.Sub(r.sent))
		for _, s := range r.shown {
			// A query can see an event before this process noted the answer that
			// acknowledged it: that is no delay at all.
			lag := max(s.at.Sub(r.acked), 0)
			for range s.n {
				fresh = append(fresh, lag)
			}
		}
	}
	return LatencyOf(fresh), LatencyOf(acks)
}

func postBody(ctx context.Context, client *http.Client, url, key string, body []byte, want int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	var head [64]byte
	n, _ := io.ReadFull(resp.Body, head[:])
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(head[:n], fmt.Appendf(nil, `{"accepted":%d,`, want)) {
		return fmt.Errorf("ingest answered %d: %s", resp.StatusCode, head[:n])
	}
	return nil
}

// sessionPoller queries the tenant's events table again and again for how many events of
// each request it holds, and notes when each request's count grew.
type sessionPoller struct {
	conn     *dataPath
	database string
	reqs     []request
	mu       *sync.Mutex
	interval time.Duration
	visible  atomic.Int64
	// perRequest is the events of a request; due is when request k is sent.
	perRequest int
	due        func(k int) time.Time
	// low is the first request not yet seen in full; only rows received since it was
	// due (less a second, for received_at's whole seconds) are looked at.
	low int
}

// done says whether nothing more of r is to show: it was answered, and either failed or
// all its events were seen.
func (p *sessionPoller) done(r *request) bool {
	return !r.acked.IsZero() && (!r.ok || r.seen >= p.perRequest)
}

func (p *sessionPoller) run(ctx context.Context) error {
	if err := clickhouse.ValidateIdentifier(p.database); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(p.interval):
		}
		if err := p.poll(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
}

func (p *sessionPoller) poll(ctx context.Context) error {
	p.mu.Lock()
	for p.low < len(p.reqs) && p.done(&p.reqs[p.low]) {
		p.low++
	}
	low := p.low
	p.mu.Unlock()
	if low == len(p.reqs) {
		return nil
	}
	since := p.due(low)
	// received_at holds whole seconds; the literal is a number, so nothing is quoted.
	query := "SELECT `session_id`, count() FROM `" + p.database + "`.`" + clickhouse.EventsTable + "` " +
		"WHERE `received_at` >= toDateTime(" + strconv.FormatInt(since.Unix()-1, 10) + ") GROUP BY `session_id`"
	rows, err := p.conn.conn.Query(ctx, query)
	if err != nil {
		return fmt.Errorf("looking for the events: %w", err)
	}
	type count struct {
		k int
		n uint64
	}
	var counts []count
	for rows.Next() {
		var session string
		var n uint64
		if err := rows.Scan(&session, &n); err != nil {
			_ = rows.Close()
			return fmt.Errorf("looking for the events: %w", err)
		}
		k, err := strconv.Atoi(strings.TrimPrefix(session, "r-"))
		if err != nil || k < 0 || k >= len(p.reqs) {
			continue
		}
		counts = append(counts, count{k, n})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("looking for the events: %w", err)
	}
	_ = rows.Close()
	at := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range counts {
		r := &p.reqs[c.k]
		if grew := int(c.n) - r.seen; grew > 0 {
			r.shown = append(r.shown, shown{n: grew, at: at})
			r.seen = int(c.n)
			p.visible.Add(int64(grew))
		}
	}
	return nil
}
