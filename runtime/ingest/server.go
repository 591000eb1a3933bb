package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/httpapi"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/runtime/events"
)

// Path is where events are posted.
const Path = "/api/v1/events/ingest"

// Defaults of Options.
const (
	DefaultKeyCacheTTL      = 5 * time.Second
	DefaultKeyCacheMaxStale = 5 * time.Minute
	DefaultAckTimeout       = 10 * time.Second
	DefaultLookupTimeout    = 3 * time.Second
)

// retryAfterUnavailable is the Retry-After, in seconds, of a 503: long enough not to
// hammer a recovering backend, short enough that clients catch up quickly.
const retryAfterUnavailable = 5

// KeyLookup resolves ingest keys; *metastore.Store implements it.
type KeyLookup interface {
	// LookupIngestKey returns the key's tenant, or an error wrapping
	// metastore.ErrNotFound for unknown and revoked keys and deleted tenants.
	LookupIngestKey(ctx context.Context, plaintext string) (tenantID string, suspended bool, err error)
	// GetTenant returns the tenant's row (plan, suspension and its reason).
	GetTenant(ctx context.Context, id string) (metastore.TenantRecord, error)
}

// Options configure a Server. Platform, Keys and Producer are required.
type Options struct {
	// Platform holds the plan catalog the tenants' limits come from.
	Platform *config.Platform
	// Keys resolves ingest keys to tenants.
	Keys KeyLookup
	// Producer writes records to Kafka; the server does not close it.
	Producer Producer
	// Registry receives the server's metrics and is what /metrics serves; a new one
	// when nil.
	Registry *prometheus.Registry
	// Logger receives failures of the backends; discarded when nil.
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// KeyCacheTTL is how long a key lookup is reused: a revoked key or a suspended
	// tenant is refused at most this long after the change. Default 5s.
	KeyCacheTTL time.Duration
	// KeyCacheMaxStale is how long past its TTL a cached lookup is still used while the
	// metadata store is unreachable. Default 5m; negative turns it off.
	KeyCacheMaxStale time.Duration
	// LookupTimeout bounds one lookup in the metadata store. Default 3s.
	LookupTimeout time.Duration
	// AckTimeout bounds the wait for Kafka's acknowledgements; past it the request is
	// 503. Default 10s.
	AckTimeout time.Duration
}

// Server is the ingest HTTP handler: the ingest endpoint, /healthz, /readyz and /metrics.
// It is safe for concurrent use.
type Server struct {
	opts     Options
	mux      *http.ServeMux
	keys     *keyCache
	limits   *planCatalog
	buckets  *httpapi.Buckets
	metrics  *metrics
	ready    *readiness
	producer Producer
	bufs     buffers
	// headers and headersAssigned are the records' headers, shared by all of them (the
	// producer only reads them): for an event_id the client gave, and one ingest assigned.
	headers, headersAssigned []kgo.RecordHeader
}

// New returns a Server, registering its metrics on opts.Registry.
func New(opts Options) (*Server, error) {
	switch {
	case opts.Platform == nil:
		return nil, errors.New("ingest: Options.Platform is required")
	case opts.Keys == nil:
		return nil, errors.New("ingest: Options.Keys is required")
	case opts.Producer == nil:
		return nil, errors.New("ingest: Options.Producer is required")
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.KeyCacheTTL <= 0 {
		opts.KeyCacheTTL = DefaultKeyCacheTTL
	}
	if opts.KeyCacheMaxStale == 0 {
		opts.KeyCacheMaxStale = DefaultKeyCacheMaxStale
	}
	if opts.LookupTimeout <= 0 {
		opts.LookupTimeout = DefaultLookupTimeout
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = DefaultAckTimeout
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:            opts,
		mux:             http.NewServeMux(),
		keys:            newKeyCache(opts.Keys, opts.Now, opts.KeyCacheTTL, max(opts.KeyCacheMaxStale, 0), opts.LookupTimeout),
		limits:          newPlanCatalog(opts.Platform.Plans),
		buckets:         httpapi.NewBuckets(),
		metrics:         m,
		ready:           newReadiness(opts.Producer.Ping, opts.Now),
		producer:        opts.Producer,
		headers:         RecordHeaders(false),
		headersAssigned: RecordHeaders(true),
	}
	s.mux.HandleFunc(Path, s.handleIngest)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	s.mux.HandleFunc("GET /readyz", s.handleReady)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{Registry: opts.Registry}))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, problem{Status: http.StatusNotFound, Type: "not-found", Detail: "no such endpoint: " + r.URL.Path})
	})
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if err := s.ready.check(r.Context()); err != nil {
		s.opts.Logger.Warn("kafka is not reachable", "err", err)
		writeText(w, http.StatusServiceUnavailable, "kafka is not reachable\n")
		return
	}
	writeText(w, http.StatusOK, "ok\n")
}

// Result is the body of a 200 (some events accepted) or of a 400 whose events were all
// invalid.
type Result struct {
	// Accepted counts the events written to Kafka.
	Accepted int `json:"accepted"`
	// Rejected lists the invalid events by their index in the request.
	Rejected []events.Rejection `json:"rejected"`
	// EventIDs are the accepted events' ids, in request order.
	EventIDs []string `json:"event_ids"`
}

func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request) {
	tenant, code := s.ingest(w, r)
	s.metrics.requests.WithLabelValues(tenant, strconv.Itoa(code)).Inc()
}

// ingest answers one ingest request and returns the tenant (empty before it is known)
// and the status code, for the metrics.
func (s *Server) ingest(w http.ResponseWriter, r *http.Request) (tenant string, code int) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return "", writeProblem(w, problem{Status: http.StatusMethodNotAllowed, Type: "method-not-allowed", Detail: "events are sent with POST"})
	}
	now := s.opts.Now()

	key := credential(r)
	if key == "" {
		return "", s.unauthorized(w)
	}
	info, err := s.keys.get(r.Context(), key)
	if err != nil {
		if metastore.IsUnavailable(err) {
			s.opts.Logger.Warn("metadata store unavailable for a key lookup", "err", err)
			return "", writeProblem(w, problem{Status: http.StatusServiceUnavailable, Type: "unavailable", Detail: "the key could not be checked right now; retry later", RetryAfter: retryAfterUnavailable})
		}
		s.opts.Logger.Error("key lookup failed", "err", err)
		return "", writeProblem(w, problem{Status: http.StatusInternalServerError, Type: "internal", Detail: "the key could not be checked"})
	}
	if !info.known {
		return "", s.unauthorized(w)
	}
	tenant = info.tenant
	if info.suspended {
		detail := "tenant " + tenant + " is suspended"
		if info.reason != "" {
			detail += ": " + info.reason
		}
		return tenant, writeProblem(w, problem{Status: http.StatusForbidden, Type: "tenant-suspended", Detail: detail})
	}

	lim := s.limits.forPlan(info.plan)
	bucket := s.buckets.Get(tenant, lim.rate)
	bucket.Peek(now).SetHeaders(w.Header())
	wire := lim.wireLimit()
	if r.ContentLength > wire {
		return tenant, writeProblem(w, tooLarge(lim.decode.MaxRequestBytes))
	}
	body := &wireBody{r: http.MaxBytesReader(w, r.Body, wire), left: r.ContentLength}
	dec := s.bufs.decoder()
	// The batch lives in the decoder's memory until its events are copied into the
	// records; the answer refers to none of it.
	defer s.bufs.putDecoder(dec)
	// A nil newID assigns events.NewID(now) to events sent without an id.
	batch, err := dec.Decode(body, r.Header.Get("Content-Type"), r.Header.Get("Content-Encoding"), lim.decode, now, nil)
	if err != nil {
		var reqErr *events.RequestError
		switch {
		case body.tooLarge:
			return tenant, writeProblem(w, tooLarge(lim.decode.MaxRequestBytes))
		case errors.As(err, &reqErr):
			return tenant, writeProblem(w, problem{Status: reqErr.Status, Type: requestErrorType(reqErr.Status), Detail: reqErr.Reason})
		default:
			return tenant, writeProblem(w, problem{Status: http.StatusBadRequest, Type: "unreadable-body", Detail: "the body could not be read: " + err.Error()})
		}
	}
	result := Result{Accepted: len(batch.Events), Rejected: batch.Rejected, EventIDs: make([]string, 0, len(batch.Events))}
	if result.Rejected == nil {
		result.Rejected = []events.Rejection{}
	}
	if len(batch.Events) == 0 {
		if len(batch.Rejected) == 0 {
			return tenant, writeProblem(w, problem{Status: http.StatusBadRequest, Type: "no-events", Detail: "the request holds no events"})
		}
		s.countEvents(tenant, 0, len(batch.Rejected))
		return tenant, s.writeResult(w, http.StatusBadRequest, result)
	}

	take := bucket.Take(now, len(batch.Events))
	take.SetHeaders(w.Header())
	switch {
	case take.Never:
		return tenant, writeProblem(w, problem{Status: http.StatusRequestEntityTooLarge, Type: "too-many-events",
			Detail: fmt.Sprintf("the request holds %d events, more than the rate limit's burst of %d: send fewer per request", len(batch.Events), lim.rate.Burst)})
	case !take.OK:
		return tenant, writeProblem(w, problem{Status: http.StatusTooManyRequests, Type: "rate-limited",
			Detail:     fmt.Sprintf("over the rate limit of %g events per second (burst %d)", lim.rate.PerSecond, lim.rate.Burst),
			RetryAfter: take.RetryAfter})
	}

	set := s.bufs.recordSet()
	records := set.fill(tenant, batch.Events, s.headers, s.headersAssigned)
	for _, e := range batch.Events {
		result.EventIDs = append(result.EventIDs, e.EventID)
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.AckTimeout)
	start := time.Now()
	err = s.producer.Produce(ctx, records, func() { s.bufs.putRecordSet(set) })
	cancel()
	s.metrics.produce.Observe(time.Since(start).Seconds())
	if err != nil {
		s.opts.Logger.Warn("kafka did not acknowledge a request's events", "tenant", tenant, "events", len(records), "err", err)
		return tenant, writeProblem(w, problem{Status: http.StatusServiceUnavailable, Type: "unavailable",
			Detail: "the events could not be stored right now and none is accepted; retry the request later", RetryAfter: retryAfterUnavailable})
	}
	s.countEvents(tenant, len(records), len(batch.Rejected))
	return tenant, s.writeResult(w, http.StatusOK, result)
}

func (s *Server) countEvents(tenant string, accepted, rejected int) {
	if accepted > 0 {
		s.metrics.events.WithLabelValues(tenant, "accepted").Add(float64(accepted))
	}
	if rejected > 0 {
		s.metrics.events.WithLabelValues(tenant, "rejected").Add(float64(rejected))
	}
}

// unauthorized is the one answer for a missing, unknown, revoked or deleted key.
func (s *Server) unauthorized(w http.ResponseWriter) int {
	w.Header().Set("WWW-Authenticate", `Bearer realm="shoal-ingest"`)
	return writeProblem(w, problem{Status: http.StatusUnauthorized, Type: "unauthorized",
		Detail: "a valid ingest key is required, as Authorization: Bearer <key> or X-Shoal-Key: <key>"})
}

// credential is the ingest key of the request: a Bearer token, else X-Shoal-Key.
func credential(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			if token = strings.TrimSpace(token); token != "" {
				return token
			}
		}
	}
	return strings.TrimSpace(r.Header.Get("X-Shoal-Key"))
}

func tooLarge(limit int) problem {
	return problem{Status: http.StatusRequestEntityTooLarge, Type: "too-large",
		Detail: fmt.Sprintf("the request body is larger than the limit of %d bytes", limit)}
}

func requestErrorType(status int) string {
	switch status {
	case http.StatusRequestEntityTooLarge:
		return "too-large"
	case http.StatusUnsupportedMediaType:
		return "unsupported-media-type"
	default:
		return "bad-request"
	}
}

// wireBody notes whether the wire-size limit cut the body off, so that is answered 413
// whatever the decoder makes of the read error. Its Len tells the decoder the declared
// length, to read the body into a buffer of the right size.
type wireBody struct {
	r        io.Reader
	left     int64 // declared bytes not read yet; -1 when unknown
	tooLarge bool
}

func (b *wireBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if b.left >= 0 {
		b.left = max(b.left-int64(n), 0)
	}
	var maxErr *http.MaxBytesError
	if err != nil && errors.As(err, &maxErr) {
		b.tooLarge = true
	}
	return n, err
}

// Len is the declared length still to come, -1 when the request declared none (chunked).
func (b *wireBody) Len() int { return int(b.left) }

// writeResult writes the answer to an ingest request, with its length, so it goes out
// in one piece rather than chunked. Write copies it out, so its buffer serves the next
// answer.
func (s *Server) writeResult(w http.ResponseWriter, status int, r Result) int {
	buf := s.bufs.answer()
	defer s.bufs.putAnswer(buf)
	body, err := appendResult(slices.Grow(*buf, resultSizeHint(r)), r)
	*buf = body
	if err != nil {
		// Only plain structs are written; this cannot happen.
		status, body = http.StatusInternalServerError, []byte("{\"error\":\"encoding the response\"}\n")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return status
}

func resultSizeHint(r Result) int {
	n := 64 + 128*len(r.Rejected)
	for _, id := range r.EventIDs {
		n += len(id) + 3
	}
	return n
}

// appendResult appends r and a newline as json.Marshal would write them, except that <,
// > and & in ids are not escaped for HTML, which an API answer needs no more than the
// Kafka records do. The ids are most of an answer; encoding them by reflection cost more
// than writing the rest of it.
func appendResult(b []byte, r Result) ([]byte, error) {
	b = append(b, `{"accepted":`...)
	b = strconv.AppendInt(b, int64(r.Accepted), 10)
	b = append(b, `,"rejected":`...)
	if r.Rejected != nil && len(r.Rejected) == 0 {
		b = append(b, "[]"...)
	} else {
		rejected, err := json.Marshal(r.Rejected)
		if err != nil {
			return nil, err
		}
		b = append(b, rejected...)
	}
	b = append(b, `,"event_ids":`...)
	if r.EventIDs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, id := range r.EventIDs {
			if i > 0 {
				b = append(b, ',')
			}
			b = events.AppendString(b, id)
		}
		b = append(b, ']')
	}
	return append(b, '}', '\n'), nil
}

func writeText(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, text)
}
