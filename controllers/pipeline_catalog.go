package controllers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/naming"
)

// PipelineCatalog is where the query API learns a tenant's pipelines: the spec it may
// query and the rollup table serving it. *metastore.Store implements it.
type PipelineCatalog interface {
	PutPipeline(ctx context.Context, rec metastore.PipelineRecord) (bool, error)
	DeletePipeline(ctx context.Context, tenantID, name string) error
}

// catalogRecord is what the catalog should say of pl, or false when it should keep what
// it says. While a rebuild is in progress the active table still holds the previous
// spec's columns, so the catalog keeps that spec until the swap: the query API never asks
// a table for a metric it does not have.
func catalogRecord(tenant string, pl *v1alpha1.Pipeline, hash string) (metastore.PipelineRecord, bool, error) {
	active := pl.Status.Active
	if active != nil && active.SpecHash != hash {
		return metastore.PipelineRecord{}, false, nil
	}
	spec, err := json.Marshal(pl.Spec)
	if err != nil {
		return metastore.PipelineRecord{}, false, fmt.Errorf("encoding the spec of pipeline %s: %w", pl.Name, err)
	}
	rec := metastore.PipelineRecord{TenantID: tenant, Name: pl.Name, Spec: spec, Generation: pl.Generation}
	if active != nil {
		rec.RollupTable, rec.RollupCutoff = active.Table, active.Cutoff.UTC()
	}
	return rec, true, nil
}

// publish brings the catalog's record of pl up to date; nothing is written when it is.
func (r *PipelineReconciler) publish(ctx context.Context, pl *v1alpha1.Pipeline, hash string) error {
	tenant, ok := naming.TenantFromNamespace(pl.Namespace)
	if !ok || r.Catalog == nil {
		return nil
	}
	rec, put, err := catalogRecord(tenant, pl, hash)
	if err != nil || !put {
		return err
	}
	if _, err := r.Catalog.PutPipeline(ctx, rec); err != nil {
		return fromBackend(backendMetastore, err)
	}
	return nil
}

// unpublish removes pl from the catalog.
func (r *PipelineReconciler) unpublish(ctx context.Context, pl *v1alpha1.Pipeline) error {
	tenant, ok := naming.TenantFromNamespace(pl.Namespace)
	if !ok || r.Catalog == nil {
		return nil
	}
	return fromBackend(backendMetastore, r.Catalog.DeletePipeline(ctx, tenant, pl.Name))
}
