package process

import (
	"context"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/internal/metastore"
)

// TenantSource reads tenant rows; *metastore.Store is one.
type TenantSource interface {
	GetTenant(ctx context.Context, id string) (metastore.TenantRecord, error)
}

// DefaultTenantCacheTTL is how long a tenant's lake class is used before it is read again.
const DefaultTenantCacheTTL = time.Minute

// defaultLakeClass is the class of a tenant row without one.
const defaultLakeClass = "Standard"

// TenantCache is TenantInfo over the metastore, reading each tenant at most once per TTL:
// the processor asks for every batch. When the metastore cannot be read, a tenant seen
// before keeps what was last known, so a metastore outage does not stop the data path.
type TenantCache struct {
	src TenantSource
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]tenantEntry
}

type tenantEntry struct {
	tenant  Tenant
	fetched time.Time
}

// NewTenantCache caches src for ttl (DefaultTenantCacheTTL when 0).
func NewTenantCache(src TenantSource, ttl time.Duration) *TenantCache {
	if ttl <= 0 {
		ttl = DefaultTenantCacheTTL
	}
	return &TenantCache{src: src, ttl: ttl, now: time.Now, entries: map[string]tenantEntry{}}
}

// Tenant returns what the processor needs to know of the tenant.
func (c *TenantCache) Tenant(ctx context.Context, tenant string) (Tenant, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[tenant]
	c.mu.Unlock()
	if ok && now.Sub(e.fetched) < c.ttl {
		return e.tenant, nil
	}
	rec, err := c.src.GetTenant(ctx, tenant)
	if err != nil {
		if ok {
			return e.tenant, nil
		}
		return Tenant{}, err
	}
	t := Tenant{LakeClass: rec.LakeClass, Dedicated: rec.Isolation == metastore.IsolationDedicated}
	if t.LakeClass == "" {
		t.LakeClass = defaultLakeClass
	}
	c.mu.Lock()
	c.entries[tenant] = tenantEntry{tenant: t, fetched: now}
	c.mu.Unlock()
	return t, nil
}
