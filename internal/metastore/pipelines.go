package metastore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// PipelineRecord is a Pipeline as the query API sees it: its spec, and the rollup table
// serving it once one is built.
type PipelineRecord struct {
	TenantID string
	Name     string
	// Spec is the Pipeline's spec as JSON (api/v1alpha1 PipelineSpec).
	Spec json.RawMessage
	// RollupTable is the table in the tenant's database holding the rollup; empty while
	// none is ready, when queries read the raw events.
	RollupTable string
	// RollupCutoff splits the events the rollup counts: its view those received from it
	// on, its backfill those before. Zero without a rollup table.
	RollupCutoff time.Time
	// Generation is the Pipeline object's generation the record describes.
	Generation int64
	UpdatedAt  time.Time
}

// PutPipeline creates or replaces the tenant's pipeline record, and reports whether it
// wrote: a record equal to the stored one is left alone, so a resync writes nothing.
func (s *Store) PutPipeline(ctx context.Context, rec PipelineRecord) (bool, error) {
	if rec.TenantID == "" || rec.Name == "" || !json.Valid(rec.Spec) {
		return false, fmt.Errorf("metastore: pipeline %q of tenant %q: tenant, name and a JSON spec are required", rec.Name, rec.TenantID)
	}
	// jsonb compares by value, so a spec re-serialised with other spacing or key order is
	// still equal.
	tag, err := s.pool.Exec(ctx, `
INSERT INTO pipelines (tenant_id, name, spec, rollup_table, rollup_cutoff, generation)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (tenant_id, name) DO UPDATE
SET spec = EXCLUDED.spec, rollup_table = EXCLUDED.rollup_table, rollup_cutoff = EXCLUDED.rollup_cutoff,
    generation = EXCLUDED.generation, updated_at = now()
WHERE (pipelines.spec, pipelines.rollup_table, pipelines.rollup_cutoff, pipelines.generation)
      IS DISTINCT FROM (EXCLUDED.spec, EXCLUDED.rollup_table, EXCLUDED.rollup_cutoff, EXCLUDED.generation)`,
		rec.TenantID, rec.Name, []byte(rec.Spec), rec.RollupTable, nullTime(rec.RollupCutoff), rec.Generation)
	if err != nil {
		return false, fmt.Errorf("metastore: storing pipeline %s/%s: %w", rec.TenantID, rec.Name, err)
	}
	return tag.RowsAffected() > 0, nil
}

// GetPipeline returns the tenant's pipeline by name, or ErrNotFound.
func (s *Store) GetPipeline(ctx context.Context, tenantID, name string) (PipelineRecord, error) {
	row := s.pool.QueryRow(ctx, `
SELECT tenant_id, name, spec, rollup_table, rollup_cutoff, generation, updated_at
FROM pipelines WHERE tenant_id = $1 AND name = $2`, tenantID, name)
	rec, err := scanPipeline(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return PipelineRecord{}, fmt.Errorf("pipeline %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return PipelineRecord{}, fmt.Errorf("metastore: reading pipeline %s/%s: %w", tenantID, name, err)
	}
	return rec, nil
}

// ListPipelines returns the tenant's pipelines by name.
func (s *Store) ListPipelines(ctx context.Context, tenantID string) ([]PipelineRecord, error) {
	rows, err := s.pool.Query(ctx, `
SELECT tenant_id, name, spec, rollup_table, rollup_cutoff, generation, updated_at
FROM pipelines WHERE tenant_id = $1 ORDER BY name`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("metastore: listing pipelines of %s: %w", tenantID, err)
	}
	defer rows.Close()
	var out []PipelineRecord
	for rows.Next() {
		rec, err := scanPipeline(rows)
		if err != nil {
			return nil, fmt.Errorf("metastore: listing pipelines of %s: %w", tenantID, err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("metastore: listing pipelines of %s: %w", tenantID, err)
	}
	return out, nil
}

// DeletePipeline removes the tenant's pipeline record; removing a missing one is not an
// error.
func (s *Store) DeletePipeline(ctx context.Context, tenantID, name string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM pipelines WHERE tenant_id = $1 AND name = $2`, tenantID, name); err != nil {
		return fmt.Errorf("metastore: deleting pipeline %s/%s: %w", tenantID, name, err)
	}
	return nil
}

func scanPipeline(row pgx.Row) (PipelineRecord, error) {
	var rec PipelineRecord
	var spec []byte
	var cutoff *time.Time
	err := row.Scan(&rec.TenantID, &rec.Name, &spec, &rec.RollupTable, &cutoff, &rec.Generation, &rec.UpdatedAt)
	rec.Spec = spec
	if cutoff != nil {
		rec.RollupCutoff = cutoff.UTC()
	}
	return rec, err
}

// nullTime is NULL for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
