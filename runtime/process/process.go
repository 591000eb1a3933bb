// Package process is the stream processor behind `shoal process`: it consumes the tenant
// topics and stores every event in its tenant's ClickHouse events table and, as gzipped
// NDJSON, in the tenant's lake prefix, exactly once in effect.
//
// Records are buffered per partition and cut into batches by count, size or age. A batch
// is written to ClickHouse (events, and the quarantine table for records that are no
// event) and to one lake object whose key names the batch's offset range; only when both
// succeeded is offset last+1 committed. A failure commits nothing: the same batch is
// retried with backoff, never skipped, and its partition stops fetching meanwhile so
// other partitions (other tenants) go on. Whatever is redelivered after a crash lands in
// ClickHouse again under the same event_id, which the events table collapses, and
// overwrites the same lake object: before writing a batch its offset range is stored as
// the partition's commit metadata, and a processor taking the partition over cuts its
// first batch at exactly that range (see intent).
package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-dev/shoal/internal/naming"
)

// Defaults of Options.
const (
	DefaultGroup            = naming.SharedProcessorGroup
	DefaultSessionTimeout   = 10 * time.Second
	DefaultBatchMaxRecords  = 10000
	DefaultBatchMaxBytes    = 8 << 20
	DefaultBatchMaxWait     = 250 * time.Millisecond
	DefaultRetryMin         = 200 * time.Millisecond
	DefaultRetryMax         = 15 * time.Second
	DefaultSinkTimeout      = 30 * time.Second
	DefaultShutdownTimeout  = 30 * time.Second
	DefaultTopicRefresh     = 10 * time.Second
	DefaultFlushConcurrency = 4
)

// intentPatience is how long a processor that took over a partition waits for the records
// of an interrupted batch before cutting batches as usual. They were in the log when the
// batch was cut, so they come back unless retention deleted them meanwhile.
const intentPatience = time.Minute

// Options configure a Processor.
type Options struct {
	// Brokers are the Kafka bootstrap addresses. Required.
	Brokers []string
	// Group is the consumer group; processors of one group share the partitions.
	// DefaultGroup, or DefaultGroup-<tenant> with Tenant.
	Group string
	// Tenant, if set, consumes only that tenant's topic (a Dedicated tenant's processor);
	// otherwise every tenant topic (naming.TopicPattern), new ones included, except those
	// of Dedicated tenants.
	Tenant string

	// A partition's buffered records become a batch once they reach BatchMaxRecords or
	// BatchMaxBytes, or the oldest is BatchMaxWait old.
	BatchMaxRecords int
	BatchMaxBytes   int
	BatchMaxWait    time.Duration

	// Warehouse, Lake and Tenants are where batches go. Required.
	Warehouse Warehouse
	Lake      ObjectStore
	Tenants   TenantInfo

	// Registerer gets the processor's metrics; nil registers them nowhere.
	Registerer prometheus.Registerer
	// Logger; nil discards.
	Logger *slog.Logger

	// RetryMin and RetryMax bound the exponential backoff between attempts of a failed
	// batch.
	RetryMin, RetryMax time.Duration
	// SinkTimeout bounds one attempt at writing a batch.
	SinkTimeout time.Duration
	// ShutdownTimeout bounds writing and committing what is buffered when Run's context
	// ends.
	ShutdownTimeout time.Duration
	// TopicRefresh is how often the topic list is read again, so a new tenant's topic is
	// consumed within about this long.
	TopicRefresh time.Duration
	// FlushConcurrency is how many partition batches are written at once.
	FlushConcurrency int
	// SessionTimeout is how long the group waits for a processor that stopped answering
	// before handing its partitions to the others: how long a crash stalls them.
	// Shorter than Kafka's default 45s; heartbeats go every tenth of it.
	SessionTimeout time.Duration
	// KafkaOptions are added to the Kafka client's (TLS, SASL, timeouts).
	KafkaOptions []kgo.Opt

	// beforeCommit, set by tests, runs when a batch is written and before its offsets are
	// committed; an error ends Run once the batches in flight are done, without committing
	// them, as a crash would.
	beforeCommit func(written []*batch) error
	// afterCommit, set by tests and benchmarks, runs after batches' offsets are committed.
	afterCommit func(committed []*batch)
}

func (o *Options) setDefaults() {
	if o.Group == "" {
		// A Dedicated tenant's processor has a group of its own: a member of the shared
		// group would be handed other tenants' partitions, and the shared processor must
		// not get this one's.
		o.Group = naming.ProcessorGroup(o.Tenant, o.Tenant != "")
	}
	if o.SessionTimeout == 0 {
		o.SessionTimeout = DefaultSessionTimeout
	}
	if o.BatchMaxRecords == 0 {
		o.BatchMaxRecords = DefaultBatchMaxRecords
	}
	if o.BatchMaxBytes == 0 {
		o.BatchMaxBytes = DefaultBatchMaxBytes
	}
	if o.BatchMaxWait == 0 {
		o.BatchMaxWait = DefaultBatchMaxWait
	}
	if o.RetryMin == 0 {
		o.RetryMin = DefaultRetryMin
	}
	if o.RetryMax == 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.SinkTimeout == 0 {
		o.SinkTimeout = DefaultSinkTimeout
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.TopicRefresh == 0 {
		o.TopicRefresh = DefaultTopicRefresh
	}
	if o.FlushConcurrency == 0 {
		o.FlushConcurrency = DefaultFlushConcurrency
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

var tenantTopic = regexp.MustCompile(naming.TopicPattern)

func (o *Options) validate() error {
	var errs []error
	if len(o.Brokers) == 0 {
		errs = append(errs, errors.New("no Kafka brokers"))
	}
	if o.Tenant != "" && !tenantTopic.MatchString(naming.Topic(o.Tenant)) {
		errs = append(errs, fmt.Errorf("tenant %q is not a tenant name", o.Tenant))
	}
	if o.BatchMaxRecords < 1 || o.BatchMaxBytes < 1 || o.BatchMaxWait < 0 {
		errs = append(errs, errors.New("batch limits must be positive"))
	}
	if o.RetryMin <= 0 || o.RetryMax < o.RetryMin {
		errs = append(errs, errors.New("retry backoff: need 0 < RetryMin <= RetryMax"))
	}
	if o.SessionTimeout < time.Second || o.SessionTimeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("session timeout %s: must be between 1s and 5m", o.SessionTimeout))
	}
	if o.SinkTimeout <= 0 || o.ShutdownTimeout <= 0 || o.TopicRefresh <= 0 || o.FlushConcurrency < 1 {
		errs = append(errs, errors.New("timeouts, topic refresh and flush concurrency must be positive"))
	}
	if o.Warehouse == nil || o.Lake == nil || o.Tenants == nil {
		errs = append(errs, errors.New("warehouse, lake and tenant info are required"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("processor options: %w", err)
	}
	return nil
}

// Processor consumes tenant topics into ClickHouse and the lake. Run it once.
type Processor struct {
	opts    Options
	log     *slog.Logger
	m       *metrics
	started atomic.Bool
	// running is set while the poll loop runs; lastCycle is when it last went round
	// (Unix nanoseconds), for Healthy.
	running   atomic.Bool
	lastCycle atomic.Int64

	// mu guards parts. The poll loop holds it from the end of a poll until the cycle's
	// offsets are committed, and the group's rebalance callbacks take it, so a partition is
	// never dropped while its batch is being written and committed.
	mu    sync.Mutex
	parts map[topicPartition]*partition
	// skipped are topics of Dedicated tenants, which the shared processor leaves to
	// theirs: paused and never committed.
	skipped map[string]bool
}

// partition is what the processor holds for one assigned partition.
type partition struct {
	tenant string
	// buf holds records not yet in a batch; bufBytes their size, since when the first
	// arrived.
	buf      []*kgo.Record
	bufBytes int
	since    time.Time
	// pending is a batch that failed, retried at retryAt.
	pending *batch
	retryAt time.Time
	// paused: the partition's fetching is paused, while a batch waits for a retry or the
	// buffer holds two batches already (see syncPaused).
	paused bool
	// intent is the range of a batch a previous owner was writing; the first batch is cut
	// at exactly its end.
	intent      *intent
	intentSince time.Time
	// storedThrough is the last offset whose record may be stored already (by a previous
	// owner, or by this processor before its fetch went back): batches reaching down to
	// it look up every event. -1 is none; lookToEnd is not known yet, set at the first
	// fetch to the end of the log then.
	storedThrough int64
	// highWatermark and position (the next offset to commit) give the lag.
	highWatermark, position int64
}

// New checks the options and registers the metrics.
func New(opts Options) (*Processor, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Processor{opts: opts, log: opts.Logger, m: m, parts: map[topicPartition]*partition{}, skipped: map[string]bool{}}, nil
}

// errNotRunTwice guards against a second Run, whose partition state would be stale.
var errNotRunTwice = errors.New("processor: Run may be called only once")

// Run consumes until ctx ends, then writes and commits what it holds (within
// ShutdownTimeout) and leaves the group. It returns nil after such a shutdown, or the
// error that stopped it.
func (p *Processor) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errNotRunTwice
	}
	cl, err := kgo.NewClient(p.kafkaOptions()...)
	if err != nil {
		return fmt.Errorf("creating the Kafka client: %w", err)
	}
	defer func() {
		// Close leaves the group, whose revoke waits for polls to be released.
		cl.AllowRebalance()
		cl.Close()
	}()
	p.log.Info("processor starting", "group", p.opts.Group, "tenant", p.opts.Tenant, "brokers", p.opts.Brokers)
	p.lastCycle.Store(time.Now().UnixNano())
	p.running.Store(true)
	defer p.running.Store(false)
	return p.loop(ctx, cl)
}

// Healthy says whether Run is consuming: it runs, and its loop went round recently (a
// cycle takes at most about three sink timeouts: the range commit, the writes and the
// offset commit).
func (p *Processor) Healthy() error {
	if !p.running.Load() {
		return errors.New("the processor is not running")
	}
	last := time.Unix(0, p.lastCycle.Load())
	if limit := 3*p.opts.SinkTimeout + p.opts.BatchMaxWait + time.Minute; time.Since(last) > limit {
		return fmt.Errorf("the processor's loop has not gone round since %s", last.UTC().Format(time.RFC3339))
	}
	return nil
}

func (p *Processor) kafkaOptions() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(p.opts.Brokers...),
		kgo.ConsumerGroup(p.opts.Group),
		kgo.SessionTimeout(p.opts.SessionTimeout),
		kgo.HeartbeatInterval(p.opts.SessionTimeout / 10),
		kgo.DisableAutoCommit(),
		// Offsets are committed only between polls, for batches written, and callbacks run
		// only then too.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(p.onAssigned),
		kgo.OnPartitionsRevoked(p.onRevoked),
		kgo.OnPartitionsLost(p.onRevoked),
		// A partition without a commit is read from its start: its first events must not
		// be skipped.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMaxAge(p.opts.TopicRefresh),
		kgo.MetadataMinAge(min(p.opts.TopicRefresh, 5*time.Second)),
		kgo.FetchMaxPartitionBytes(int32(min(p.opts.BatchMaxBytes, 64<<20))),
		kgo.FetchMaxWait(time.Second),
	}
	if p.opts.Tenant != "" {
		opts = append(opts, kgo.ConsumeTopics(naming.Topic(p.opts.Tenant)))
	} else {
		opts = append(opts, kgo.ConsumeRegex(), kgo.ConsumeTopics(naming.TopicPattern))
	}
	return append(opts, p.opts.KafkaOptions...)
}

// loop polls, cuts and writes batches and commits them until ctx ends.
func (p *Processor) loop(ctx context.Context, cl *kgo.Client) error {
	for {
		if ctx.Err() != nil {
			return p.drain(cl)
		}
		fetches := p.poll(ctx, cl)
		if fetches.IsClientClosed() {
			return errors.New("the Kafka client was closed")
		}
		p.mu.Lock()
		p.absorb(fetches)
		p.syncPaused(cl)
		due := p.cutDue(time.Now(), false)
		// Batches already cut are finished even if ctx ends meanwhile: a shutdown waits
		// for them instead of failing them.
		err := p.flush(context.WithoutCancel(ctx), cl, due)
		p.syncPaused(cl)
		p.updateLag()
		p.mu.Unlock()
		cl.AllowRebalance()
		if err != nil {
			return err
		}
		p.lastCycle.Store(time.Now().UnixNano())
	}
}

// poll waits for records until the next batch is due. It takes everything the client
// has fetched, so every partition with a full batch is cut in the same cycle and the
// partitions' batches are written side by side; syncPaused bounds what that buffers.
func (p *Processor) poll(ctx context.Context, cl *kgo.Client) kgo.Fetches {
	p.mu.Lock()
	wake := p.nextDue(time.Now())
	p.mu.Unlock()
	wait := time.Until(wake)
	if wait <= 0 {
		// Something is due: take what is buffered without waiting.
		return cl.PollFetches(nil) //nolint:staticcheck // nil means do not block
	}
	pctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	return cl.PollFetches(pctx)
}

// syncPaused pauses fetching the partitions that should not take more records and
// resumes the others: a partition waiting to retry a batch, or whose buffer already
// holds two batches (what the next cycle writes and the one after), so a partition
// fetched faster than it is written holds at most about two batches and one fetch.
// The client drops what it fetched of a paused partition without moving its position,
// so nothing is skipped: it is fetched again on resume.
func (p *Processor) syncPaused(cl *kgo.Client) {
	var pause, resume map[string][]int32
	for tp, pt := range p.parts {
		want := pt.pending != nil || len(pt.buf) >= 2*p.opts.BatchMaxRecords || pt.bufBytes >= 2*p.opts.BatchMaxBytes
		if want == pt.paused {
			continue
		}
		m := &resume
		if want {
			m = &pause
		}
		if *m == nil {
			*m = map[string][]int32{}
		}
		(*m)[tp.topic] = append((*m)[tp.topic], tp.partition)
		pt.paused = want
	}
	if pause != nil {
		cl.PauseFetchPartitions(pause)
	}
	if resume != nil {
		cl.ResumeFetchPartitions(resume)
	}
}

// nextDue is when the earliest buffered batch or retry is due; at most BatchMaxWait away,
// so new partitions are looked at.
func (p *Processor) nextDue(now time.Time) time.Time {
	next := now.Add(p.opts.BatchMaxWait)
	for _, pt := range p.parts {
		var at time.Time
		switch {
		case pt.pending != nil:
			at = pt.retryAt
		case len(pt.buf) == 0:
			continue
		case pt.intent != nil:
			at = pt.intentSince.Add(intentPatience)
			if pt.buf[len(pt.buf)-1].Offset >= pt.intent.last {
				at = now
			}
		case len(pt.buf) >= p.opts.BatchMaxRecords || pt.bufBytes >= p.opts.BatchMaxBytes:
			at = now
		default:
			at = pt.since.Add(p.opts.BatchMaxWait)
		}
		if at.Before(next) {
			next = at
		}
	}
	return next
}

// absorb appends polled records to their partitions' buffers.
func (p *Processor) absorb(fetches kgo.Fetches) {
	fetches.EachError(func(topic string, partition int32, err error) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return
		}
		p.log.Warn("fetch error", "topic", topic, "partition", partition, "err", err)
	})
	now := time.Now()
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		tenant, ok := naming.TenantFromTopic(fp.Topic)
		if !ok || p.skipped[fp.Topic] {
			return // the pattern matches tenant topics only
		}
		tp := topicPartition{fp.Topic, fp.Partition}
		pt := p.parts[tp]
		if pt == nil {
			pt = &partition{position: -1, storedThrough: lookToEnd}
			p.parts[tp] = pt
		}
		pt.tenant = tenant
		pt.highWatermark = fp.HighWatermark
		if pt.storedThrough == lookToEnd && fp.Err == nil {
			pt.storedThrough = fp.HighWatermark - 1
		}
		for _, r := range fp.Records {
			if n := len(pt.buf); n > 0 && r.Offset <= pt.buf[n-1].Offset {
				// Fetching went back (a reset after a lost partition): start again from
				// here rather than buffer a record twice, and look up what may be stored.
				pt.storedThrough = max(pt.storedThrough, pt.buf[n-1].Offset)
				pt.buf, pt.bufBytes = nil, 0
			}
			if pt.position >= 0 && r.Offset < pt.position {
				pt.storedThrough = max(pt.storedThrough, pt.position-1)
			}
			if len(pt.buf) == 0 {
				pt.since = now
			}
			if pt.position < 0 {
				pt.position = r.Offset
			}
			pt.buf = append(pt.buf, r)
			pt.bufBytes += recordSize(r)
		}
	})
}

func recordSize(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// cutDue returns the batches to write now: retries whose backoff passed and new batches
// of full or old enough buffers. draining cuts whatever is buffered.
func (p *Processor) cutDue(now time.Time, draining bool) []*batch {
	var due []*batch
	for tp, pt := range p.parts {
		if b := p.cut(tp, pt, now, draining); b != nil {
			due = append(due, b)
		}
	}
	return due
}

func (p *Processor) cut(tp topicPartition, pt *partition, now time.Time, draining bool) *batch {
	if pt.pending != nil {
		if draining || !now.Before(pt.retryAt) {
			return pt.pending
		}
		return nil
	}
	if len(pt.buf) == 0 {
		return nil
	}
	if in := pt.intent; in != nil {
		if pt.buf[0].Offset > in.last {
			pt.intent = nil // its records are gone; nothing to match
		} else {
			if pt.buf[len(pt.buf)-1].Offset < in.last {
				if now.Sub(pt.intentSince) < intentPatience || draining {
					return nil
				}
				p.log.Warn("records of an interrupted batch did not come back; cutting batches as usual",
					"topic", tp.topic, "partition", tp.partition, "first", in.first, "last", in.last)
				pt.intent = nil
			} else {
				n := 0
				for n < len(pt.buf) && pt.buf[n].Offset <= in.last {
					n++
				}
				pt.intent = nil
				b := p.take(tp, pt, n, now)
				// The range is already the partition's commit metadata.
				b.intentCommitted = b.first() == in.first
				return b
			}
		}
	}
	full := len(pt.buf) >= p.opts.BatchMaxRecords || pt.bufBytes >= p.opts.BatchMaxBytes
	if !full && !draining && now.Sub(pt.since) < p.opts.BatchMaxWait {
		return nil
	}
	n, size := 0, 0
	for n < len(pt.buf) && n < p.opts.BatchMaxRecords {
		s := recordSize(pt.buf[n])
		if n > 0 && size+s > p.opts.BatchMaxBytes {
			break
		}
		size += s
		n++
	}
	return p.take(tp, pt, n, now)
}

// take cuts the first n buffered records into a batch.
func (p *Processor) take(tp topicPartition, pt *partition, n int, now time.Time) *batch {
	b := &batch{tp: tp, tenant: pt.tenant, records: pt.buf[:n:n], cut: now}
	b.mayBeStored = pt.storedThrough == lookToEnd || b.first() <= pt.storedThrough
	rest := pt.buf[n:]
	pt.buf = nil
	pt.bufBytes = 0
	if len(rest) > 0 {
		pt.buf = append(make([]*kgo.Record, 0, len(rest)), rest...)
		for _, r := range rest {
			pt.bufBytes += recordSize(r)
		}
	}
	return b
}

// flush writes the due batches and commits those written. A partition whose batch is
// written and which holds another full batch goes on with it at once, within one batch
// wait from the start, instead of waiting for the other partitions' batches (and the
// range commit of the next batch commits the one written). Failed batches stay pending
// for a retry; only a test's crash hook makes it return an error.
func (p *Processor) flush(ctx context.Context, cl *kgo.Client, due []*batch) error {
	if len(due) == 0 {
		return nil
	}
	due = p.resolveTenants(ctx, cl, due)
	due = p.recordRanges(ctx, cl, due)
	if len(due) == 0 {
		return nil
	}

	type result struct {
		b     *batch
		stage string
		err   error
	}
	results := make(chan result)
	sem := make(chan struct{}, p.opts.FlushConcurrency)
	inFlight := 0
	launch := func(b *batch) {
		inFlight++
		go func() {
			sem <- struct{}{}
			stage, err := p.write(ctx, b)
			<-sem
			results <- result{b, stage, err}
		}()
	}
	for _, b := range due {
		launch(b)
	}
	goOnUntil := time.Now().Add(p.opts.BatchMaxWait)
	var crash error
	for inFlight > 0 {
		r := <-results
		inFlight--
		b := r.b
		if r.err != nil {
			p.m.failures.WithLabelValues(r.stage).Inc()
			p.failed(cl, b, r.stage, r.err)
			continue
		}
		if crash != nil {
			continue // a test's crash: nothing more is committed
		}
		if p.opts.beforeCommit != nil {
			if crash = p.opts.beforeCommit([]*batch{b}); crash != nil {
				continue
			}
		}
		p.written(b)
		pt := p.parts[b.tp]
		var next *batch
		if now := time.Now(); pt != nil && now.Before(goOnUntil) {
			if next = p.cut(b.tp, pt, now, false); next != nil {
				next.info = b.info
			}
		}
		last := b.records[len(b.records)-1]
		offset := commitOffset{at: last.Offset + 1, epoch: last.LeaderEpoch, metadata: writtenMetadata}
		if next != nil && !next.intentCommitted {
			offset.metadata = intent{next.first(), next.last()}.metadata()
		}
		if err := p.commit(ctx, cl, map[topicPartition]commitOffset{b.tp: offset}); err != nil {
			// The batch is stored, so it is not written again here: a later commit of the
			// partition covers it, or whoever takes the partition over rewrites it under
			// the same keys.
			p.m.failures.WithLabelValues(stageCommit).Inc()
			p.log.Warn("committing a written batch failed", "topic", b.tp.topic, "partition", b.tp.partition, "err", err)
			if next != nil {
				p.failed(cl, next, stageCommit, fmt.Errorf("recording the batch range: %w", err))
			}
			continue
		}
		if p.opts.afterCommit != nil {
			p.opts.afterCommit([]*batch{b})
		}
		if next != nil {
			next.intentCommitted = true
			launch(next)
		}
	}
	return crash
}

// recordRanges stores each new batch's range as its partition's commit metadata before
// it is written, so whoever replays it cuts it the same way. It returns the batches to
// write: those whose range could not be stored wait for a retry.
func (p *Processor) recordRanges(ctx context.Context, cl *kgo.Client, due []*batch) []*batch {
	var fresh []*batch
	for _, b := range due {
		if !b.intentCommitted {
			fresh = append(fresh, b)
		}
	}
	if len(fresh) == 0 {
		return due
	}
	offsets := make(map[topicPartition]commitOffset, len(fresh))
	for _, b := range fresh {
		offsets[b.tp] = commitOffset{at: b.first(), epoch: -1, metadata: intent{b.first(), b.last()}.metadata()}
	}
	if err := p.commit(ctx, cl, offsets); err != nil {
		p.m.failures.WithLabelValues(stageCommit).Inc()
		for _, b := range fresh {
			p.failed(cl, b, stageCommit, fmt.Errorf("recording the batch range: %w", err))
		}
		return without(due, fresh)
	}
	for _, b := range fresh {
		b.intentCommitted = true
	}
	return due
}

// written counts a stored batch and moves its partition past it.
func (p *Processor) written(b *batch) {
	p.m.batches.Inc()
	p.m.rows.Add(float64(b.inserted))
	p.m.duplicates.Add(float64(len(b.events) - b.inserted))
	p.m.quarantined.Add(float64(len(b.quarantine)))
	p.m.latency.Observe(time.Since(b.cut).Seconds())
	pt := p.parts[b.tp]
	if pt == nil {
		return
	}
	pt.pending = nil
	pt.position = b.last() + 1
	if b.attempts > 0 {
		p.log.Info("batch written after retries", "topic", b.tp.topic, "partition", b.tp.partition,
			"first", b.first(), "last", b.last(), "attempts", b.attempts+1)
	}
}

func without(all, drop []*batch) []*batch {
	out := all[:0:0]
	for _, b := range all {
		keep := true
		for _, d := range drop {
			if b == d {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, b)
		}
	}
	return out
}

// resolveTenants looks up the tenant of each batch (cached), keeping the batches to
// write: a failed lookup is retried like a failed write, and a Dedicated tenant's topic
// is left to its own processor.
func (p *Processor) resolveTenants(ctx context.Context, cl *kgo.Client, due []*batch) []*batch {
	keep := due[:0]
	for _, b := range due {
		tctx, cancel := context.WithTimeout(ctx, p.opts.SinkTimeout)
		info, err := p.opts.Tenants.Tenant(tctx, b.tenant)
		cancel()
		switch {
		case err != nil:
			p.m.failures.WithLabelValues(stageTenant).Inc()
			p.failed(cl, b, stageTenant, fmt.Errorf("reading tenant %s: %w", b.tenant, err))
		case info.Dedicated && p.opts.Tenant == "":
			p.skip(cl, b.tp.topic, b.tenant)
		default:
			b.info = info
			keep = append(keep, b)
		}
	}
	return keep
}

// skip leaves a Dedicated tenant's topic to its own processor: fetching it stops, what is
// held of it is dropped, and nothing of it is committed. Isolation cannot change, so this
// lasts as long as the processor.
func (p *Processor) skip(cl *kgo.Client, topic, tenant string) {
	if !p.skipped[topic] {
		p.log.Info("leaving a Dedicated tenant's topic to its own processor", "tenant", tenant, "topic", topic)
	}
	p.skipped[topic] = true
	cl.PauseFetchTopics(topic)
	for tp := range p.parts {
		if tp.topic == topic {
			delete(p.parts, tp)
		}
	}
}

// failed keeps b for a retry after backoff; its partition is paused meanwhile.
func (p *Processor) failed(cl *kgo.Client, b *batch, stage string, err error) {
	b.attempts++
	backoff := p.opts.RetryMin << min(b.attempts-1, 20)
	if backoff > p.opts.RetryMax || backoff <= 0 {
		backoff = p.opts.RetryMax
	}
	p.log.Warn("writing a batch failed; retrying it", "stage", stage, "tenant", b.tenant,
		"topic", b.tp.topic, "partition", b.tp.partition, "first", b.first(), "last", b.last(),
		"attempt", b.attempts, "backoff", backoff, "err", err)
	pt := p.parts[b.tp]
	if pt == nil {
		return
	}
	pt.pending = b
	pt.retryAt = time.Now().Add(backoff)
	p.syncPaused(cl)
}

// write stores one batch: quarantine and events into ClickHouse, and the events into the
// lake under the tenant's prefix, at the same time. Parts that succeeded before are not
// written again. It returns the failing stage with the error.
func (p *Processor) write(ctx context.Context, b *batch) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.SinkTimeout)
	defer cancel()
	b.decode()
	db := naming.Database(b.tenant)
	var wg sync.WaitGroup
	var chErr, lakeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		if !b.quarantineDone && len(b.quarantine) > 0 {
			if chErr = p.opts.Warehouse.InsertQuarantine(ctx, db, b.quarantine); chErr != nil {
				return
			}
		}
		b.quarantineDone = true
		if !b.eventsDone && len(b.events) > 0 {
			if b.inserted, chErr = p.opts.Warehouse.InsertEvents(ctx, db, b.events, b.mayBeStored || b.attempts > 0); chErr != nil {
				return
			}
		}
		b.eventsDone = true
	}()
	if !b.lakeDone && len(b.events) > 0 {
		if b.lakeBody == nil {
			if b.lakeBody, lakeErr = encodeNDJSON(b.lines); lakeErr != nil {
				lakeErr = fmt.Errorf("encoding the lake object: %w", lakeErr)
			}
		}
		if lakeErr == nil {
			if lakeErr = p.opts.Lake.PutObject(ctx, b.lakeKey(naming.LakePrefix(b.info.LakeClass, b.tenant)), b.lakeBody, LakeContentType); lakeErr == nil {
				b.lakeDone = true
				b.lakeBody = nil
				p.m.lakeObjects.Inc()
			}
		}
	} else {
		b.lakeDone = true
	}
	wg.Wait()
	switch {
	case chErr != nil:
		return stageClickHouse, chErr
	case lakeErr != nil:
		return stageLake, lakeErr
	}
	return "", nil
}

// commitOffset is one partition's offset to commit, with its metadata.
type commitOffset struct {
	at       int64
	epoch    int32
	metadata string
}

// commit commits offsets synchronously, with their metadata, and returns the first error
// of the request or of any partition.
func (p *Processor) commit(ctx context.Context, cl *kgo.Client, offsets map[topicPartition]commitOffset) error {
	uncommitted := map[string]map[int32]kgo.EpochOffset{}
	for tp, o := range offsets {
		if uncommitted[tp.topic] == nil {
			uncommitted[tp.topic] = map[int32]kgo.EpochOffset{}
		}
		uncommitted[tp.topic][tp.partition] = kgo.EpochOffset{Epoch: o.epoch, Offset: o.at}
	}
	// Every commit sets the metadata: a batch's range before it is written, writtenMetadata
	// after.
	ctx = kgo.PreCommitFnContext(context.WithoutCancel(ctx), func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			t := &req.Topics[i]
			for j := range t.Partitions {
				md := offsets[topicPartition{t.Topic, t.Partitions[j].Partition}].metadata
				t.Partitions[j].Metadata = &md
			}
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(ctx, p.opts.SinkTimeout)
	defer cancel()
	var cerr error
	cl.CommitOffsetsSync(ctx, uncommitted, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, pr := range t.Partitions {
				if err := kerr.ErrorForCode(pr.ErrorCode); err != nil && cerr == nil {
					cerr = fmt.Errorf("%s[%d]: %w", t.Topic, pr.Partition, err)
				}
			}
		}
	})
	return cerr
}

// updateLag sets the lag gauge from the last fetch of each partition, and the buffered
// gauge.
func (p *Processor) updateLag() {
	var lag, buffered int64
	for _, pt := range p.parts {
		if pt.position >= 0 && pt.highWatermark > pt.position {
			lag += pt.highWatermark - pt.position
		}
		buffered += int64(len(pt.buf))
		if pt.pending != nil {
			buffered += int64(len(pt.pending.records))
		}
	}
	p.m.lag.Set(float64(lag))
	p.m.buffered.Set(float64(buffered))
}

// drain writes and commits what is buffered, within ShutdownTimeout, retrying failures
// until then; what is still not written stays uncommitted for the next owner.
func (p *Processor) drain(cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.ShutdownTimeout)
	defer cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		due := p.cutDue(time.Now(), true)
		if len(due) == 0 {
			p.log.Info("processor stopped; everything buffered is written and committed")
			return nil
		}
		if err := p.flush(ctx, cl, due); err != nil {
			return err
		}
		pending := 0
		for _, pt := range p.parts {
			if pt.pending != nil {
				pending++
			}
		}
		if pending == 0 {
			continue
		}
		select {
		case <-ctx.Done():
			p.log.Warn("stopping with batches not written; they stay uncommitted", "partitions", pending)
			return nil
		case <-time.After(p.opts.RetryMin):
		}
	}
}

// onAssigned reads, for the partitions just assigned, the range of any batch the previous
// owner was writing when it stopped.
func (p *Processor) onAssigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	if len(assigned) == 0 {
		return
	}
	topics := make([]string, 0, len(assigned))
	for t := range assigned {
		topics = append(topics, t)
	}
	var committed kadm.OffsetResponses
	var err error
	for attempt := range 3 {
		fctx, cancel := context.WithTimeout(ctx, p.opts.SinkTimeout)
		committed, err = kadm.NewClient(cl).FetchOffsetsForTopics(fctx, p.opts.Group, topics...)
		cancel()
		if err == nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * p.opts.RetryMin)
	}
	if err != nil {
		p.log.Warn("reading the commit metadata of assigned partitions failed; a replayed batch may be cut differently", "err", err)
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for topic, nums := range assigned {
		tenant, _ := naming.TenantFromTopic(topic)
		for _, num := range nums {
			// Unless the commit says otherwise, anything up to the end of the log may be
			// stored already: an offset set back by hand, a group deleted, metadata not read.
			pt := &partition{tenant: tenant, position: -1, storedThrough: lookToEnd}
			p.parts[topicPartition{topic, num}] = pt
			o, ok := committed.Lookup(topic, num)
			if !ok || o.Err != nil {
				continue
			}
			if o.Metadata == writtenMetadata {
				pt.storedThrough = -1 // nothing from the committed offset on is stored
				continue
			}
			in, ok, perr := parseIntent(o.Metadata)
			switch {
			case perr != nil:
				p.log.Warn("ignoring commit metadata", "topic", topic, "partition", num, "err", perr)
			case ok && in.first == o.At:
				pt.intent, pt.intentSince = &in, now
				pt.storedThrough = in.last
				p.log.Info("replaying an interrupted batch", "topic", topic, "partition", num, "first", in.first, "last", in.last)
			}
		}
	}
}

// onRevoked forgets revoked or lost partitions: their buffered records are uncommitted,
// so their next owner reads them again.
func (p *Processor) onRevoked(_ context.Context, cl *kgo.Client, revoked map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	resume := map[string][]int32{}
	for topic, partitions := range revoked {
		for _, partition := range partitions {
			tp := topicPartition{topic, partition}
			if pt := p.parts[tp]; pt != nil && pt.paused {
				resume[topic] = append(resume[topic], partition)
			}
			delete(p.parts, tp)
		}
	}
	if len(resume) > 0 {
		cl.ResumeFetchPartitions(resume)
	}
	p.updateLag()
}
