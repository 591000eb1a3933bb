package query

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// telemetry is the server's Prometheus metrics. Routes are labelled by their pattern,
// never by the path, so ids do not make new series.
type telemetry struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	rateLimited *prometheus.CounterVec
	widgets     *prometheus.CounterVec
}

func newTelemetry(reg prometheus.Registerer) (*telemetry, error) {
	t := &telemetry{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_query_requests_total",
			Help: "Query API requests answered, by route and HTTP status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shoal_query_request_duration_seconds",
			Help:    "Time to answer a query API request, by route.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"route"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_query_rate_limited_total",
			Help: "Query API requests refused with 429, by tenant.",
		}, []string{"tenant"}),
		widgets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_query_widgets_total",
			Help: "Dashboard widgets queried, by outcome (ok or failed).",
		}, []string{"outcome"}),
	}
	for _, c := range []prometheus.Collector{t.requests, t.duration, t.rateLimited, t.widgets} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("query: registering metrics: %w", err)
		}
	}
	return t, nil
}

func (t *telemetry) observe(route string, code int, elapsed time.Duration) {
	t.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	t.duration.WithLabelValues(route).Observe(elapsed.Seconds())
}
