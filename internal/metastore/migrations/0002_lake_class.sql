-- The processor writes a tenant's lake objects under its retention class.
ALTER TABLE tenants ADD COLUMN lake_class text NOT NULL DEFAULT 'Standard'
    CHECK (lake_class IN ('Standard', 'Extended', 'Compliance'));
