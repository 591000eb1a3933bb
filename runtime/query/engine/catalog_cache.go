package engine

import (
	"context"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/internal/metastore"
)

// DefaultCatalogTTL is how long a pipeline record is reused. Short against the minute
// the Pipeline controller keeps a replaced rollup table after a swap, so a record read
// just before the swap still names a table that exists.
const DefaultCatalogTTL = 2 * time.Second

// maxCachedPipelines bounds the cache; past it the cache starts over.
const maxCachedPipelines = 10000

// cachedCatalog reuses found pipeline records for a short time: one catalog round trip
// less per query. A missing pipeline is not remembered, so one just created is queryable
// at once.
type cachedCatalog struct {
	next Catalog
	ttl  time.Duration
	now  func() time.Time

	mu      sync.Mutex
	records map[[2]string]cachedRecord
}

type cachedRecord struct {
	rec     metastore.PipelineRecord
	fetched time.Time
}

func newCachedCatalog(next Catalog, ttl time.Duration, now func() time.Time) *cachedCatalog {
	return &cachedCatalog{next: next, ttl: ttl, now: now, records: map[[2]string]cachedRecord{}}
}

func (c *cachedCatalog) GetPipeline(ctx context.Context, tenantID, name string) (metastore.PipelineRecord, error) {
	key := [2]string{tenantID, name}
	now := c.now()
	c.mu.Lock()
	hit, ok := c.records[key]
	c.mu.Unlock()
	if ok && now.Sub(hit.fetched) < c.ttl {
		return hit.rec, nil
	}
	rec, err := c.next.GetPipeline(ctx, tenantID, name)
	if err != nil {
		return rec, err
	}
	c.mu.Lock()
	if len(c.records) >= maxCachedPipelines {
		c.records = map[[2]string]cachedRecord{}
	}
	c.records[key] = cachedRecord{rec: rec, fetched: now}
	c.mu.Unlock()
	return rec, nil
}
