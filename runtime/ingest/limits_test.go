package ingest

import (
	"testing"

	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/runtime/events"
)

func TestPlanLimits(t *testing.T) {
	catalog := newPlanCatalog([]config.Plan{
		{Name: "full", Ingest: config.IngestLimits{EventsPerSecond: 50, Burst: 70, MaxEventBytes: 1000, MaxRequestBytes: 9000, MaxEventsPerRequest: 9}},
		{Name: "rate-only", Ingest: config.IngestLimits{EventsPerSecond: 50}},
	})
	d := events.DefaultLimits()
	for _, tc := range []struct {
		plan                     string
		perSecond                float64
		burst                    int
		eventBytes, requestBytes int
		eventsPerRequest         int
	}{
		{"full", 50, 70, 1000, 9000, 9},
		// Unset fields: sizes from the decoder, burst twice the rate as the config has it.
		{"rate-only", 50, 100, d.MaxEventBytes, d.MaxRequestBytes, d.MaxEventsPerRequest},
		// A plan gone from the catalog: the defaults.
		{"removed", 1000, 2000, d.MaxEventBytes, d.MaxRequestBytes, d.MaxEventsPerRequest},
	} {
		l := catalog.forPlan(tc.plan)
		if l.rate.PerSecond != tc.perSecond || l.rate.Burst != tc.burst ||
			l.decode.MaxEventBytes != tc.eventBytes || l.decode.MaxRequestBytes != tc.requestBytes ||
			l.decode.MaxEventsPerRequest != tc.eventsPerRequest {
			t.Errorf("plan %s: %+v", tc.plan, l)
		}
		if err := l.decode.Validate(); err != nil {
			t.Errorf("plan %s: %v", tc.plan, err)
		}
	}
}
