package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/runtime/query/metricquery"
	"github.com/shoal-dev/shoal/runtime/query/notify"
)

// EvaluatorOptions configure an Evaluator. Store and Engine are required.
type EvaluatorOptions struct {
	Store  *metastore.Store
	Engine metricquery.Engine
	// Tenant, when set, evaluates only that tenant's rules (a Dedicated tenant's
	// evaluator). Unset, the evaluator is the shared one: it evaluates the rules of every
	// Shared tenant, and leaves Dedicated tenants' rules to their own evaluators, whose
	// engine reads the tenant's own ClickHouse.
	Tenant string
	// Webhook and Email send notifications; a rule's targets of a nil channel are
	// skipped (the API refuses to write them).
	Webhook *notify.Webhook
	Email   *notify.SendGrid
	// Retry bounds the attempts of one notification; notify's defaults when zero.
	Retry notify.RetryPolicy
	// DeliveryWorkers and DeliveryQueue bound the notifications delivered at once and
	// waiting; notify's defaults when zero.
	DeliveryWorkers, DeliveryQueue int
	// DrainTimeout is how long Run, once its context ends, waits for notifications
	// still queued or being retried. Default 30s.
	DrainTimeout time.Duration
	// Registry receives the notification metrics; none when nil.
	Registry prometheus.Registerer
	// Interval between evaluations. Default 1m.
	Interval time.Duration
	// QueryTimeout bounds one rule's query. Default 30s.
	QueryTimeout time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
}

// Evaluator evaluates every enabled alert rule on a schedule: the rule's query over its
// window ending now, its total compared with the threshold. An alert fires when the
// condition starts to hold and resolves when it stops; notifications go out on those
// transitions only. The metastore keeps one firing alert per rule, so several
// evaluators (replicas) notify each transition once.
//
// Notifications are delivered in the background by a notify.Dispatcher, retried while
// they may still pass, so a failing receiver holds up neither other rules nor the next
// evaluation.
type Evaluator struct {
	opts          EvaluatorOptions
	notifications *notify.Dispatcher
}

// defaultDrainTimeout is how long Run waits for notifications at shutdown by default.
const defaultDrainTimeout = 30 * time.Second

// NewEvaluator returns an evaluator, its notification workers started: Run, or Close
// when only EvaluateOnce is used, stops them.
func NewEvaluator(opts EvaluatorOptions) (*Evaluator, error) {
	if opts.Store == nil || opts.Engine == nil {
		return nil, errors.New("query: EvaluatorOptions.Store and Engine are required")
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = DefaultQueryTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = defaultDrainTimeout
	}
	d, err := notify.NewDispatcher(notify.DispatcherOptions{
		Webhook: opts.Webhook, Email: opts.Email, Retry: opts.Retry,
		Workers: opts.DeliveryWorkers, QueueSize: opts.DeliveryQueue,
		Registerer: opts.Registry, Logger: opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	return &Evaluator{opts: opts, notifications: d}, nil
}

// Run evaluates every Interval until ctx ends, then waits up to DrainTimeout for the
// notifications still being delivered (those it gives up on are logged and counted
// dropped).
func (e *Evaluator) Run(ctx context.Context) error {
	ticker := time.NewTicker(e.opts.Interval)
	defer ticker.Stop()
	for {
		if err := e.EvaluateOnce(ctx); err != nil && ctx.Err() == nil {
			e.opts.Logger.Error("alert evaluation", "err", err)
		}
		select {
		case <-ctx.Done():
			drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.DrainTimeout)
			defer cancel()
			if err := e.Close(drain); err != nil {
				e.opts.Logger.Warn("alert notifications abandoned at shutdown", "err", err)
			}
			return nil
		case <-ticker.C:
		}
	}
}

// Close stops the notification workers once the queued notifications are delivered or
// ctx ends.
func (e *Evaluator) Close(ctx context.Context) error { return e.notifications.Close(ctx) }

// EvaluateOnce evaluates every enabled rule once. A rule that fails is logged and left
// as it was (neither fired nor resolved); the error reports listing failures and how
// many rules failed.
func (e *Evaluator) EvaluateOnce(ctx context.Context) error {
	var failed int
	dedicated := map[string]bool{} // tenant -> Dedicated, read once per pass
	opts := metastore.ListOptions{Limit: metastore.MaxPageSize}
	for {
		pg, err := e.opts.Store.ListEnabledAlertRules(ctx, opts)
		if err != nil {
			return err
		}
		for _, rule := range pg.Items {
			if e.opts.Tenant != "" && rule.TenantID != e.opts.Tenant {
				continue
			}
			if e.opts.Tenant == "" {
				skip, err := e.isDedicated(ctx, rule.TenantID, dedicated)
				if err != nil {
					failed++
					e.opts.Logger.Warn("alert rule not evaluated", "tenant", rule.TenantID, "rule", rule.ID, "err", err)
					continue
				}
				if skip {
					continue
				}
			}
			if err := e.evaluate(ctx, rule); err != nil {
				failed++
				e.opts.Logger.Warn("alert rule not evaluated", "tenant", rule.TenantID, "rule", rule.ID, "err", err)
			}
		}
		if pg.Next == "" {
			break
		}
		opts.Cursor = pg.Next
	}
	if failed > 0 {
		return fmt.Errorf("%d alert rules could not be evaluated", failed)
	}
	return nil
}

// isDedicated reports whether the tenant is Dedicated: its events are in its own
// ClickHouse, which the shared evaluator's engine does not read.
func (e *Evaluator) isDedicated(ctx context.Context, tenantID string, cache map[string]bool) (bool, error) {
	if d, ok := cache[tenantID]; ok {
		return d, nil
	}
	rec, err := e.opts.Store.GetTenant(ctx, tenantID)
	if err != nil {
		return false, fmt.Errorf("reading the tenant's isolation: %w", err)
	}
	cache[tenantID] = rec.Isolation == metastore.IsolationDedicated
	return cache[tenantID], nil
}

func (e *Evaluator) evaluate(ctx context.Context, rule metastore.AlertRule) error {
	def, err := decodeRuleDefinition(rule.Query)
	if err != nil {
		return err
	}
	q, err := def.parse(rule.Condition.Window.Duration, e.opts.Now())
	if err != nil {
		return fmt.Errorf("the rule's query: %w", err)
	}
	qctx, cancel := context.WithTimeout(ctx, e.opts.QueryTimeout)
	res, err := e.opts.Engine.Query(qctx, rule.TenantID, q)
	cancel()
	if err != nil {
		return fmt.Errorf("querying: %w", err)
	}
	value := total(res, q)
	var (
		alert   metastore.Alert
		changed bool
		kind    string
	)
	if rule.Condition.Breached(value) {
		alert, changed, err = e.opts.Store.FireAlert(ctx, rule, value)
		kind = notify.KindFiring
	} else {
		alert, changed, err = e.opts.Store.ResolveAlert(ctx, rule)
		kind = notify.KindResolved
	}
	if err != nil || !changed {
		return err
	}
	ev := notify.Event{
		Kind: kind, Tenant: rule.TenantID, AlertID: alert.ID, RuleID: rule.ID, RuleName: rule.Name, Value: value,
		Operator: rule.Condition.Operator, Threshold: rule.Condition.Threshold, Window: rule.Condition.Window.Duration.String(),
		FiredAt: alert.FiredAt, Resolved: alert.ResolvedAt,
	}
	// The transition is recorded: GET /alerts shows it whatever becomes of the
	// notifications, which are delivered in the background.
	e.notifications.Enqueue(ev, def.Notify.Webhooks, def.Notify.Emails)
	return nil
}

// total is the query's value: its first metric summed over the series' points (a rule's
// query has neither interval nor groupBy, so one point of one series; no rows is 0).
func total(res metricquery.Result, q metricquery.Query) float64 {
	name := string(q.Aggregate)
	if q.Mode == metricquery.ModePipeline && len(q.Metrics) > 0 {
		name = q.Metrics[0]
	}
	var sum float64
	for _, s := range res.Series {
		for _, p := range s.Points {
			v, ok := p.Values[name]
			if !ok && len(p.Values) == 1 { // a quantile's "<metric>:<level>"
				for _, only := range p.Values {
					v = only
				}
			}
			sum += v
		}
	}
	return sum
}
