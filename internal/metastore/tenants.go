package metastore

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Isolation values, as in the Tenant spec.
const (
	IsolationShared    = "Shared"
	IsolationDedicated = "Dedicated"
)

// TenantRecord is a tenant's row. ID is the Tenant object's name.
type TenantRecord struct {
	ID              string
	DisplayName     string
	Plan            string
	Isolation       string
	Suspended       bool
	SuspendedReason string
	// LakeClass is the tenant's retention class in the lake (Standard when empty): the
	// processor writes under its prefix.
	LakeClass string
	// BillingCustomerID and BillingSubscriptionID are the tenant's Stripe customer and
	// subscription; empty while billing is off or they are not created yet. UpsertTenant
	// stores them only when it creates the row, so a new tenant's row names its
	// subscription at once; afterwards SetTenantBilling owns them.
	BillingCustomerID     string
	BillingSubscriptionID string
	// BillingStatus, BillingPeriodStart, BillingPeriodEnd and BillingCheckedAt are the
	// subscription as the Tenant controller last read it (see TenantBilling); set by
	// SetTenantBilling, ignored by UpsertTenant.
	BillingStatus      string
	BillingPeriodStart time.Time
	BillingPeriodEnd   time.Time
	BillingCheckedAt   time.Time
	// DeletedAt, CreatedAt and UpdatedAt are set by the store; UpsertTenant ignores them.
	DeletedAt *time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (r *TenantRecord) validate() error {
	switch {
	case r.ID == "":
		return errors.New("tenant id is empty")
	case r.Plan == "":
		return fmt.Errorf("tenant %q: plan is empty", r.ID)
	case r.Isolation != IsolationShared && r.Isolation != IsolationDedicated:
		return fmt.Errorf("tenant %q: isolation %q is neither %s nor %s", r.ID, r.Isolation, IsolationShared, IsolationDedicated)
	case r.LakeClass != "" && r.LakeClass != "Standard" && r.LakeClass != "Extended" && r.LakeClass != "Compliance":
		return fmt.Errorf("tenant %q: lake class %q is not Standard, Extended or Compliance", r.ID, r.LakeClass)
	}
	return nil
}

// UpsertTenant creates the tenant or brings its row to rec: display name, plan,
// isolation and suspension. A tenant upserted again is live, so a deletion mark is
// cleared. updated_at moves only when something changed. The billing columns belong to
// SetTenantBilling: rec's billing ids are stored only when the row is created.
func (s *Store) UpsertTenant(ctx context.Context, rec TenantRecord) error {
	if err := rec.validate(); err != nil {
		return fmt.Errorf("metastore: upserting tenant: %w", err)
	}
	reason := rec.SuspendedReason
	if !rec.Suspended {
		reason = ""
	}
	class := rec.LakeClass
	if class == "" {
		class = "Standard"
	}
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `
			INSERT INTO tenants (id, display_name, plan, isolation, suspended, suspended_reason, lake_class,
				billing_customer_id, billing_subscription_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (id) DO UPDATE SET
				display_name = EXCLUDED.display_name,
				plan = EXCLUDED.plan,
				isolation = EXCLUDED.isolation,
				suspended = EXCLUDED.suspended,
				suspended_reason = EXCLUDED.suspended_reason,
				lake_class = EXCLUDED.lake_class,
				deleted_at = NULL,
				updated_at = now()
			WHERE (tenants.display_name, tenants.plan, tenants.isolation, tenants.suspended, tenants.suspended_reason, tenants.lake_class,
					tenants.deleted_at)
				IS DISTINCT FROM (EXCLUDED.display_name, EXCLUDED.plan, EXCLUDED.isolation, EXCLUDED.suspended, EXCLUDED.suspended_reason, EXCLUDED.lake_class,
					NULL::timestamptz)`,
			rec.ID, rec.DisplayName, rec.Plan, rec.Isolation, rec.Suspended, reason, class, rec.BillingCustomerID, rec.BillingSubscriptionID)
		return err
	})
	if err != nil {
		return fmt.Errorf("metastore: upserting tenant %q: %w", rec.ID, err)
	}
	return nil
}

// GetTenant returns the tenant's row, or ErrNotFound.
func (s *Store) GetTenant(ctx context.Context, id string) (TenantRecord, error) {
	var (
		rec                    TenantRecord
		periodStart, periodEnd *time.Time
		billingChecked         *time.Time
	)
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `
			SELECT id, display_name, plan, isolation, suspended, suspended_reason, lake_class,
				billing_customer_id, billing_subscription_id, billing_status, billing_period_start, billing_period_end,
				billing_checked_at, deleted_at, created_at, updated_at
			FROM tenants WHERE id = $1`, id).
			Scan(&rec.ID, &rec.DisplayName, &rec.Plan, &rec.Isolation, &rec.Suspended, &rec.SuspendedReason,
				&rec.LakeClass, &rec.BillingCustomerID, &rec.BillingSubscriptionID, &rec.BillingStatus, &periodStart, &periodEnd,
				&billingChecked, &rec.DeletedAt, &rec.CreatedAt, &rec.UpdatedAt)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return TenantRecord{}, fmt.Errorf("metastore: tenant %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return TenantRecord{}, fmt.Errorf("metastore: reading tenant %q: %w", id, err)
	}
	rec.BillingPeriodStart, rec.BillingPeriodEnd, rec.BillingCheckedAt = utcOrZero(periodStart), utcOrZero(periodEnd), utcOrZero(billingChecked)
	return rec, nil
}

// SetSuspended marks the tenant suspended (with a reason the data plane can show) or
// resumes it. ErrNotFound if the tenant does not exist.
func (s *Store) SetSuspended(ctx context.Context, id string, suspended bool, reason string) error {
	if !suspended {
		reason = ""
	}
	return s.updateTenant(ctx, id, "setting suspension of", `
		UPDATE tenants SET suspended = $2, suspended_reason = $3, updated_at = now()
		WHERE id = $1`, suspended, reason)
}

// MarkTenantDeleted records that the tenant is being deleted: its ingest keys stop
// authenticating while the rest is cleaned up. Marking twice keeps the first time.
func (s *Store) MarkTenantDeleted(ctx context.Context, id string) error {
	return s.updateTenant(ctx, id, "marking deleted", `
		UPDATE tenants SET deleted_at = coalesce(deleted_at, now()), updated_at = now()
		WHERE id = $1`)
}

func (s *Store) updateTenant(ctx context.Context, id, what, sql string, args ...any) error {
	var affected int64
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, sql, append([]any{id}, args...)...)
		affected = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("metastore: %s tenant %q: %w", what, id, err)
	}
	if affected == 0 {
		return fmt.Errorf("metastore: %s tenant %q: %w", what, id, ErrNotFound)
	}
	return nil
}

// DeleteTenant deletes the tenant and, by cascade, everything it owns except its audit
// log. Deleting a tenant that is already gone succeeds, so finalizers can retry.
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, "DELETE FROM tenants WHERE id = $1", id)
		return err
	})
	if err != nil {
		return fmt.Errorf("metastore: deleting tenant %q: %w", id, err)
	}
	return nil
}

// EnsureOwners adds each email that is not yet a user of the tenant as an owner. Existing
// users keep their role (an owner demoted to admin by hand stays admin) and users not in
// emails stay: owners in the spec are a floor, not the full list. Emails match
// case-insensitively.
func (s *Store) EnsureOwners(ctx context.Context, tenantID string, emails []string) error {
	var clean []string
	seen := map[string]bool{}
	for _, e := range emails {
		e = strings.TrimSpace(e)
		if e == "" || seen[strings.ToLower(e)] {
			continue
		}
		if addr, err := mail.ParseAddress(e); err != nil || addr.Address != e {
			return fmt.Errorf("metastore: owners of tenant %q: %q is not an email address", tenantID, e)
		}
		seen[strings.ToLower(e)] = true
		clean = append(clean, e)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		for _, e := range clean {
			if _, err := tx.Exec(ctx, `
				INSERT INTO users (tenant_id, email, role) VALUES ($1, $2, 'owner')
				ON CONFLICT (tenant_id, lower(email)) DO NOTHING`, tenantID, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("metastore: ensuring owners of tenant %q: %w", tenantID, err)
	}
	return nil
}

// lockTenant locks the tenant's row for the transaction, serialising changes to what it
// owns; ErrNotFound if it does not exist.
func lockTenant(ctx context.Context, tx pgx.Tx, id string) error {
	var one int
	err := tx.QueryRow(ctx, "SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE", id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
