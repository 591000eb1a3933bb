package metastore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// TenantBilling is a tenant's subscription as the Tenant controller last read it from the
// billing provider. The query API answers from it, so only the operator needs the
// provider's key. The zero value is billing off.
type TenantBilling struct {
	CustomerID     string
	SubscriptionID string
	// Status is the provider's subscription status: active, trialing, past_due, ...
	Status string
	// PeriodStart and PeriodEnd bound the current billing period; zero when the provider
	// did not say.
	PeriodStart time.Time
	PeriodEnd   time.Time
	// CheckedAt is when the provider was read; zero when it never was.
	CheckedAt time.Time
}

// Billing is the billing state the row holds.
func (r TenantRecord) Billing() TenantBilling {
	return TenantBilling{
		CustomerID:     r.BillingCustomerID,
		SubscriptionID: r.BillingSubscriptionID,
		Status:         r.BillingStatus,
		PeriodStart:    r.BillingPeriodStart,
		PeriodEnd:      r.BillingPeriodEnd,
		CheckedAt:      r.BillingCheckedAt,
	}
}

func (b TenantBilling) validate() error {
	if b.SubscriptionID == "" && (b.Status != "" || !b.PeriodStart.IsZero() || !b.PeriodEnd.IsZero() || !b.CheckedAt.IsZero()) {
		// Readers take an empty subscription id for billing off and would not see the rest.
		return errors.New("a subscription state without a subscription id")
	}
	return nil
}

// SetTenantBilling stores the tenant's billing state; TenantBilling{} clears it. It
// compares first and writes nothing when the row already holds b, and moves updated_at
// only when the subscription changed, not when it was merely read again (CheckedAt).
// ErrNotFound if the tenant has no row yet.
func (s *Store) SetTenantBilling(ctx context.Context, id string, b TenantBilling) error {
	if err := b.validate(); err != nil {
		return fmt.Errorf("metastore: setting billing of tenant %q: %w", id, err)
	}
	var found bool
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		// The UPDATE runs whether or not the SELECT reads it; target tells a missing row
		// from an unchanged one.
		return c.QueryRow(ctx, `
			WITH target AS (
				SELECT 1 FROM tenants WHERE id = $1
			), written AS (
				UPDATE tenants SET
					billing_customer_id = $2::text,
					billing_subscription_id = $3::text,
					billing_status = $4::text,
					billing_period_start = $5::timestamptz,
					billing_period_end = $6::timestamptz,
					billing_checked_at = $7::timestamptz,
					updated_at = CASE
						WHEN (billing_customer_id, billing_subscription_id, billing_status, billing_period_start, billing_period_end)
							IS DISTINCT FROM ($2::text, $3::text, $4::text, $5::timestamptz, $6::timestamptz)
						THEN now() ELSE updated_at END
				WHERE id = $1
					AND (billing_customer_id, billing_subscription_id, billing_status, billing_period_start, billing_period_end, billing_checked_at)
						IS DISTINCT FROM ($2::text, $3::text, $4::text, $5::timestamptz, $6::timestamptz, $7::timestamptz)
				RETURNING 1
			)
			SELECT EXISTS (SELECT 1 FROM target)`,
			id, b.CustomerID, b.SubscriptionID, b.Status, columnTime(b.PeriodStart), columnTime(b.PeriodEnd), columnTime(b.CheckedAt)).
			Scan(&found)
	})
	if err != nil {
		return fmt.Errorf("metastore: setting billing of tenant %q: %w", id, err)
	}
	if !found {
		return fmt.Errorf("metastore: setting billing of tenant %q: %w", id, ErrNotFound)
	}
	return nil
}

// columnTime is t for a nullable timestamptz column: NULL when zero, else UTC at the
// column's microsecond precision, so an unchanged time compares equal to the stored one.
func columnTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Microsecond)
	return &t
}

// utcOrZero reads a nullable timestamptz column: the zero time for NULL.
func utcOrZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
