-- Initial schema of Shoal's metadata store. Tenant ids are the Tenant object names
-- (DNS labels); every tenant-owned row cascades away with its tenant.

CREATE TABLE tenants (
    id               text PRIMARY KEY,
    display_name     text NOT NULL DEFAULT '',
    plan             text NOT NULL,
    isolation        text NOT NULL CHECK (isolation IN ('Shared', 'Dedicated')),
    suspended        boolean NOT NULL DEFAULT false,
    suspended_reason text NOT NULL DEFAULT '',
    deleted_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email      text NOT NULL CHECK (email <> ''),
    role       text NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- Sign-in matches emails case-insensitively, so uniqueness must too.
CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, lower(email));

-- Keys are stored only as SHA-256 hashes; prefix is a short display aid
-- ("shk_AbCd...") that cannot be used to authenticate.
CREATE TABLE api_keys (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('ingest', 'personal')),
    user_id    uuid REFERENCES users (id) ON DELETE CASCADE,
    name       text NOT NULL DEFAULT '',
    prefix     text NOT NULL,
    hash       bytea NOT NULL UNIQUE CHECK (octet_length(hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    CHECK (kind <> 'personal' OR user_id IS NOT NULL)
);
CREATE INDEX api_keys_active ON api_keys (tenant_id, kind) WHERE revoked_at IS NULL;

CREATE TABLE dashboards (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text NOT NULL,
    title       text NOT NULL DEFAULT '',
    public      boolean NOT NULL DEFAULT false,
    share_token text UNIQUE,
    time_range  text NOT NULL DEFAULT '',
    refresh     text NOT NULL DEFAULT '',
    -- Set while a Dashboard object owns the row: the web API then serves it read-only.
    managed_by  text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE widgets (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    dashboard_id uuid NOT NULL REFERENCES dashboards (id) ON DELETE CASCADE,
    position     integer NOT NULL DEFAULT 0,
    type         text NOT NULL CHECK (type IN ('timeseries', 'bar', 'number', 'table', 'pie')),
    title        text NOT NULL DEFAULT '',
    query        jsonb NOT NULL DEFAULT '{}',
    layout       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX widgets_dashboard ON widgets (dashboard_id, position);

-- credentials are AES-GCM ciphertext; key_id names the key that sealed them, so keys
-- can be rotated without a flag day.
CREATE TABLE data_sources (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name           text NOT NULL,
    type           text NOT NULL CHECK (type IN ('http', 'postgres', 's3', 'webhook')),
    config         jsonb NOT NULL DEFAULT '{}',
    credentials    bytea,
    key_id         text NOT NULL DEFAULT '',
    managed_by     text NOT NULL DEFAULT '',
    cursor         text NOT NULL DEFAULT '',
    last_sync_at   timestamptz,
    records_synced bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name),
    CHECK (credentials IS NULL OR key_id <> '')
);

CREATE TABLE alert_rules (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       text NOT NULL,
    query      jsonb NOT NULL DEFAULT '{}',
    condition  jsonb NOT NULL DEFAULT '{}',
    enabled    boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE alerts (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    rule_id     uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    state       text NOT NULL CHECK (state IN ('firing', 'resolved')),
    value       double precision,
    fired_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);
CREATE INDEX alerts_rule ON alerts (rule_id, fired_at DESC);

-- No foreign key to tenants: the audit trail, including a tenant's deletion, outlives
-- the tenant.
CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    tenant_id text NOT NULL,
    actor     text NOT NULL,
    action    text NOT NULL,
    target    text NOT NULL DEFAULT '',
    details   jsonb NOT NULL DEFAULT '{}',
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at DESC);
