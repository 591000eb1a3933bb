package ingest

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// readyTTL is how long a Kafka ping answers /readyz: probes from several kubelets and
// load balancers then cost the brokers one metadata request per interval.
const readyTTL = 2 * time.Second

// readyTimeout bounds one ping.
const readyTimeout = 2 * time.Second

// readiness caches whether Kafka answers.
type readiness struct {
	ping   func(context.Context) error
	now    func() time.Time
	flight singleflight.Group

	mu      sync.Mutex
	checked time.Time
	err     error
}

func newReadiness(ping func(context.Context) error, now func() time.Time) *readiness {
	return &readiness{ping: ping, now: now}
}

func (r *readiness) check(ctx context.Context) error {
	r.mu.Lock()
	checked, err := r.checked, r.err
	r.mu.Unlock()
	if !checked.IsZero() && r.now().Sub(checked) < readyTTL {
		return err
	}
	_, err, _ = r.flight.Do("ping", func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readyTimeout)
		defer cancel()
		err := r.ping(ctx)
		r.mu.Lock()
		r.checked, r.err = r.now(), err
		r.mu.Unlock()
		return nil, err
	})
	return err
}
