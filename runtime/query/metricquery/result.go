package metricquery

import (
	"context"
	"errors"
	"time"
)

// Source says where an answer was read from.
type Source string

// Sources.
const (
	// SourceRollup is a Pipeline's rollup table: pre-aggregated, cheap to read.
	SourceRollup Source = "rollup"
	// SourceRaw is the tenant's raw events table, aggregated at query time.
	SourceRaw Source = "raw"
)

// Result is the answer to a Query.
type Result struct {
	Source Source `json:"source"`
	// Series holds one series per group (one series when the query groups by nothing),
	// at most Query.Limit of them.
	Series []Series `json:"series"`
	Stats  Stats    `json:"statistics"`
}

// Series is the points of one group.
type Series struct {
	// Group holds the group's value of each groupBy field; empty without groupBy.
	Group map[string]string `json:"group,omitempty"`
	// Points are in time order; one point at the range's start when the query has no
	// interval.
	Points []Point `json:"points"`
}

// Point is the metrics of one bucket. A quantile metric gives one value per level, named
// "<metric>:<level>" (for example "latency:0.99"); every other metric one value under its
// name. Raw mode names its value by the aggregate: "count" or "uniq".
type Point struct {
	Time   time.Time          `json:"time"`
	Values map[string]float64 `json:"values"`
}

// Stats say what answering cost.
type Stats struct {
	RowsRead  uint64 `json:"rowsRead"`
	BytesRead uint64 `json:"bytesRead"`
	// ElapsedMS is the wall time of the database query, in milliseconds.
	ElapsedMS float64 `json:"elapsedMs"`
}

// Engine answers queries for a tenant. The tenant comes from the caller's credentials;
// the engine takes the database, the pipelines and their allow-lists from it.
type Engine interface {
	Query(ctx context.Context, tenantID string, q Query) (Result, error)
}

// ErrUnavailable marks an engine error as the database being unreachable or overloaded:
// worth retrying, answered 503.
var ErrUnavailable = errors.New("query engine unavailable")

// ErrNotFound marks an engine error as a pipeline the tenant does not have, answered
// 404 naming the pipeline parameter (never saying whether another tenant has one).
var ErrNotFound = errors.New("not found")
