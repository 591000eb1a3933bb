package process

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Failure stages, the label of the failures counter.
const (
	stageTenant     = "tenant"
	stageClickHouse = "clickhouse"
	stageLake       = "lake"
	stageCommit     = "commit"
)

// metrics are the processor's Prometheus metrics. There is no tenant label: with
// thousands of tenants it would multiply every series by that.
type metrics struct {
	batches     prometheus.Counter
	rows        prometheus.Counter
	duplicates  prometheus.Counter
	quarantined prometheus.Counter
	lakeObjects prometheus.Counter
	failures    *prometheus.CounterVec
	latency     prometheus.Histogram
	lag         prometheus.Gauge
	buffered    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_process_batches_total",
			Help: "Partition batches written to ClickHouse and the lake and committed.",
		}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_process_rows_inserted_total",
			Help: "Events inserted into tenant events tables.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_process_rows_duplicate_total",
			Help: "Events not inserted because their tenant's events table held them already (a redelivery or a client's resend).",
		}),
		quarantined: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_process_rows_quarantined_total",
			Help: "Records that did not decode into an event, inserted into tenant quarantine tables.",
		}),
		lakeObjects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_process_lake_objects_total",
			Help: "Batch objects written to the lake.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_process_failures_total",
			Help: "Failed attempts by stage (tenant, clickhouse, lake, commit); a failed batch is retried, never skipped.",
		}, []string{"stage"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "shoal_process_batch_duration_seconds",
			Help:    "From cutting a batch to committing its offsets, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shoal_process_consumer_lag_records",
			Help: "Records on the assigned partitions not yet committed, as of the last fetch.",
		}),
		buffered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shoal_process_buffered_records",
			Help: "Records fetched and held for a batch, failed batches included.",
		}),
	}
	for _, stage := range []string{stageTenant, stageClickHouse, stageLake, stageCommit} {
		m.failures.WithLabelValues(stage) // so every stage shows 0 before its first failure
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.batches, m.rows, m.duplicates, m.quarantined, m.lakeObjects, m.failures, m.latency, m.lag, m.buffered} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering processor metrics: %w", err)
		}
	}
	return m, nil
}
