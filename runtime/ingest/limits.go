package ingest

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/runtime/events"
)

// rateLimit is a plan's token bucket.
type rateLimit struct {
	perSecond float64
	burst     int
}

// limits are what a plan allows one request and one tenant.
type limits struct {
	decode events.Limits
	rate   rateLimit
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
		rate:   rateLimit{perSecond: float64(defaults.Ingest.EventsPerSecond), burst: defaults.Ingest.Burst},
	}
}

// buckets holds one token bucket per tenant.
type buckets struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newBuckets() *buckets { return &buckets{m: map[string]*rate.Limiter{}} }

// get returns the tenant's bucket, created full, with its plan's rate (a plan change
// applies to the existing bucket).
func (b *buckets) get(tenant string, rl rateLimit) *bucket {
	b.mu.Lock()
	defer b.mu.Unlock()
	lim, ok := b.m[tenant]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(rl.perSecond), rl.burst)
		b.m[tenant] = lim
	} else if lim.Limit() != rate.Limit(rl.perSecond) || lim.Burst() != rl.burst {
		lim.SetLimit(rate.Limit(rl.perSecond))
		lim.SetBurst(rl.burst)
	}
	return &bucket{lim: lim, rl: rl}
}

type bucket struct {
	lim *rate.Limiter
	rl  rateLimit
}

// taken is the outcome of charging a bucket, with what the RateLimit headers say.
type taken struct {
	ok bool
	// never: more events than the burst, which no wait would let through.
	never bool
	// retryAfter is in whole seconds, when !ok.
	retryAfter int
	limit      int
	remaining  int
	// reset is the seconds until the bucket is full again.
	reset int
}

// take charges n tokens at now, or nothing when they are not all there.
func (b *bucket) take(now time.Time, n int) taken {
	t := taken{limit: b.rl.burst}
	r := b.lim.ReserveN(now, n)
	switch {
	case !r.OK():
		t.never = true
	case r.DelayFrom(now) > 0:
		t.retryAfter = ceilSeconds(r.DelayFrom(now))
		r.CancelAt(now)
	default:
		t.ok = true
	}
	t.fill(b, now)
	return t
}

// peek reports the bucket's state at now without charging it.
func (b *bucket) peek(now time.Time) taken {
	t := taken{ok: true, limit: b.rl.burst}
	t.fill(b, now)
	return t
}

func (t *taken) fill(b *bucket, now time.Time) {
	tokens := b.lim.TokensAt(now)
	t.remaining = max(int(math.Floor(tokens)), 0)
	if missing := float64(b.rl.burst) - tokens; missing > 0 && b.rl.perSecond > 0 {
		t.reset = int(math.Ceil(missing / b.rl.perSecond))
	}
}

// setHeaders writes the RateLimit-* headers (IETF draft: limit, remaining, reset).
func (t taken) setHeaders(h http.Header) {
	h.Set("RateLimit-Limit", strconv.Itoa(t.limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(t.remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(t.reset))
}

func ceilSeconds(d time.Duration) int {
	return max(int(math.Ceil(d.Seconds())), 1)
}
