package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/shoal-dev/shoal/internal/metastore"
)

// maxCachedKeys bounds the key cache, so a flood of made-up keys cannot grow it without
// end.
const maxCachedKeys = 100_000

// storeRetryInterval is how long after a failed lookup the store is left alone: during
// an outage requests are answered from the cache (or refused) at once instead of each
// waiting for its own lookup to time out.
const storeRetryInterval = time.Second

// tenantInfo is what a key lookup tells the server.
type tenantInfo struct {
	// known is false for unknown and revoked keys and deleted tenants.
	known     bool
	tenant    string
	plan      string
	suspended bool
	reason    string
}

type cacheEntry struct {
	info    tenantInfo
	fetched time.Time
}

// keyCache resolves ingest keys through the metadata store, remembering answers (unknown
// keys included) for ttl. Entries are keyed by the key's SHA-256, so plaintext keys are
// not kept in memory longer than a request.
type keyCache struct {
	lookup   KeyLookup
	now      func() time.Time
	ttl      time.Duration
	maxStale time.Duration
	timeout  time.Duration

	flight singleflight.Group

	mu      sync.Mutex
	entries map[[sha256.Size]byte]cacheEntry
	// lastErr is the last failed lookup's error, failedAt when it happened.
	lastErr  error
	failedAt time.Time
}

func newKeyCache(lookup KeyLookup, now func() time.Time, ttl, maxStale, timeout time.Duration) *keyCache {
	return &keyCache{
		lookup: lookup, now: now, ttl: ttl, maxStale: maxStale, timeout: timeout,
		entries: map[[sha256.Size]byte]cacheEntry{},
	}
}

// get resolves key. An error means the store could not answer and no usable entry was
// cached.
func (c *keyCache) get(ctx context.Context, key string) (tenantInfo, error) {
	hash := sha256.Sum256([]byte(key))
	now := c.now()
	c.mu.Lock()
	entry, cached := c.entries[hash]
	lastErr, failedAt := c.lastErr, c.failedAt
	c.mu.Unlock()
	if cached && now.Sub(entry.fetched) < c.ttl {
		return entry.info, nil
	}
	var err error
	var v any
	if lastErr != nil && now.Sub(failedAt) < storeRetryInterval {
		err = lastErr
	} else {
		// Concurrent requests with the same key share one lookup.
		v, err, _ = c.flight.Do(string(hash[:]), func() (any, error) {
			info, err := c.fetch(ctx, key)
			c.mu.Lock()
			c.lastErr, c.failedAt = err, c.now()
			c.mu.Unlock()
			if err != nil {
				return tenantInfo{}, err
			}
			c.store(hash, cacheEntry{info: info, fetched: c.now()})
			return info, nil
		})
	}
	if err != nil {
		// The store is down or failing: an answer it gave a little while ago is better
		// than refusing every tenant.
		if cached && now.Sub(entry.fetched) < c.ttl+c.maxStale {
			return entry.info, nil
		}
		return tenantInfo{}, err
	}
	return v.(tenantInfo), nil
}

func (c *keyCache) fetch(ctx context.Context, key string) (tenantInfo, error) {
	// Only keys Shoal mints can exist; anything else is not worth a round trip.
	if !strings.HasPrefix(key, metastore.KeyPrefix) {
		return tenantInfo{}, nil
	}
	// The lookup is shared by every request waiting on it, so one client going away
	// must not cancel it for the others.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	tenant, suspended, err := c.lookup.LookupIngestKey(ctx, key)
	if errors.Is(err, metastore.ErrNotFound) {
		return tenantInfo{}, nil
	}
	if err != nil {
		return tenantInfo{}, err
	}
	rec, err := c.lookup.GetTenant(ctx, tenant)
	if errors.Is(err, metastore.ErrNotFound) || (err == nil && rec.DeletedAt != nil) {
		return tenantInfo{}, nil
	}
	if err != nil {
		return tenantInfo{}, err
	}
	return tenantInfo{
		known:     true,
		tenant:    tenant,
		plan:      rec.Plan,
		suspended: suspended || rec.Suspended,
		reason:    rec.SuspendedReason,
	}, nil
}

func (c *keyCache) store(hash [sha256.Size]byte, e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCachedKeys {
		c.evictLocked(e.fetched)
	}
	c.entries[hash] = e
}

// evictLocked drops the entries too old to be used; if that frees nothing, it drops
// them all: the cache only saves lookups, it is never needed for correctness.
func (c *keyCache) evictLocked(now time.Time) {
	for h, e := range c.entries {
		if now.Sub(e.fetched) >= c.ttl+c.maxStale {
			delete(c.entries, h)
		}
	}
	if len(c.entries) >= maxCachedKeys {
		clear(c.entries)
	}
}
