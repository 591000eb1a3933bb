package engine

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/metastore"
)

// countingCatalog counts lookups; "missing" pipelines are not found.
type countingCatalog struct{ calls map[string]int }

func (c *countingCatalog) GetPipeline(_ context.Context, tenantID, name string) (metastore.PipelineRecord, error) {
	c.calls[tenantID+"/"+name]++
	if name == "missing" {
		return metastore.PipelineRecord{}, fmt.Errorf("pipeline %q: %w", name, metastore.ErrNotFound)
	}
	return metastore.PipelineRecord{TenantID: tenantID, Name: name, RollupTable: "t_" + tenantID}, nil
}

func TestCachedCatalog(t *testing.T) {
	now := time.Unix(1_790_000_000, 0)
	next := &countingCatalog{calls: map[string]int{}}
	c := newCachedCatalog(next, 2*time.Second, func() time.Time { return now })
	ctx := context.Background()
	get := func(tenant, name string) metastore.PipelineRecord {
		t.Helper()
		rec, err := c.GetPipeline(ctx, tenant, name)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	get("acme", "sales")
	now = now.Add(time.Second)
	if rec := get("acme", "sales"); rec.RollupTable != "t_acme" || next.calls["acme/sales"] != 1 {
		t.Errorf("within the TTL: %d lookups, record %+v; want 1 and the cached record", next.calls["acme/sales"], rec)
	}
	// Another tenant's pipeline of the same name is its own entry.
	if rec := get("globex", "sales"); rec.TenantID != "globex" || rec.RollupTable != "t_globex" {
		t.Errorf("globex got %+v", rec)
	}
	now = now.Add(2 * time.Second)
	get("acme", "sales")
	if next.calls["acme/sales"] != 2 {
		t.Errorf("after the TTL: %d lookups, want 2", next.calls["acme/sales"])
	}
	// A missing pipeline is asked for every time: one created meanwhile shows at once.
	for range 2 {
		if _, err := c.GetPipeline(ctx, "acme", "missing"); !errors.Is(err, metastore.ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}
	}
	if next.calls["acme/missing"] != 2 {
		t.Errorf("missing pipeline looked up %d times, want 2 (not cached)", next.calls["acme/missing"])
	}
}
