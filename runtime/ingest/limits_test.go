package ingest

import (
	"testing"
	"time"

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
		if l.rate.perSecond != tc.perSecond || l.rate.burst != tc.burst ||
			l.decode.MaxEventBytes != tc.eventBytes || l.decode.MaxRequestBytes != tc.requestBytes ||
			l.decode.MaxEventsPerRequest != tc.eventsPerRequest {
			t.Errorf("plan %s: %+v", tc.plan, l)
		}
		if err := l.decode.Validate(); err != nil {
			t.Errorf("plan %s: %v", tc.plan, err)
		}
	}
}

func TestBucket(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b := newBuckets().get("acme", rateLimit{perSecond: 10, burst: 20})
	for _, tc := range []struct {
		advance time.Duration
		n       int
		want    taken
	}{
		{0, 15, taken{ok: true, limit: 20, remaining: 5, reset: 2}},
		{0, 10, taken{retryAfter: 1, limit: 20, remaining: 5, reset: 2}},
		{500 * time.Millisecond, 10, taken{ok: true, limit: 20, remaining: 0, reset: 2}},
		{0, 21, taken{never: true, limit: 20, remaining: 0, reset: 2}},
		{3 * time.Second, 0, taken{ok: true, limit: 20, remaining: 20, reset: 0}},
	} {
		now = now.Add(tc.advance)
		if got := b.take(now, tc.n); got != tc.want {
			t.Errorf("take %d after %s: %+v, want %+v", tc.n, tc.advance, got, tc.want)
		}
	}
}
