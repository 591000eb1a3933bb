package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Channels, as labelled in metrics and logs.
const (
	ChannelWebhook = "webhook"
	ChannelEmail   = "email"
)

// Outcomes of a notification, as labelled in metrics.
const (
	OutcomeDelivered = "delivered"
	// OutcomeFailed: refused (4xx, a forbidden target) or still failing after the last
	// attempt.
	OutcomeFailed = "failed"
	// OutcomeDropped: never attempted to the end, because the queue was full or the
	// process shut down first.
	OutcomeDropped = "dropped"
)

// Retry defaults: 4 attempts, waiting about 2s, 4s and 8s between them.
const (
	DefaultAttempts       = 4
	DefaultInitialBackoff = 2 * time.Second
	DefaultMaxBackoff     = 30 * time.Second
	DefaultMaxRetryAfter  = 30 * time.Second
	DefaultWorkers        = 4
	DefaultQueueSize      = 1000
)

// RetryPolicy bounds the attempts of one notification.
type RetryPolicy struct {
	// Attempts is how many times a notification is tried, the first included. Default 4.
	Attempts int
	// InitialBackoff is the wait after the first failure; it doubles after each further
	// one, up to MaxBackoff, each wait jittered down by up to half so that receivers
	// coming back are not hit by every sender at once. Defaults 2s and 30s.
	InitialBackoff, MaxBackoff time.Duration
	// MaxRetryAfter is the longest Retry-After honoured: a receiver asking for a longer
	// wait gets no further attempt. Default 30s.
	MaxRetryAfter time.Duration
}

func (p *RetryPolicy) defaults() {
	if p.Attempts <= 0 {
		p.Attempts = DefaultAttempts
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = DefaultInitialBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = DefaultMaxBackoff
	}
	if p.MaxBackoff < p.InitialBackoff {
		p.MaxBackoff = p.InitialBackoff
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = DefaultMaxRetryAfter
	}
}

// Next says whether a notification whose attempt number attempt (from 1) failed with err
// is tried again, and after how long. jitter in [0,1) takes that share of half the
// backoff off.
func (p RetryPolicy) Next(attempt int, err error, jitter float64) (time.Duration, bool) {
	if attempt >= p.Attempts {
		return 0, false
	}
	retryAfter, ok := retryable(err)
	if !ok {
		return 0, false
	}
	if retryAfter > p.MaxRetryAfter {
		return 0, false
	}
	wait := p.InitialBackoff
	for i := 1; i < attempt && wait < p.MaxBackoff; i++ {
		wait *= 2
	}
	wait = min(wait, p.MaxBackoff)
	wait -= time.Duration(jitter * float64(wait/2))
	return max(wait, retryAfter), true
}

// retryable says whether err may pass on a later attempt: an answer of 429 or 5xx (with
// the Retry-After it asked for), or a network error. Other answers (4xx), refused
// targets and invalid requests fail the same way every time.
func retryable(err error) (time.Duration, bool) {
	var se *StatusError
	if errors.As(err, &se) {
		return se.RetryAfter, se.Status == http.StatusTooManyRequests || se.Status >= 500
	}
	if errors.Is(err, ErrForbiddenTarget) || errors.Is(err, ErrInvalidURL) {
		return 0, false
	}
	var ue *url.Error // what http.Client.Do fails with: connecting, writing, reading
	return 0, errors.As(err, &ue)
}

// DispatcherOptions configure a Dispatcher.
type DispatcherOptions struct {
	// Webhook and Email send; notifications of a nil channel are dropped (the API refuses
	// to write them).
	Webhook *Webhook
	Email   *SendGrid
	Retry   RetryPolicy
	// Workers deliver concurrently. Default 4.
	Workers int
	// QueueSize bounds the notifications waiting for a worker; more are dropped and
	// counted. Default 1000.
	QueueSize int
	// Registerer receives the delivery metrics; none when nil.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Dispatcher delivers notifications in the background, retrying the failures that may
// pass later, so a slow or failing receiver delays neither the evaluation of other rules
// nor other receivers.
type Dispatcher struct {
	opts    DispatcherOptions
	queue   chan job
	outcome *prometheus.CounterVec
	// attempts counts every request made, by channel and result.
	attempts *prometheus.CounterVec
	ctx      context.Context // ends when Close gives up waiting
	cancel   context.CancelFunc
	workers  sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	pending int
	idle    chan struct{} // closed while pending is 0
}

// job is one notification to one target.
type job struct {
	channel, target string // target names it in logs: the URL, or "n addresses"
	ev              Event
	send            func(context.Context) error
}

// NewDispatcher starts the workers; Close stops them.
func NewDispatcher(opts DispatcherOptions) (*Dispatcher, error) {
	opts.Retry.defaults()
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{
		opts:  opts,
		queue: make(chan job, opts.QueueSize),
		outcome: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_query_alert_notifications_total",
			Help: "Alert notifications by channel (webhook, email) and outcome: delivered, failed (refused, or failing after the last attempt) or dropped (queue full, or shut down first).",
		}, []string{"channel", "outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_query_alert_notification_attempts_total",
			Help: "Requests made to deliver alert notifications, by channel and result (ok, retryable, permanent).",
		}, []string{"channel", "result"}),
		idle: make(chan struct{}),
	}
	close(d.idle)
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{d.outcome, d.attempts} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("notify: registering metrics: %w", err)
			}
		}
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	for range opts.Workers {
		d.workers.Go(d.work)
	}
	return d, nil
}

// Enqueue queues the event for every target without waiting: one notification per
// webhook, one email to all the addresses. Targets of a channel not configured are
// skipped.
func (d *Dispatcher) Enqueue(ev Event, webhooks, emails []string) {
	if w := d.opts.Webhook; w != nil {
		for _, u := range webhooks {
			d.enqueue(job{channel: ChannelWebhook, target: u, ev: ev, send: func(ctx context.Context) error { return w.Send(ctx, u, ev) }})
		}
	}
	if m := d.opts.Email; m != nil && len(emails) > 0 {
		d.enqueue(job{channel: ChannelEmail, target: fmt.Sprintf("%d addresses", len(emails)), ev: ev, send: func(ctx context.Context) error { return m.Send(ctx, emails, ev) }})
	}
}

func (d *Dispatcher) enqueue(j job) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		d.drop(j, "shutting down")
		return
	}
	select {
	case d.queue <- j:
		if d.pending == 0 {
			d.idle = make(chan struct{})
		}
		d.pending++
	default:
		d.drop(j, "the notification queue is full")
	}
}

func (d *Dispatcher) drop(j job, why string) {
	d.outcome.WithLabelValues(j.channel, OutcomeDropped).Inc()
	d.opts.Logger.Warn("alert notification dropped", "channel", j.channel, "target", j.target, "tenant", j.ev.Tenant, "rule", j.ev.RuleID, "reason", why)
}

func (d *Dispatcher) work() {
	for j := range d.queue {
		d.deliver(j)
		d.mu.Lock()
		if d.pending--; d.pending == 0 {
			close(d.idle)
		}
		d.mu.Unlock()
	}
}

// deliver tries j until it is delivered, fails for good, runs out of attempts, or the
// dispatcher gives up on shutdown.
func (d *Dispatcher) deliver(j job) {
	log := d.opts.Logger.With("channel", j.channel, "target", j.target, "tenant", j.ev.Tenant, "rule", j.ev.RuleID, "kind", j.ev.Kind)
	for attempt := 1; ; attempt++ {
		if d.ctx.Err() != nil {
			d.drop(j, "shut down before delivery")
			return
		}
		err := j.send(d.ctx)
		if err == nil {
			d.attempts.WithLabelValues(j.channel, "ok").Inc()
			d.outcome.WithLabelValues(j.channel, OutcomeDelivered).Inc()
			if attempt > 1 {
				log.Info("alert notification delivered after retrying", "attempts", attempt)
			}
			return
		}
		wait, again := d.opts.Retry.Next(attempt, err, rand.Float64())
		if _, ok := retryable(err); ok {
			d.attempts.WithLabelValues(j.channel, "retryable").Inc()
		} else {
			d.attempts.WithLabelValues(j.channel, "permanent").Inc()
		}
		if d.ctx.Err() != nil {
			d.drop(j, "shut down during delivery")
			return
		}
		if !again {
			d.outcome.WithLabelValues(j.channel, OutcomeFailed).Inc()
			log.Warn("alert notification not delivered", "attempts", attempt, "err", err)
			return
		}
		log.Info("alert notification failed; retrying", "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-d.ctx.Done():
			t.Stop()
		}
	}
}

// Wait returns once no notification is queued or being delivered, or ctx ends.
func (d *Dispatcher) Wait(ctx context.Context) error {
	d.mu.Lock()
	idle := d.idle
	d.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops taking notifications and waits for the queued ones until ctx ends; then it
// abandons the rest (counted dropped) and returns ctx's error. Safe to call again.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.queue)
	}
	d.mu.Unlock()
	err := d.Wait(ctx)
	if err != nil {
		err = fmt.Errorf("notify: %d alert notifications undelivered at shutdown: %w", d.Pending(), err)
	}
	d.cancel()
	d.workers.Wait()
	return err
}

// Pending is how many notifications are queued or being delivered.
func (d *Dispatcher) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pending
}
