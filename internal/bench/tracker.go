package bench

import (
	"maps"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/shoal-dev/shoal/api/v1alpha1"
)

// tracker follows the benchmark's tenants through an informer: when each was first seen
// Ready, what the Ready condition of the others says, and which are gone.
type tracker struct {
	mu      sync.Mutex
	names   map[string]bool
	readyAt map[string]time.Time
	ready   map[string]metav1.Condition
	gone    map[string]bool
	now     func() time.Time
}

func newTracker(names []string, now func() time.Time) *tracker {
	t := &tracker{
		names:   make(map[string]bool, len(names)),
		readyAt: make(map[string]time.Time, len(names)),
		ready:   make(map[string]metav1.Condition, len(names)),
		gone:    make(map[string]bool, len(names)),
		now:     now,
	}
	for _, n := range names {
		t.names[n] = true
	}
	return t
}

// handler is the informer event handler feeding the tracker.
func (t *tracker) handler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { t.observe(obj) },
		UpdateFunc: func(_, obj any) { t.observe(obj) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if tenant, ok := obj.(*v1alpha1.Tenant); ok {
				t.remove(tenant.Name)
			}
		},
	}
}

func (t *tracker) observe(obj any) {
	tenant, ok := obj.(*v1alpha1.Tenant)
	if !ok {
		return
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.names[tenant.Name] {
		return
	}
	if cond := meta.FindStatusCondition(tenant.Status.Conditions, v1alpha1.ConditionReady); cond != nil {
		t.ready[tenant.Name] = *cond
	}
	if _, seen := t.readyAt[tenant.Name]; !seen && isReady(tenant) {
		t.readyAt[tenant.Name] = now
	}
}

func (t *tracker) remove(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.names[name] {
		t.gone[name] = true
	}
}

// isReady reports whether the operator says the tenant is Ready for its current spec:
// Ready=True written for the generation the tenant has now.
func isReady(t *v1alpha1.Tenant) bool {
	cond := meta.FindStatusCondition(t.Status.Conditions, v1alpha1.ConditionReady)
	return cond != nil && cond.Status == metav1.ConditionTrue &&
		t.Status.ObservedGeneration == t.Generation && cond.ObservedGeneration == t.Generation
}

// counts returns how many tenants have been seen Ready and how many are gone.
func (t *tracker) counts() (ready, gone int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.readyAt), len(t.gone)
}

// readyTimes returns when each tenant was first seen Ready.
func (t *tracker) readyTimes() map[string]time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.readyAt)
}

// notReady returns up to limit tenants not seen Ready, by name, with their Ready condition.
func (t *tracker) notReady(limit int) []NotReady {
	t.mu.Lock()
	defer t.mu.Unlock()
	var names []string
	for n := range t.names {
		if _, ok := t.readyAt[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	out := make([]NotReady, 0, min(limit, len(names)))
	for _, n := range names[:min(limit, len(names))] {
		cond, ok := t.ready[n]
		switch {
		case !ok:
			out = append(out, NotReady{Name: n, Message: "no Ready condition yet"})
		case cond.Status == metav1.ConditionTrue:
			out = append(out, NotReady{Name: n, Reason: cond.Reason, Message: "Ready=True but for an older generation"})
		default:
			out = append(out, NotReady{Name: n, Reason: cond.Reason, Message: cond.Message})
		}
	}
	return out
}
