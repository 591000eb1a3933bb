package controllers

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"

	"github.com/shoal-dev/shoal/api/v1alpha1"
)

// transition is a condition whose status or reason changed in one reconcile.
type transition struct {
	condition metav1.Condition
	eventType string
}

// conditionTransitions lists, in the order of after, the conditions whose status or
// reason differ from before. A condition that reaches its good state is Normal; anything
// else is a Warning, except while nothing has been decided yet (Unknown). Suspended is
// good when False.
func conditionTransitions(before, after []metav1.Condition) []transition {
	var out []transition
	for _, c := range after {
		old := meta.FindStatusCondition(before, c.Type)
		if old != nil && old.Status == c.Status && old.Reason == c.Reason {
			continue
		}
		bad := metav1.ConditionFalse
		if c.Type == v1alpha1.TenantSuspended {
			bad = metav1.ConditionTrue
		}
		eventType := corev1.EventTypeWarning
		if c.Status != bad {
			eventType = corev1.EventTypeNormal
		}
		out = append(out, transition{condition: c, eventType: eventType})
	}
	return out
}

// recordTransitions emits one event per condition transition.
func recordTransitions(rec events.EventRecorder, obj runtime.Object, before, after []metav1.Condition) {
	for _, tr := range conditionTransitions(before, after) {
		c := tr.condition
		rec.Eventf(obj, nil, tr.eventType, c.Reason, c.Type, "%s=%s: %s", c.Type, c.Status, c.Message)
	}
}
