-- What the query API and the Dashboard and DataSource controllers need of dashboards,
-- data sources and alerts. Nothing wrote the dropped columns before this migration.

-- Share tokens are stored only as SHA-256 hashes (tokens carry 256 random bits), so a
-- database dump does not hand out every public dashboard. content_hash lets a sync from a
-- Dashboard object skip writing when nothing changed; version counts the writes.
ALTER TABLE dashboards
    DROP COLUMN share_token,
    DROP COLUMN time_range,
    DROP COLUMN refresh,
    ADD COLUMN description      text NOT NULL DEFAULT '',
    ADD COLUMN time_from        text NOT NULL DEFAULT '',
    ADD COLUMN time_to          text NOT NULL DEFAULT '',
    ADD COLUMN refresh_seconds  integer NOT NULL DEFAULT 0 CHECK (refresh_seconds >= 0),
    ADD COLUMN share_token_hash bytea UNIQUE CHECK (octet_length(share_token_hash) = 32),
    ADD COLUMN content_hash     bytea,
    ADD COLUMN version          bigint NOT NULL DEFAULT 1,
    ADD CHECK (public OR share_token_hash IS NULL);
-- One row per owning object within a tenant.
CREATE UNIQUE INDEX dashboards_managed_by ON dashboards (tenant_id, managed_by) WHERE managed_by <> '';

-- key is the widget's id in its Dashboard object (empty for widgets made through the
-- API), so a status can name the widget.
ALTER TABLE widgets ADD COLUMN key text NOT NULL DEFAULT '';
CREATE UNIQUE INDEX widgets_key ON widgets (dashboard_id, key) WHERE key <> '';

ALTER TABLE data_sources
    ADD COLUMN content_hash bytea,
    ADD COLUMN version      bigint NOT NULL DEFAULT 1;
CREATE UNIQUE INDEX data_sources_managed_by ON data_sources (tenant_id, managed_by) WHERE managed_by <> '';
-- Re-sealing after a key rotation looks for rows sealed with other keys.
CREATE INDEX data_sources_key_id ON data_sources (key_id) WHERE credentials IS NOT NULL;

-- The evaluator pages through the enabled rules of every tenant by id.
CREATE INDEX alert_rules_enabled ON alert_rules (id) WHERE enabled;

-- At most one firing alert per rule: firing again while firing is a no-op.
CREATE UNIQUE INDEX alerts_one_firing ON alerts (rule_id) WHERE state = 'firing';
CREATE INDEX alerts_tenant_fired ON alerts (tenant_id, fired_at DESC);
ALTER TABLE alerts ADD CHECK ((state = 'resolved') = (resolved_at IS NOT NULL));
