package query

import (
	"context"
	"net/http"
	"time"

	"github.com/shoal-dev/shoal/runtime/query/metricquery"
)

// metricsAnswer is the answer of GET /metrics/query: the result and the query as it was
// understood, times resolved.
type metricsAnswer struct {
	Query echoedQuery `json:"query"`
	metricquery.Result
}

// echoedQuery is a parsed query as JSON.
type echoedQuery struct {
	Mode      metricquery.Mode      `json:"mode"`
	Pipeline  string                `json:"pipeline,omitempty"`
	Metrics   []string              `json:"metrics,omitempty"`
	EventType string                `json:"eventType,omitempty"`
	Aggregate metricquery.Aggregate `json:"aggregate,omitempty"`
	Field     string                `json:"field,omitempty"`
	From      time.Time             `json:"from"`
	To        time.Time             `json:"to"`
	Interval  metricquery.Interval  `json:"interval,omitempty"`
	GroupBy   []string              `json:"groupBy,omitempty"`
	Filters   []StoredFilter        `json:"filters,omitempty"`
	Limit     int                   `json:"limit"`
	Order     metricquery.Order     `json:"order"`
}

func echo(q metricquery.Query) echoedQuery {
	e := echoedQuery{
		Mode: q.Mode, Pipeline: q.Pipeline, Metrics: q.Metrics, EventType: q.EventType, Aggregate: q.Aggregate,
		Field: q.Field, From: q.From, To: q.To, Interval: q.Interval, GroupBy: q.GroupBy, Limit: q.Limit, Order: q.Order,
	}
	for _, f := range q.Filters {
		e.Filters = append(e.Filters, StoredFilter{Field: f.Field, Op: string(f.Op), Values: f.Values})
	}
	return e
}

func (s *Server) handleMetricsQuery(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	q, err := metricquery.Parse(r.URL.Query(), s.opts.Now())
	if err != nil {
		s.fail(w, r, "metrics query", err)
		return
	}
	res, err := s.runQuery(r.Context(), p.TenantID, q, s.opts.Platform.Query.QueryTimeout.Duration)
	if err != nil {
		s.fail(w, r, "metrics query", err)
		return
	}
	writeJSON(w, http.StatusOK, metricsAnswer{Query: echo(q), Result: res})
}

// runQuery asks the engine under a timeout. The tenant is always the caller's: from the
// principal, or the dashboard a share token opened.
func (s *Server) runQuery(ctx context.Context, tenantID string, q metricquery.Query, timeout time.Duration) (metricquery.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := s.engine.Query(ctx, tenantID, q)
	if err == nil && res.Series == nil {
		res.Series = []metricquery.Series{}
	}
	return res, err
}
