package metastore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Alert condition operators: how the query's value compares with the threshold.
const (
	OpGreater        = "gt"
	OpGreaterOrEqual = "gte"
	OpLess           = "lt"
	OpLessOrEqual    = "lte"
	OpEqual          = "eq"
	OpNotEqual       = "neq"
)

// Alert states.
const (
	AlertFiring   = "firing"
	AlertResolved = "resolved"
)

// Alert rule and alert limits.
const (
	MinAlertWindow = time.Minute
	MaxAlertWindow = 7 * 24 * time.Hour
	// DefaultAlertsLimit and MaxAlertsLimit bound ListAlerts.
	DefaultAlertsLimit = 100
	MaxAlertsLimit     = 500
	// DefaultRecentAlerts is how far back ListAlerts shows resolved alerts by default.
	DefaultRecentAlerts = 7 * 24 * time.Hour
)

var operators = []string{OpGreater, OpGreaterOrEqual, OpLess, OpLessOrEqual, OpEqual, OpNotEqual}

// AlertCondition says when a rule's query value is alarming.
type AlertCondition struct {
	// Operator is gt, gte, lt, lte, eq or neq: value <op> threshold fires.
	Operator  string  `json:"operator"`
	Threshold float64 `json:"threshold"`
	// Window is the span the query is evaluated over, ending now: 1m to 7d.
	Window metav1.Duration `json:"window"`
}

// Breached reports whether value meets the condition, so the evaluator fires.
func (c AlertCondition) Breached(value float64) bool {
	switch c.Operator {
	case OpGreater:
		return value > c.Threshold
	case OpGreaterOrEqual:
		return value >= c.Threshold
	case OpLess:
		return value < c.Threshold
	case OpLessOrEqual:
		return value <= c.Threshold
	case OpEqual:
		return value == c.Threshold
	case OpNotEqual:
		return value != c.Threshold
	}
	return false
}

// AlertRuleSpec is an alert rule's content.
type AlertRuleSpec struct {
	// Name is unique within the tenant and orders lists.
	Name string `json:"name"`
	// Query is a JSON object the query API defines: the metric query whose value is
	// compared with the threshold.
	Query     json.RawMessage `json:"query"`
	Condition AlertCondition  `json:"condition"`
	Enabled   bool            `json:"enabled"`
}

// AlertRule is a stored alert rule.
type AlertRule struct {
	ID       string
	TenantID string
	AlertRuleSpec
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Alert is one firing of a rule, resolved or not.
type Alert struct {
	ID       string
	RuleID   string
	RuleName string
	TenantID string
	// State is firing or resolved.
	State string
	// Value is the query's value when the alert fired.
	Value      float64
	FiredAt    time.Time
	ResolvedAt *time.Time
}

// Validate reports every invalid field of the spec.
func (r *AlertRuleSpec) Validate() field.ErrorList {
	errs := validateName(field.NewPath("name"), r.Name)
	if len(r.Query) == 0 {
		errs = append(errs, field.Required(field.NewPath("query"), "a JSON object"))
	}
	errs = append(errs, validateJSONObject(field.NewPath("query"), r.Query, maxQueryLen)...)
	cp := field.NewPath("condition")
	if !contains(operators, r.Condition.Operator) {
		errs = append(errs, field.NotSupported(cp.Child("operator"), r.Condition.Operator, operators))
	}
	if math.IsNaN(r.Condition.Threshold) || math.IsInf(r.Condition.Threshold, 0) {
		errs = append(errs, field.Invalid(cp.Child("threshold"), r.Condition.Threshold, "must be a finite number"))
	}
	if w := r.Condition.Window.Duration; w < MinAlertWindow || w > MaxAlertWindow {
		errs = append(errs, field.Invalid(cp.Child("window"), w.String(), "must be between 1m and 168h"))
	}
	return errs
}

const alertRuleColumns = `id::text, tenant_id, name, query::text, condition::text, enabled, created_at, updated_at`

func scanAlertRule(row pgx.Row) (AlertRule, error) {
	var (
		r                AlertRule
		query, condition string
	)
	if err := row.Scan(&r.ID, &r.TenantID, &r.Name, &query, &condition, &r.Enabled, &r.CreatedAt, &r.UpdatedAt); err != nil {
		return AlertRule{}, err
	}
	r.Query = json.RawMessage(query)
	if err := json.Unmarshal([]byte(condition), &r.Condition); err != nil {
		return AlertRule{}, fmt.Errorf("reading the condition of alert rule %s: %w", r.ID, err)
	}
	return r, nil
}

func getAlertRule(ctx context.Context, q rowQuerier, tenantID, id string) (AlertRule, error) {
	if !validID(id) {
		return AlertRule{}, ErrNotFound
	}
	r, err := scanAlertRule(q.QueryRow(ctx, `SELECT `+alertRuleColumns+` FROM alert_rules
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return AlertRule{}, ErrNotFound
	}
	return r, err
}

// GetAlertRule returns the tenant's alert rule, or ErrNotFound.
func (s *Store) GetAlertRule(ctx context.Context, tenantID, id string) (AlertRule, error) {
	var r AlertRule
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		var err error
		r, err = getAlertRule(ctx, c, tenantID, id)
		return err
	})
	if err != nil {
		return AlertRule{}, fmt.Errorf("metastore: alert rule %q of tenant %q: %w", id, tenantID, err)
	}
	return r, nil
}

// ListAlertRules returns a page of the tenant's alert rules ordered by name.
func (s *Store) ListAlertRules(ctx context.Context, tenantID string, opts ListOptions) (Page[AlertRule], error) {
	after, err := decodeCursor(opts.Cursor)
	if err != nil {
		return Page[AlertRule]{}, fmt.Errorf("metastore: listing alert rules: %w", err)
	}
	limit := opts.limit()
	list, err := s.queryAlertRules(ctx, `SELECT `+alertRuleColumns+` FROM alert_rules
		WHERE tenant_id = $1 AND name > $2 ORDER BY name LIMIT $3`, tenantID, after, limit+1)
	if err != nil {
		return Page[AlertRule]{}, fmt.Errorf("metastore: listing alert rules of tenant %q: %w", tenantID, err)
	}
	return pageOf(list, limit, func(r AlertRule) string { return r.Name }), nil
}

// ListEnabledAlertRules returns a page of the enabled alert rules of every tenant, for the
// evaluator, ordered by id. Rules of suspended tenants and of tenants being deleted are
// left out: their data stopped flowing, and alerts would only be noise.
func (s *Store) ListEnabledAlertRules(ctx context.Context, opts ListOptions) (Page[AlertRule], error) {
	after, err := decodeCursor(opts.Cursor)
	if err == nil && after != "" && !validID(after) {
		err = ErrInvalidCursor
	}
	if err != nil {
		return Page[AlertRule]{}, fmt.Errorf("metastore: listing enabled alert rules: %w", err)
	}
	if after == "" {
		after = "00000000-0000-0000-0000-000000000000"
	}
	limit := opts.limit()
	list, err := s.queryAlertRules(ctx, `SELECT `+alertRuleColumns+` FROM alert_rules r
		WHERE r.enabled AND r.id > $1::uuid
			AND EXISTS (SELECT 1 FROM tenants t WHERE t.id = r.tenant_id AND NOT t.suspended AND t.deleted_at IS NULL)
		ORDER BY r.id LIMIT $2`, after, limit+1)
	if err != nil {
		return Page[AlertRule]{}, fmt.Errorf("metastore: listing enabled alert rules: %w", err)
	}
	return pageOf(list, limit, func(r AlertRule) string { return r.ID }), nil
}

func (s *Store) queryAlertRules(ctx context.Context, sql string, args ...any) ([]AlertRule, error) {
	var list []AlertRule
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		list, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (AlertRule, error) { return scanAlertRule(row) })
		return err
	})
	return list, err
}

// CreateAlertRule stores a new alert rule of the tenant. ErrNameTaken, *InvalidError, or
// ErrNotFound if the tenant does not exist.
func (s *Store) CreateAlertRule(ctx context.Context, tenantID string, spec AlertRuleSpec) (AlertRule, error) {
	var r AlertRule
	err := func() error {
		if err := invalid(spec.Validate()); err != nil {
			return err
		}
		query, condition, err := spec.jsonColumns()
		if err != nil {
			return err
		}
		return s.inTx(ctx, func(tx pgx.Tx) error {
			var id string
			err := tx.QueryRow(ctx, `
				INSERT INTO alert_rules (tenant_id, name, query, condition, enabled)
				VALUES ($1, $2, $3::jsonb, $4::jsonb, $5) RETURNING id::text`,
				tenantID, spec.Name, query, condition, spec.Enabled).Scan(&id)
			if err != nil {
				return mapWriteError(err)
			}
			r, err = getAlertRule(ctx, tx, tenantID, id)
			return err
		})
	}()
	if err != nil {
		return AlertRule{}, fmt.Errorf("metastore: creating alert rule %q of tenant %q: %w", spec.Name, tenantID, err)
	}
	return r, nil
}

func (r *AlertRuleSpec) jsonColumns() (query, condition string, err error) {
	if query, err = jsonText(r.Query); err != nil {
		return "", "", err
	}
	c, err := json.Marshal(r.Condition)
	return query, string(c), err
}

// UpdateAlertRule replaces the tenant's alert rule with spec. Disabling a rule resolves
// its firing alert, since the evaluator no longer looks at it. ErrNotFound, ErrNameTaken,
// *InvalidError.
func (s *Store) UpdateAlertRule(ctx context.Context, tenantID, id string, spec AlertRuleSpec) (AlertRule, error) {
	var r AlertRule
	err := func() error {
		if err := invalid(spec.Validate()); err != nil {
			return err
		}
		if !validID(id) {
			return ErrNotFound
		}
		query, condition, err := spec.jsonColumns()
		if err != nil {
			return err
		}
		return s.inTx(ctx, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `
				UPDATE alert_rules SET name = $3, query = $4::jsonb, condition = $5::jsonb, enabled = $6, updated_at = now()
				WHERE tenant_id = $1 AND id = $2`, tenantID, id, spec.Name, query, condition, spec.Enabled)
			if err != nil {
				return mapWriteError(err)
			}
			if tag.RowsAffected() == 0 {
				return ErrNotFound
			}
			if !spec.Enabled {
				if _, err := tx.Exec(ctx, `UPDATE alerts SET state = 'resolved', resolved_at = now()
					WHERE rule_id = $1 AND state = 'firing'`, id); err != nil {
					return err
				}
			}
			r, err = getAlertRule(ctx, tx, tenantID, id)
			return err
		})
	}()
	if err != nil {
		return AlertRule{}, fmt.Errorf("metastore: updating alert rule %q of tenant %q: %w", id, tenantID, err)
	}
	return r, nil
}

// DeleteAlertRule deletes the tenant's alert rule and its alerts. ErrNotFound.
func (s *Store) DeleteAlertRule(ctx context.Context, tenantID, id string) error {
	var affected int64
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		if !validID(id) {
			return nil
		}
		tag, err := c.Exec(ctx, "DELETE FROM alert_rules WHERE tenant_id = $1 AND id = $2", tenantID, id)
		affected = tag.RowsAffected()
		return err
	})
	if err == nil && affected == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("metastore: deleting alert rule %q of tenant %q: %w", id, tenantID, err)
	}
	return nil
}

const alertColumns = `a.id::text, a.rule_id::text, r.name, a.tenant_id, a.state, coalesce(a.value, 'NaN'), a.fired_at, a.resolved_at`

func scanAlert(row pgx.Row) (Alert, error) {
	var a Alert
	err := row.Scan(&a.ID, &a.RuleID, &a.RuleName, &a.TenantID, &a.State, &a.Value, &a.FiredAt, &a.ResolvedAt)
	return a, err
}

func getAlert(ctx context.Context, q rowQuerier, id string) (Alert, error) {
	return scanAlert(q.QueryRow(ctx, `SELECT `+alertColumns+`
		FROM alerts a JOIN alert_rules r ON r.id = a.rule_id WHERE a.id = $1`, id))
}

// FireAlert records that rule fired with value. While the rule has a firing alert,
// firing again changes nothing and returns that alert with fired false, so the caller
// notifies once per firing. ErrNotFound if the rule does not exist in rule.TenantID or
// is disabled.
func (s *Store) FireAlert(ctx context.Context, rule AlertRule, value float64) (alert Alert, fired bool, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if !validID(rule.ID) {
			return ErrNotFound
		}
		var id string
		err := tx.QueryRow(ctx, `
			INSERT INTO alerts (rule_id, tenant_id, state, value)
			SELECT r.id, r.tenant_id, 'firing', $3 FROM alert_rules r WHERE r.id = $1 AND r.tenant_id = $2 AND r.enabled
			ON CONFLICT (rule_id) WHERE state = 'firing' DO NOTHING
			RETURNING id::text`, rule.ID, rule.TenantID, value).Scan(&id)
		switch {
		case err == nil:
			fired = true
		case errors.Is(err, pgx.ErrNoRows):
			// Firing already, or no such rule.
			err = tx.QueryRow(ctx, `SELECT a.id::text FROM alerts a JOIN alert_rules r ON r.id = a.rule_id
				WHERE a.rule_id = $1 AND a.tenant_id = $2 AND a.state = 'firing' AND r.enabled`, rule.ID, rule.TenantID).Scan(&id)
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotFound
			}
			if err != nil {
				return err
			}
		default:
			return err
		}
		alert, err = getAlert(ctx, tx, id)
		return err
	})
	if err != nil {
		return Alert{}, false, fmt.Errorf("metastore: firing alert rule %q of tenant %q: %w", rule.ID, rule.TenantID, err)
	}
	return alert, fired, nil
}

// ResolveAlert resolves the rule's firing alert and returns it with resolved true; with
// none firing it does nothing and returns resolved false.
func (s *Store) ResolveAlert(ctx context.Context, rule AlertRule) (alert Alert, resolved bool, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if !validID(rule.ID) {
			return nil
		}
		var id string
		err := tx.QueryRow(ctx, `
			UPDATE alerts SET state = 'resolved', resolved_at = now()
			WHERE rule_id = $1 AND tenant_id = $2 AND state = 'firing' RETURNING id::text`, rule.ID, rule.TenantID).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		resolved = true
		alert, err = getAlert(ctx, tx, id)
		return err
	})
	if err != nil {
		return Alert{}, false, fmt.Errorf("metastore: resolving alert rule %q of tenant %q: %w", rule.ID, rule.TenantID, err)
	}
	return alert, resolved, nil
}

// AlertListOptions bounds ListAlerts.
type AlertListOptions struct {
	// Limit caps the alerts returned: DefaultAlertsLimit when 0 or less, at most
	// MaxAlertsLimit.
	Limit int
	// ResolvedSince is how far back resolved alerts are shown; DefaultRecentAlerts ago
	// when zero.
	ResolvedSince time.Time
}

// ListAlerts returns the tenant's firing alerts, then the alerts resolved since
// opts.ResolvedSince, newest first within each, at most opts.Limit in all.
func (s *Store) ListAlerts(ctx context.Context, tenantID string, opts AlertListOptions) ([]Alert, error) {
	limit := opts.Limit
	switch {
	case limit <= 0:
		limit = DefaultAlertsLimit
	case limit > MaxAlertsLimit:
		limit = MaxAlertsLimit
	}
	since := opts.ResolvedSince
	if since.IsZero() {
		since = time.Now().Add(-DefaultRecentAlerts)
	}
	var list []Alert
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT `+alertColumns+`
			FROM alerts a JOIN alert_rules r ON r.id = a.rule_id
			WHERE a.tenant_id = $1 AND (a.state = 'firing' OR a.resolved_at >= $2)
			ORDER BY a.state = 'firing' DESC, a.fired_at DESC, a.id LIMIT $3`, tenantID, since, limit)
		if err != nil {
			return err
		}
		list, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Alert, error) { return scanAlert(row) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("metastore: listing alerts of tenant %q: %w", tenantID, err)
	}
	return list, nil
}
