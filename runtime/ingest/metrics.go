package ingest

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus metrics. Requests refused before the tenant is
// known have an empty tenant label.
type metrics struct {
	requests *prometheus.CounterVec
	events   *prometheus.CounterVec
	produce  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_ingest_requests_total",
			Help: "Ingest requests answered, by tenant and HTTP status code.",
		}, []string{"tenant", "code"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_ingest_events_total",
			Help: "Events of answered ingest requests: accepted (acknowledged by Kafka) or rejected (invalid).",
		}, []string{"tenant", "outcome"}),
		produce: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "shoal_ingest_produce_seconds",
			Help:    "Time from handing a request's records to the Kafka producer until all were acknowledged or it gave up.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.events, m.produce} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("ingest: registering metrics: %w", err)
		}
	}
	return m, nil
}
