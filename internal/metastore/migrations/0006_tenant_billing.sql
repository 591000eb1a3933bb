-- The tenant's Stripe customer and subscription, written by the Tenant controller, so the
-- query API can read the subscription's status and period without the Kubernetes API.
ALTER TABLE tenants
    ADD COLUMN billing_customer_id     text NOT NULL DEFAULT '',
    ADD COLUMN billing_subscription_id text NOT NULL DEFAULT '';
