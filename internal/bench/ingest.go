package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoal-dev/shoal/internal/kafka"
	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/runtime/events"
	"github.com/shoal-dev/shoal/runtime/ingest"
)

// IngestTarget is the ingest target: events/s through the ingest API at least this share
// of a raw franz-go producer's into the same broker.
const IngestTarget = 0.8

// IngestOptions configure the ingest benchmark.
type IngestOptions struct {
	// Kafka is the broker to produce to; nil or without brokers starts kfake in this
	// process.
	Kafka *kafka.Config
	// Partitions of the benchmark tenant's topic. Default 3.
	Partitions int32
	// EventsPerRequest is the events of one ingest request, and of one raw ProduceSync
	// call. Default 100.
	EventsPerRequest int
	// Concurrency is how many requests (or produce calls) are in flight. Default 4 per
	// CPU.
	Concurrency int
	// Phase is how long each side runs per round. Default 5s.
	Phase time.Duration
	// Rounds alternate the sides (raw, the HTTP floor, then ingest), so a machine whose
	// speed drifts during the run weighs on all alike. Default 2.
	Rounds int
	// Warmup runs each side this long, uncounted, before the first round. Default 1s.
	Warmup time.Duration
	// Progress receives a line per phase.
	Progress io.Writer
}

func (o *IngestOptions) setDefaults() {
	if o.Partitions <= 0 {
		o.Partitions = 3
	}
	if o.EventsPerRequest <= 0 {
		o.EventsPerRequest = 100
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4 * runtime.GOMAXPROCS(0)
	}
	if o.Phase <= 0 {
		o.Phase = 5 * time.Second
	}
	if o.Rounds <= 0 {
		o.Rounds = 2
	}
	if o.Warmup < 0 {
		o.Warmup = 0
	} else if o.Warmup == 0 {
		o.Warmup = time.Second
	}
}

// Throughput is what one side of a comparison did over all its rounds.
type Throughput struct {
	Events          int64   `json:"events"`
	Seconds         float64 `json:"seconds"`
	EventsPerSecond float64 `json:"eventsPerSecond"`
	// CPUSeconds is the CPU time this whole process used meanwhile (the broker too, when
	// it runs in this process), and CPUMicrosPerEvent that per event: on a machine shared
	// with other work it is steadier than events/s.
	CPUSeconds        float64 `json:"cpuSeconds"`
	CPUMicrosPerEvent float64 `json:"cpuMicrosPerEvent"`
}

func (t *Throughput) add(events int64, elapsed, cpu time.Duration) {
	t.Events += events
	t.Seconds += elapsed.Seconds()
	t.CPUSeconds += cpu.Seconds()
	if t.Seconds > 0 {
		t.EventsPerSecond = float64(t.Events) / t.Seconds
	}
	if t.Events > 0 {
		t.CPUMicrosPerEvent = t.CPUSeconds * 1e6 / float64(t.Events)
	}
}

// processCPU is the CPU time, user and system, this process used so far; 0 where the
// system does not say.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// IngestReport is what one run of the ingest benchmark measured.
type IngestReport struct {
	Broker           string      `json:"broker"`
	CPUs             int         `json:"cpus"`
	LoadAverage      LoadAverage `json:"loadAverage"`
	Partitions       int32       `json:"partitions"`
	EventBytes       int         `json:"eventBytes"`
	EventProperties  int         `json:"eventProperties"`
	EventsPerRequest int         `json:"eventsPerRequest"`
	RequestBytes     int         `json:"requestBytes"`
	Concurrency      int         `json:"concurrency"`
	Rounds           int         `json:"rounds"`
	PhaseSeconds     float64     `json:"phaseSeconds"`
	// ProducerBatching says how both sides hand records to the producer.
	ProducerBatching string     `json:"producerBatching"`
	Raw              Throughput `json:"raw"`
	// Floor is the least any HTTP ingest server costs, measured in the same run: a
	// server that reads each request's body and produces the raw side's prepared
	// records, then answers as ingest does, without decoding, checking or encoding.
	Floor  Throughput `json:"floor"`
	Ingest Throughput `json:"ingest"`
	// Ratio is Ingest.EventsPerSecond / Raw.EventsPerSecond.
	Ratio float64 `json:"ratio"`
	// FloorRatio is Floor.EventsPerSecond / Raw.EventsPerSecond: the most any ingest
	// API could reach here, what the HTTP hop costs. IngestOfFloor is
	// Ingest.EventsPerSecond / Floor.EventsPerSecond: what authentication, decoding,
	// validation, rate limiting and encoding cost.
	FloorRatio    float64 `json:"floorRatio"`
	IngestOfFloor float64 `json:"ingestOfFloor"`
	// CPURatio is Raw.CPUMicrosPerEvent / Ingest.CPUMicrosPerEvent: the ratio the rates
	// would have where both sides are bound by this process's CPU.
	CPURatio float64 `json:"cpuRatio"`
	Target   float64 `json:"target"`
}

// producerBatching describes what both sides share: the ingest server's producer options
// and one ProduceSync per request.
func producerBatching(perCall int) string {
	return fmt.Sprintf("one ProduceSync of %d records per request/call; franz-go client as ingest.ClientOptions "+
		"(acks=all, idempotent, linger 10ms cut short by ProduceSync, max batch 1000012 bytes, snappy)", perCall)
}

// RunIngest measures events/s through the ingest API (HTTP, auth, decoding, validation,
// rate limiting, encoding, producing, waiting for acks) against a raw franz-go producer
// writing the same events, already encoded, with the same client options, the same
// records per produce call and the same concurrency into the same broker.
func RunIngest(ctx context.Context, opts IngestOptions) (*IngestReport, error) {
	opts.setDefaults()
	b, err := openBroker(opts.Kafka)
	if err != nil {
		return nil, err
	}
	defer b.close()
	tenant := runTenant("ingest", time.Now())
	if err := b.createTopic(ctx, tenant, opts.Partitions, ingestTopicConfigs()); err != nil {
		return nil, err
	}
	defer func() { _ = b.deleteTopic(context.WithoutCancel(ctx), tenant) }()
	progressf(opts.Progress, "ingest: broker %s, topic %s (%d partitions)", b.name(), naming.Topic(tenant), opts.Partitions)

	evs := SampleEvents(opts.EventsPerRequest, time.Now(), func(i int) string { return fmt.Sprintf("s-%05d", i) })
	eventBytes, err := wireSize(evs)
	if err != nil {
		return nil, err
	}
	body, err := requestBody(evs)
	if err != nil {
		return nil, err
	}

	raw, err := newRawSide(b.cfg, tenant, evs)
	if err != nil {
		return nil, err
	}
	defer raw.close()
	floor, err := newFloorSide(b.cfg, tenant, evs, body, opts.Concurrency)
	if err != nil {
		return nil, err
	}
	defer floor.close()
	api, err := newIngestSide(b.cfg, tenant, body, opts.EventsPerRequest, opts.Concurrency)
	if err != nil {
		return nil, err
	}
	defer api.close()

	report := &IngestReport{
		LoadAverage: LoadAverage{Start: loadAverage1()},
		Broker:      b.name(), CPUs: runtime.NumCPU(), Partitions: opts.Partitions,
		EventBytes: eventBytes, EventProperties: 8, EventsPerRequest: opts.EventsPerRequest, RequestBytes: len(body),
		Concurrency: opts.Concurrency, Rounds: opts.Rounds, PhaseSeconds: opts.Phase.Seconds(),
		ProducerBatching: producerBatching(opts.EventsPerRequest), Target: IngestTarget,
	}
	sides := []struct {
		name string
		call func(context.Context) error
		into *Throughput
	}{
		{"raw producer", raw.call, &report.Raw},
		{"HTTP floor", floor.call, &report.Floor},
		{"ingest API", api.call, &report.Ingest},
	}
	if opts.Warmup > 0 {
		for _, s := range sides {
			if _, _, err := drive(ctx, opts.Concurrency, opts.Warmup, s.call); err != nil {
				return nil, fmt.Errorf("warming up the %s: %w", s.name, err)
			}
		}
	}
	for round := 1; round <= opts.Rounds; round++ {
		for _, s := range sides {
			cpu := processCPU()
			calls, elapsed, err := drive(ctx, opts.Concurrency, opts.Phase, s.call)
			if err != nil {
				return nil, fmt.Errorf("%s, round %d: %w", s.name, round, err)
			}
			cpu = processCPU() - cpu
			n := calls * int64(opts.EventsPerRequest)
			s.into.add(n, elapsed, cpu)
			progressf(opts.Progress, "ingest: round %d %-12s %9.0f events/s %6.2f µs CPU/event", round, s.name,
				float64(n)/elapsed.Seconds(), cpu.Seconds()*1e6/float64(max(n, 1)))
		}
	}
	if report.Raw.EventsPerSecond > 0 {
		report.Ratio = report.Ingest.EventsPerSecond / report.Raw.EventsPerSecond
		report.FloorRatio = report.Floor.EventsPerSecond / report.Raw.EventsPerSecond
	}
	if report.Floor.EventsPerSecond > 0 {
		report.IngestOfFloor = report.Ingest.EventsPerSecond / report.Floor.EventsPerSecond
	}
	if report.Ingest.CPUMicrosPerEvent > 0 {
		report.CPURatio = report.Raw.CPUMicrosPerEvent / report.Ingest.CPUMicrosPerEvent
	}
	report.LoadAverage.End = loadAverage1()
	return report, nil
}

// ingestTopicConfigs bound what the benchmark's topic holds, which nothing reads: a
// broker that kept every event of the run in memory would spend more and more of the
// run growing and copying its segments, and its heap would make the garbage collector
// of this process (the broker's, when in-process) ever slower, charged to whichever side
// runs then. Small segments and a bounded log keep the broker's cost per event steady.
func ingestTopicConfigs() map[string]*string {
	segment, retention := strconv.Itoa(8<<20), strconv.Itoa(64<<20)
	return map[string]*string{"segment.bytes": &segment, "retention.bytes": &retention}
}

// drive runs call from concurrency goroutines until d has passed, and returns how many
// calls succeeded and how long until the last one returned. The first error stops it.
func drive(ctx context.Context, concurrency int, d time.Duration, call func(context.Context) error) (int64, time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var calls atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				if err := call(ctx); err != nil {
					cancel(err)
					return
				}
				calls.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return 0, 0, err
	}
	return calls.Load(), elapsed, nil
}

// rawSide produces prepared records straight with franz-go.
type rawSide struct {
	cl      *kgo.Client
	topic   string
	keys    [][]byte
	values  [][]byte
	headers []kgo.RecordHeader
}

func newRawSide(cfg kafka.Config, tenant string, evs []events.Event) (*rawSide, error) {
	cl, err := kgo.NewClient(ingest.ClientOptions(cfg)...)
	if err != nil {
		return nil, fmt.Errorf("creating the raw producer: %w", err)
	}
	r := &rawSide{cl: cl, topic: naming.Topic(tenant), headers: ingest.RecordHeaders(false)}
	for _, e := range evs {
		v, err := events.Marshal(e)
		if err != nil {
			cl.Close()
			return nil, err
		}
		r.keys, r.values = append(r.keys, []byte(e.EventID)), append(r.values, v)
	}
	return r, nil
}

// call produces one request's worth of records; a record may not be reused once
// produced, so each call makes its own, as ingest does.
func (r *rawSide) call(ctx context.Context) error {
	slab := make([]kgo.Record, len(r.keys))
	records := make([]*kgo.Record, len(r.keys))
	for i := range slab {
		slab[i] = kgo.Record{Topic: r.topic, Key: r.keys[i], Value: r.values[i], Headers: r.headers}
		records[i] = &slab[i]
	}
	return r.cl.ProduceSync(ctx, records...).FirstErr()
}

func (r *rawSide) close() { r.cl.Close() }

// httpSide posts a request body to a server on a loopback port. Its client is a lean
// HTTP/1.1 one (a prepared request written to a kept-alive connection, the answer's
// status line, headers and body read back), as a load generator such as wrk is: the
// benchmark runs in one process, and the CPU a general-purpose client spends would be
// taken from the server and charged to it.
type httpSide struct {
	server  *http.Server
	addr    string
	request []byte // the whole request, head and body
	want    []byte
	conns   chan *clientConn
	closed  func() // after the server is shut down
}

// newHTTPSide serves handler on a loopback port, to be posted body with key, each answer
// starting with want.
func newHTTPSide(handler http.Handler, key string, body, want []byte, concurrency int, closed func()) (*httpSide, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the benchmark's HTTP server: %w", err)
	}
	s := &httpSide{
		server:  &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second},
		addr:    ln.Addr().String(),
		request: httpRequest(ln.Addr().String(), key, body),
		want:    want,
		conns:   make(chan *clientConn, concurrency),
		closed:  closed,
	}
	go func() { _ = s.server.Serve(ln) }()
	return s, nil
}

// newIngestSide is the ingest server, with its own producer.
func newIngestSide(cfg kafka.Config, tenant string, body []byte, perRequest, concurrency int) (*httpSide, error) {
	producer, err := ingest.NewKafkaProducer(cfg)
	if err != nil {
		return nil, err
	}
	key := benchKey(tenant)
	handler, err := ingest.New(ingest.Options{
		Platform: benchPlatform(),
		Keys:     staticKeys{key: key, tenant: tenant},
		Producer: producer,
	})
	if err != nil {
		producer.Close()
		return nil, err
	}
	s, err := newHTTPSide(handler, key, body, fmt.Appendf(nil, `{"accepted":%d,`, perRequest), concurrency, producer.Close)
	if err != nil {
		producer.Close()
		return nil, err
	}
	return s, nil
}

// newFloorSide is the least an HTTP ingest server can do: read the body (into a buffer
// kept from request to request), produce the raw side's prepared records with a producer
// of its own, and answer what ingest answers, the events' ids, prepared too.
func newFloorSide(cfg kafka.Config, tenant string, evs []events.Event, body []byte, concurrency int) (*httpSide, error) {
	raw, err := newRawSide(cfg, tenant, evs)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.EventID
	}
	answer, err := json.Marshal(ingest.Result{Accepted: len(evs), Rejected: []events.Rejection{}, EventIDs: ids})
	if err != nil {
		raw.close()
		return nil, err
	}
	answer = append(answer, '\n')
	var bodies sync.Pool
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf, _ := bodies.Get().(*[]byte)
		if buf == nil {
			buf = new([]byte)
		}
		defer bodies.Put(buf)
		if r.ContentLength < 0 {
			http.Error(w, "the floor server reads bodies of a stated length", http.StatusLengthRequired)
			return
		}
		if n := int(r.ContentLength); cap(*buf) < n {
			*buf = make([]byte, n)
		}
		if _, err := io.ReadFull(r.Body, (*buf)[:r.ContentLength]); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := raw.call(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(answer)))
		_, _ = w.Write(answer)
	})
	s, err := newHTTPSide(handler, benchKey(tenant), body, fmt.Appendf(nil, `{"accepted":%d,`, len(evs)), concurrency, raw.close)
	if err != nil {
		raw.close()
		return nil, err
	}
	return s, nil
}

// httpRequest is the POST of body as a client sends it.
func httpRequest(host, key string, body []byte) []byte {
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: shoal-bench\r\nContent-Type: application/json\r\n"+
		"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", ingest.Path, host, key, len(body))
	return append([]byte(head), body...)
}

// clientConn is a kept-alive connection to the server.
type clientConn struct {
	c    net.Conn
	r    *bufio.Reader
	body []byte
}

// call posts the body and checks all its events were accepted.
func (s *httpSide) call(ctx context.Context) error {
	var cc *clientConn
	select {
	case cc = <-s.conns:
	default:
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", s.addr)
		if err != nil {
			return fmt.Errorf("connecting to the benchmark's HTTP server: %w", err)
		}
		cc = &clientConn{c: c, r: bufio.NewReaderSize(c, 16<<10)}
	}
	status, body, err := cc.roundTrip(s.request)
	if body == nil {
		body = cc.body
	}
	if err != nil {
		_ = cc.c.Close()
		return err
	}
	if status != http.StatusOK || !bytes.HasPrefix(body, s.want) {
		_ = cc.c.Close()
		return fmt.Errorf("the server answered %d: %.200s", status, body)
	}
	select {
	case s.conns <- cc:
	default:
		_ = cc.c.Close()
	}
	return nil
}

// roundTrip writes the request and reads the answer, which must state its length.
func (cc *clientConn) roundTrip(request []byte) (status int, body []byte, err error) {
	if err := cc.c.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		return 0, nil, err
	}
	if _, err := cc.c.Write(request); err != nil {
		return 0, nil, fmt.Errorf("sending a request: %w", err)
	}
	line, err := cc.r.ReadSlice('\n')
	if err != nil {
		return 0, nil, fmt.Errorf("reading the status line: %w", err)
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, nil, fmt.Errorf("unexpected status line %q", line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, nil, fmt.Errorf("unexpected status line %q", line)
	}
	length, chunked := -1, false
	for {
		line, err := cc.r.ReadSlice('\n')
		if err != nil {
			return 0, nil, fmt.Errorf("reading the answer's headers: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		switch {
		case ok && bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil {
				return 0, nil, fmt.Errorf("bad Content-Length %q", value)
			}
		case ok && bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(bytes.TrimSpace(value), []byte("chunked"))
		}
	}
	if chunked {
		return status, nil, cc.readChunked()
	}
	if length < 0 {
		return 0, nil, fmt.Errorf("answer %d with neither Content-Length nor chunks", status)
	}
	if cap(cc.body) < length {
		cc.body = make([]byte, length)
	}
	body = cc.body[:length]
	if _, err := io.ReadFull(cc.r, body); err != nil {
		return 0, nil, fmt.Errorf("reading the answer: %w", err)
	}
	return status, body, nil
}

// readChunked reads a chunked body into cc.body.
func (cc *clientConn) readChunked() error {
	cc.body = cc.body[:0]
	for {
		line, err := cc.r.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("reading a chunk size: %w", err)
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 32)
		if err != nil {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if size == 0 {
			_, err := cc.r.Discard(2) // the empty trailer
			return err
		}
		start := len(cc.body)
		cc.body = append(cc.body, make([]byte, size)...)
		if _, err := io.ReadFull(cc.r, cc.body[start:]); err != nil {
			return fmt.Errorf("reading a chunk: %w", err)
		}
		if _, err := cc.r.Discard(2); err != nil {
			return err
		}
	}
}

func (s *httpSide) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for len(s.conns) > 0 {
		_ = (<-s.conns).c.Close()
	}
	if err := s.server.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = s.server.Close()
	}
	s.closed()
}
