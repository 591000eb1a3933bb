package controllers

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/shoal-dev/shoal/api/v1alpha1"
)

// check is when a phase last found its backend as specified, for which generation, and
// with what else the phase's outcome depended on (detail).
type check struct {
	generation int64
	detail     string
	at         time.Time
}

// backendChecks remembers when each phase of each tenant last found its backend as
// specified. The reconciles that follow a change (a requeue, an owned object's update)
// then skip backend calls that were just made; a spec change (a new generation) or
// ResyncInterval passing makes them run again. It lives in memory only: after a restart
// every tenant is checked once.
type backendChecks struct {
	mu sync.Mutex
	at map[types.UID]map[string]check
}

// fresh reports whether the phase was checked within interval, for the tenant's current
// generation and detail, and its condition is still True.
func (c *backendChecks) fresh(t *v1alpha1.Tenant, condType, detail string, now time.Time, interval time.Duration) bool {
	cond := meta.FindStatusCondition(t.Status.Conditions, condType)
	if cond == nil || cond.Status != metav1.ConditionTrue || cond.ObservedGeneration != t.Generation {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	last, ok := c.at[t.UID][condType]
	return ok && last.generation == t.Generation && last.detail == detail && now.Sub(last.at) < interval
}

// passed records a successful check.
func (c *backendChecks) passed(t *v1alpha1.Tenant, condType, detail string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at == nil {
		c.at = map[types.UID]map[string]check{}
	}
	if c.at[t.UID] == nil {
		c.at[t.UID] = map[string]check{}
	}
	c.at[t.UID][condType] = check{generation: t.Generation, detail: detail, at: now}
}

// forget drops what is remembered of a tenant, once it is gone.
func (c *backendChecks) forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.at, uid)
}
