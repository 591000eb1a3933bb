package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a token bucket's refill rate and size.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Buckets holds one token bucket per key (a tenant). Safe for concurrent use.
type Buckets struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// NewBuckets returns an empty set of buckets.
func NewBuckets() *Buckets { return &Buckets{m: map[string]*rate.Limiter{}} }

// Get returns the key's bucket, created full, at rate rt; a changed rate (a plan change)
// applies to the existing bucket.
func (b *Buckets) Get(key string, rt Rate) *Bucket {
	b.mu.Lock()
	defer b.mu.Unlock()
	lim, ok := b.m[key]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(rt.PerSecond), rt.Burst)
		b.m[key] = lim
	} else if lim.Limit() != rate.Limit(rt.PerSecond) || lim.Burst() != rt.Burst {
		lim.SetLimit(rate.Limit(rt.PerSecond))
		lim.SetBurst(rt.Burst)
	}
	return &Bucket{lim: lim, rt: rt}
}

// Bucket is one key's token bucket at its rate.
type Bucket struct {
	lim *rate.Limiter
	rt  Rate
}

// Taken is the outcome of charging a bucket, with what the RateLimit headers say.
type Taken struct {
	OK bool
	// Never: more tokens than the burst, which no wait would let through.
	Never bool
	// RetryAfter is in whole seconds, when !OK.
	RetryAfter int
	Limit      int
	Remaining  int
	// Reset is the seconds until the bucket is full again.
	Reset int
}

// Take charges n tokens at now, or nothing when they are not all there.
func (b *Bucket) Take(now time.Time, n int) Taken {
	t := Taken{Limit: b.rt.Burst}
	r := b.lim.ReserveN(now, n)
	switch {
	case !r.OK():
		t.Never = true
	case r.DelayFrom(now) > 0:
		t.RetryAfter = ceilSeconds(r.DelayFrom(now))
		r.CancelAt(now)
	default:
		t.OK = true
	}
	t.fill(b, now)
	return t
}

// Peek reports the bucket's state at now without charging it.
func (b *Bucket) Peek(now time.Time) Taken {
	t := Taken{OK: true, Limit: b.rt.Burst}
	t.fill(b, now)
	return t
}

func (t *Taken) fill(b *Bucket, now time.Time) {
	tokens := b.lim.TokensAt(now)
	t.Remaining = max(int(math.Floor(tokens)), 0)
	if missing := float64(b.rt.Burst) - tokens; missing > 0 && b.rt.PerSecond > 0 {
		t.Reset = int(math.Ceil(missing / b.rt.PerSecond))
	}
}

// SetHeaders writes the RateLimit-* headers (IETF draft: limit, remaining, reset).
func (t Taken) SetHeaders(h http.Header) {
	h.Set("RateLimit-Limit", strconv.Itoa(t.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(t.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(t.Reset))
}

func ceilSeconds(d time.Duration) int {
	return max(int(math.Ceil(d.Seconds())), 1)
}
