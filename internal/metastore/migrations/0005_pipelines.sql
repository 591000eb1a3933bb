-- The pipelines the query API may read: each Pipeline object's spec and the rollup table
-- that currently serves it, published by the Pipeline controller. The query API takes
-- pipelines, metrics and dimensions from here as allow-lists, never from the request, and
-- needs no access to the Kubernetes API.
CREATE TABLE pipelines (
    tenant_id    text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (name <> ''),
    spec         jsonb NOT NULL,
    -- Empty until the first rollup table is built and backfilled.
    rollup_table text NOT NULL DEFAULT '',
    -- The rollup's view counts events received from this time on and its backfill those
    -- before, so raw reads can count exactly what the rollup does.
    rollup_cutoff timestamptz,
    generation   bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);
