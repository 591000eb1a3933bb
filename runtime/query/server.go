package query

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoal-dev/shoal/internal/auth"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/httpapi"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/sealing"
	"github.com/shoal-dev/shoal/runtime/query/metricquery"
)

// APIPrefix is the path every API route starts with.
const APIPrefix = httpapi.QueryAPIPrefix

// Defaults of Options.
const (
	DefaultQueryTimeout  = config.DefaultQueryTimeout
	DefaultWidgetTimeout = config.DefaultWidgetTimeout
	// DefaultWidgetParallelism bounds the widgets of one dashboard queried at once, so
	// one page of 50 widgets does not take 50 database connections.
	DefaultWidgetParallelism = 8
)

// retryAfterUnavailable is the Retry-After, in seconds, of a 503.
const retryAfterUnavailable = 5

// UsageCounter counts what a tenant used; the ClickHouse engine implements it with a
// count over the tenant's events table.
type UsageCounter interface {
	// EventsIngested counts the tenant's events received in [from, to).
	EventsIngested(ctx context.Context, tenantID string, from, to time.Time) (uint64, error)
}

// Options configure a Server. Store, Authenticator and Engine are required.
type Options struct {
	// Platform holds the plan catalog, the query section (rate limit, timeouts, public
	// URL) and whether billing is on. Required.
	Platform *config.Platform
	// Store is the metadata store every object is read from and written to.
	Store *metastore.Store
	// Keyring seals data-source credentials; nil refuses data sources with credentials.
	Keyring *sealing.Keyring
	// Authenticator turns requests into principals.
	Authenticator *auth.Authenticator
	// Engine answers metrics queries, for the API, the widgets and the alert rules.
	Engine metricquery.Engine
	// Usage counts events for the subscription endpoint; nil reports usage unknown.
	Usage UsageCounter
	// Tenant, when set, makes this a Dedicated tenant's API: only its users are served,
	// and only its share links open.
	Tenant string
	// Notifiers say which alert notification channels are configured, so rules naming an
	// unconfigured channel are refused when written rather than failing silently later.
	WebhooksEnabled, EmailEnabled bool
	// Registry receives the server's metrics and is what /metrics serves; a new one when
	// nil.
	Registry *prometheus.Registry
	// Logger receives request failures; discarded when nil.
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// WidgetParallelism bounds the widgets of one dashboard queried at once. Default 8.
	WidgetParallelism int
}

// Server is the query API's HTTP handler. Safe for concurrent use.
type Server struct {
	opts      Options
	store     *metastore.Store
	sources   *metastore.DataSources
	engine    metricquery.Engine
	buckets   *httpapi.Buckets
	rate      httpapi.Rate
	metrics   *telemetry
	routes    []route
	handler   http.Handler
	mux       *http.ServeMux
	log       *slog.Logger
	publicURL string
}

// New returns a Server, registering its metrics on opts.Registry.
func New(opts Options) (*Server, error) {
	switch {
	case opts.Platform == nil:
		return nil, errors.New("query: Options.Platform is required")
	case opts.Store == nil:
		return nil, errors.New("query: Options.Store is required")
	case opts.Authenticator == nil:
		return nil, errors.New("query: Options.Authenticator is required")
	case opts.Engine == nil:
		return nil, errors.New("query: Options.Engine is required")
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
	if opts.WidgetParallelism <= 0 {
		opts.WidgetParallelism = DefaultWidgetParallelism
	}
	qc := opts.Platform.Query
	qc.Default()
	opts.Platform = clonePlatform(opts.Platform, qc)
	m, err := newTelemetry(opts.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:      opts,
		store:     opts.Store,
		sources:   opts.Store.DataSources(opts.Keyring),
		engine:    opts.Engine,
		buckets:   httpapi.NewBuckets(),
		rate:      httpapi.Rate{PerSecond: qc.RateLimit.RequestsPerSecond, Burst: qc.RateLimit.Burst},
		metrics:   m,
		log:       opts.Logger,
		publicURL: strings.TrimRight(qc.PublicURL, "/"),
		mux:       http.NewServeMux(),
	}
	s.routes = s.routeTable()
	for _, rt := range s.routes {
		s.mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	s.mux.HandleFunc("GET /readyz", s.handleReady)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{Registry: opts.Registry}))
	s.handler = httpapi.WithRequestID(http.HandlerFunc(s.serve))
	return s, nil
}

// clonePlatform returns a copy of p whose query section is q, so defaults applied here do
// not write into the caller's config.
func clonePlatform(p *config.Platform, q config.Query) *config.Platform {
	c := *p
	c.Query = q
	return &c
}

// ServeHTTP serves the API, /healthz, /readyz and /metrics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// serve routes a request, answering unknown paths and methods with problem documents.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	status, detail := http.StatusNotFound, "no such endpoint: see "+APIPrefix+"/openapi.json"
	if allowed := s.allowedMethods(r); len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		status, detail = http.StatusMethodNotAllowed, r.Method+" is not served here; allowed: "+strings.Join(allowed, ", ")
	}
	s.metrics.observe("unmatched", status, 0)
	httpapi.WriteProblem(w, r, httpapi.Problem{Type: "query/no-route", Status: status, Detail: detail})
}

// allowedMethods lists the methods the request's path is served with.
func (s *Server) allowedMethods(r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" {
			out = append(out, m)
		}
	}
	return out
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness: metastore unreachable", "err", err)
		writeText(w, http.StatusServiceUnavailable, "metastore unreachable\n")
		return
	}
	writeText(w, http.StatusOK, "ok\n")
}

type principalKey struct{}

// principalOf is the request's authenticated principal; only authenticated routes'
// handlers call it, after wrap put it there.
func principalOf(r *http.Request) auth.Principal {
	p, _ := r.Context().Value(principalKey{}).(auth.Principal)
	return p
}

// wrap is the middleware of one route: metrics, then for authenticated routes
// authentication, the tenant's rate limit and the route's one action.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.opts.Now()
		rec := &statusRecorder{ResponseWriter: w}
		var tenant string
		defer func() {
			elapsed := s.opts.Now().Sub(start)
			s.metrics.observe(rt.method+" "+rt.path, rec.status(), elapsed)
			level := slog.LevelDebug
			if rec.status() >= http.StatusBadRequest {
				level = slog.LevelInfo
			}
			s.log.LogAttrs(r.Context(), level, "request", slog.String("route", rt.method+" "+rt.path),
				slog.Int("status", rec.status()), slog.Duration("elapsed", elapsed), slog.String("tenant", tenant),
				slog.String("requestId", httpapi.RequestID(r.Context())))
		}()
		if rt.public {
			rt.handler(rec, r)
			return
		}
		p, err := s.opts.Authenticator.Authenticate(r)
		if err != nil {
			s.authProblem(rec, r, err)
			return
		}
		tenant = p.TenantID
		if s.opts.Tenant != "" && p.TenantID != s.opts.Tenant {
			httpapi.WriteProblem(rec, r, httpapi.Problem{Type: "auth/forbidden", Status: http.StatusForbidden,
				Detail: "these credentials are for another tenant: use your tenant's API endpoint"})
			return
		}
		if !s.charge(rec, r, p.TenantID) {
			return
		}
		if err := auth.Authorize(p, rt.action); err != nil {
			s.authProblem(rec, r, err)
			return
		}
		rt.handler(rec, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// charge takes one token from the tenant's bucket, sets the RateLimit headers, and
// answers 429 when the bucket is empty.
func (s *Server) charge(w http.ResponseWriter, r *http.Request, tenantID string) bool {
	taken := s.buckets.Get(tenantID, s.rate).Take(s.opts.Now(), 1)
	taken.SetHeaders(w.Header())
	if taken.OK {
		return true
	}
	s.metrics.rateLimited.WithLabelValues(tenantID).Inc()
	httpapi.WriteProblem(w, r, httpapi.Problem{
		Type: "query/rate-limited", Status: http.StatusTooManyRequests, RetryAfter: max(taken.RetryAfter, 1),
		Detail: "the tenant's request rate limit is reached: retry after the Retry-After seconds",
	})
	return false
}

func (s *Server) authProblem(w http.ResponseWriter, r *http.Request, err error) {
	status := auth.HTTPStatus(err)
	if c := auth.Challenge(err); c != "" {
		w.Header().Set("WWW-Authenticate", c)
	}
	typ := "auth/forbidden"
	retry := 0
	switch status {
	case http.StatusUnauthorized:
		typ = "auth/unauthenticated"
	case http.StatusServiceUnavailable:
		typ, retry = "auth/unavailable", retryAfterUnavailable
	case http.StatusInternalServerError:
		typ = "internal"
		s.log.ErrorContext(r.Context(), "authentication failed", "err", err, "requestId", httpapi.RequestID(r.Context()))
	}
	httpapi.WriteProblem(w, r, httpapi.Problem{Type: typ, Status: status, Detail: auth.PublicReason(err), RetryAfter: retry})
}

// statusRecorder remembers the status written, for metrics.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}

func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
