package metastore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// AuditEntry is one line of a tenant's audit log.
type AuditEntry struct {
	TenantID string
	// Actor is who acted: a user's email, or the component (for example "operator").
	Actor string
	// Action is what happened, for example "tenant.suspended".
	Action string
	// Target is what it happened to, for example a dashboard name; may be empty.
	Target string
	// Details is stored as JSON; nil stores {}.
	Details any
}

// AppendAudit appends an entry to the audit log. The log is not tied to the tenant's row,
// so it keeps the record of a tenant's deletion.
func (s *Store) AppendAudit(ctx context.Context, e AuditEntry) error {
	if e.TenantID == "" || e.Actor == "" || e.Action == "" {
		return errors.New("metastore: audit entry needs a tenant, an actor and an action")
	}
	details := []byte("{}")
	if e.Details != nil {
		var err error
		if details, err = json.Marshal(e.Details); err != nil {
			return fmt.Errorf("metastore: audit details of %s: %w", e.Action, err)
		}
	}
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `
			INSERT INTO audit_log (tenant_id, actor, action, target, details) VALUES ($1, $2, $3, $4, $5::jsonb)`,
			e.TenantID, e.Actor, e.Action, e.Target, string(details))
		return err
	})
	if err != nil {
		return fmt.Errorf("metastore: appending audit entry %s of tenant %q: %w", e.Action, e.TenantID, err)
	}
	return nil
}
