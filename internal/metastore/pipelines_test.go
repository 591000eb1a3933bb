package metastore

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/testbackends"
)

func TestPipelines(t *testing.T) {
	db := newDB(t, testbackends.StartPostgres(t))
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	db.tenant(t, "globex")
	spec := json.RawMessage(`{"source":{"eventTypes":["signup"]},"metrics":[{"name":"signups","type":"count"}]}`)

	put := func(rec PipelineRecord) bool {
		t.Helper()
		wrote, err := db.store.PutPipeline(ctx, rec)
		if err != nil {
			t.Fatal(err)
		}
		return wrote
	}
	rec := PipelineRecord{TenantID: "acme", Name: "signups", Spec: spec, Generation: 1}
	if !put(rec) {
		t.Error("a new pipeline was not written")
	}
	// The same spec with other spacing and key order is the same record.
	same := rec
	same.Spec = json.RawMessage(`{ "metrics":[{"type":"count","name":"signups"}], "source":{"eventTypes":["signup"]} }`)
	if put(same) {
		t.Error("an unchanged pipeline was written again")
	}
	if got, err := db.store.GetPipeline(ctx, "acme", "signups"); err != nil || !got.RollupCutoff.IsZero() {
		t.Errorf("without a rollup: %+v, %v; want no cutoff", got, err)
	}
	cutoff := time.Date(2026, 11, 26, 10, 0, 5, 0, time.UTC)
	rec.RollupTable, rec.RollupCutoff, rec.Generation = "rollup_signups_ab12", cutoff, 2
	if !put(rec) {
		t.Error("a new rollup table was not written")
	}
	if put(rec) {
		t.Error("the same rollup was written again")
	}
	got, err := db.store.GetPipeline(ctx, "acme", "signups")
	if err != nil || got.RollupTable != "rollup_signups_ab12" || !got.RollupCutoff.Equal(cutoff) || got.Generation != 2 {
		t.Errorf("GetPipeline = %+v, %v", got, err)
	}

	// Another tenant sees none of it, and has its own of the same name.
	if _, err := db.store.GetPipeline(ctx, "globex", "signups"); !errors.Is(err, ErrNotFound) {
		t.Errorf("globex reading acme's pipeline: %v, want ErrNotFound", err)
	}
	put(PipelineRecord{TenantID: "globex", Name: "signups", Spec: spec})
	put(PipelineRecord{TenantID: "acme", Name: "logins", Spec: spec})
	list, err := db.store.ListPipelines(ctx, "acme")
	if err != nil || len(list) != 2 || list[0].Name != "logins" || list[1].Name != "signups" {
		t.Errorf("ListPipelines(acme) = %+v, %v", list, err)
	}

	if _, err := db.store.PutPipeline(ctx, PipelineRecord{TenantID: "acme", Name: "bad", Spec: json.RawMessage(`{`)}); err == nil {
		t.Error("a spec that is not JSON was stored")
	}
	if _, err := db.store.PutPipeline(ctx, PipelineRecord{TenantID: "nobody", Name: "x", Spec: spec}); err == nil {
		t.Error("a pipeline of a missing tenant was stored")
	}

	if err := db.store.DeletePipeline(ctx, "acme", "signups"); err != nil {
		t.Fatal(err)
	}
	if err := db.store.DeletePipeline(ctx, "acme", "signups"); err != nil {
		t.Errorf("deleting twice: %v", err)
	}
	if _, err := db.store.GetPipeline(ctx, "acme", "signups"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if n := db.count(t, "SELECT count(*) FROM pipelines WHERE tenant_id = 'globex'"); n != 1 {
		t.Errorf("globex has %d pipelines after acme's was deleted, want 1", n)
	}
}
