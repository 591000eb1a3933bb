package ingest

import (
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/httpapi"
	"github.com/shoal-dev/shoal/runtime/events"
)

// limits are what a plan allows one request and one tenant.
type limits struct {
	decode events.Limits
	rate   httpapi.Rate
}

// wireLimit bounds the body as sent. A compressed body is smaller than the decoded one,
// except for incompressible data, which gzip grows by a few bytes per 16 KiB block; the
// decoder enforces the decoded limit itself.
func (l limits) wireLimit() int64 {
	n := int64(l.decode.MaxRequestBytes)
	return n + n/64 + 1024
}

// planCatalog holds the limits of each plan, worked out once.
type planCatalog struct {
	plans    map[string]limits
	fallback limits
}

func newPlanCatalog(plans []config.Plan) *planCatalog {
	c := &planCatalog{plans: make(map[string]limits, len(plans)), fallback: limitsOf(config.IngestLimits{})}
	for _, p := range plans {
		c.plans[p.Name] = limitsOf(p.Ingest)
	}
	return c
}

// forPlan returns the plan's limits; a plan missing from the catalog (removed since the
// tenant chose it) gets the defaults.
func (c *planCatalog) forPlan(name string) limits {
	if l, ok := c.plans[name]; ok {
		return l
	}
	return c.fallback
}

// limitsOf fills what the plan leaves unset: sizes from the decoder's defaults, the rate
// from the platform config's plan defaults.
func limitsOf(in config.IngestLimits) limits {
	d := events.DefaultLimits()
	if in.MaxEventBytes > 0 {
		d.MaxEventBytes = in.MaxEventBytes
	}
	if in.MaxRequestBytes > 0 {
		d.MaxRequestBytes = in.MaxRequestBytes
	}
	if in.MaxEventsPerRequest > 0 {
		d.MaxEventsPerRequest = in.MaxEventsPerRequest
	}
	var defaults config.Plan
	defaults.Ingest = in
	defaults.Default()
	return limits{
		decode: d,
		rate:   httpapi.Rate{PerSecond: float64(defaults.Ingest.EventsPerSecond), Burst: defaults.Ingest.Burst},
	}
}
