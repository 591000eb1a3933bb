-- The tenant's subscription as the Tenant controller last read it from Stripe, so the
-- query API answers from the row and no query pod needs the Stripe key. A NULL period
-- bound: Stripe did not say. A NULL billing_checked_at: never read (billing is off, or
-- the subscription was not read yet).
ALTER TABLE tenants
    ADD COLUMN billing_status       text NOT NULL DEFAULT '',
    ADD COLUMN billing_period_start timestamptz,
    ADD COLUMN billing_period_end   timestamptz,
    ADD COLUMN billing_checked_at   timestamptz;
