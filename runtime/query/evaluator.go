package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/runtime/query/metricquery"
	"github.com/shoal-dev/shoal/runtime/query/notify"
)

// EvaluatorOptions configure an Evaluator. Store and Engine are required.
type EvaluatorOptions struct {
	Store  *metastore.Store
	Engine metricquery.Engine
	// Webhook and Email send notifications; a rule's targets of a nil channel are
	// skipped (the API refuses to write them).
	// Tenant, when set, evaluates only that tenant's rules (a Dedicated tenant's
	// evaluator).
	Tenant  string
	Webhook *notify.Webhook
	Email   *notify.SendGrid
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
type Evaluator struct {
	opts EvaluatorOptions
}

// NewEvaluator returns an evaluator.
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
	return &Evaluator{opts: opts}, nil
}

// Run evaluates every Interval until ctx ends.
func (e *Evaluator) Run(ctx context.Context) error {
	ticker := time.NewTicker(e.opts.Interval)
	defer ticker.Stop()
	for {
		if err := e.EvaluateOnce(ctx); err != nil && ctx.Err() == nil {
			e.opts.Logger.Error("alert evaluation", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// EvaluateOnce evaluates every enabled rule once. A rule that fails is logged and left
// as it was (neither fired nor resolved); the error reports listing failures and how
// many rules failed.
func (e *Evaluator) EvaluateOnce(ctx context.Context) error {
	var failed int
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
	e.send(ctx, def.Notify, ev)
	return nil
}

// send delivers the event to every target. Delivery failures are logged, not retried:
// the transition is recorded and GET /alerts shows it.
func (e *Evaluator) send(ctx context.Context, to Notify, ev notify.Event) {
	if e.opts.Webhook != nil {
		for _, url := range to.Webhooks {
			if err := e.opts.Webhook.Send(ctx, url, ev); err != nil {
				e.opts.Logger.Warn("alert webhook not delivered", "tenant", ev.Tenant, "rule", ev.RuleID, "err", err)
			}
		}
	}
	if e.opts.Email != nil && len(to.Emails) > 0 {
		if err := e.opts.Email.Send(ctx, to.Emails, ev); err != nil {
			e.opts.Logger.Warn("alert email not delivered", "tenant", ev.Tenant, "rule", ev.RuleID, "err", err)
		}
	}
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
