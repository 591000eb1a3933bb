package controllers

import (
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/api/v1alpha1"
)

// tenantPhaseConditions are the conditions Ready summarises, in phase order. Later
// phases append theirs here.
var tenantPhaseConditions = []string{
	v1alpha1.TenantNamespaceReady,
}

// setCondition sets a condition stamped with the object's generation. The transition time
// only moves when the status does, so an unchanged outcome writes nothing.
func setCondition(conds *[]metav1.Condition, generation int64, condType string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
	})
}

// setNamespaceReadyCondition derives NamespaceReady from what the namespace phase saw:
// the namespace (nil when it could not be read or made) and the phase's error.
func setNamespaceReadyCondition(t *v1alpha1.Tenant, ns *corev1.Namespace, err error) {
	status, reason, message := metav1.ConditionTrue, v1alpha1.ReasonNamespaceCreated, ""
	var conflict *namespaceConflictError
	switch {
	case errors.As(err, &conflict):
		status, reason, message = metav1.ConditionFalse, v1alpha1.ReasonNamespaceConflict, conflict.Error()
	case err != nil:
		status, reason, message = metav1.ConditionFalse, v1alpha1.ReasonNamespaceError, err.Error()
	case ns == nil:
		status, reason, message = metav1.ConditionUnknown, v1alpha1.ReasonNamespaceError, "namespace not observed yet"
	case ns.DeletionTimestamp != nil:
		status, reason, message = metav1.ConditionFalse, v1alpha1.ReasonNamespaceDeleting, fmt.Sprintf("namespace %s is terminating%s", ns.Name, namespaceBlockers(ns))
	default:
		message = fmt.Sprintf("namespace %s exists", ns.Name)
	}
	setCondition(&t.Status.Conditions, t.Generation, v1alpha1.TenantNamespaceReady, status, reason, message)
}

// setReadyCondition summarises the phase conditions and the reconcile's own error into
// Ready. reconcileErr is what stopped the phases early, if anything.
func setReadyCondition(t *v1alpha1.Tenant, reconcileErr error) {
	var unknownPlan *unknownPlanError
	switch {
	case errors.As(reconcileErr, &unknownPlan):
		setCondition(&t.Status.Conditions, t.Generation, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonUnknownPlan, unknownPlan.Error())
		return
	}
	var notReady []string
	for _, condType := range tenantPhaseConditions {
		c := meta.FindStatusCondition(t.Status.Conditions, condType)
		switch {
		case c == nil:
			notReady = append(notReady, condType+": not reconciled yet")
		case c.Status != metav1.ConditionTrue:
			notReady = append(notReady, fmt.Sprintf("%s: %s", condType, c.Message))
		}
	}
	switch {
	case len(notReady) > 0:
		setCondition(&t.Status.Conditions, t.Generation, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonPhaseNotReady, strings.Join(notReady, "; "))
	case reconcileErr != nil:
		setCondition(&t.Status.Conditions, t.Generation, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonReconcileError, reconcileErr.Error())
	default:
		setCondition(&t.Status.Conditions, t.Generation, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned, "every provisioning phase is ready")
	}
}

// setDeletingCondition reports a tenant's deletion in Ready: waiting for the namespace
// (with what holds it), or stuck once the wait passed the timeout.
func setDeletingCondition(t *v1alpha1.Tenant, ns *corev1.Namespace, waited, timeout time.Duration) {
	reason := v1alpha1.ReasonDeleting
	message := "deleting: cleanup finished"
	if ns != nil {
		message = fmt.Sprintf("deleting: waiting for namespace %s to be removed%s", ns.Name, namespaceBlockers(ns))
		if waited >= timeout {
			reason = v1alpha1.ReasonDeletionStuck
			message = fmt.Sprintf("deletion stuck: namespace %s is still there after %s%s; the tenant keeps its finalizer until it is gone",
				ns.Name, timeout, namespaceBlockers(ns))
		}
	}
	setCondition(&t.Status.Conditions, t.Generation, v1alpha1.ConditionReady, metav1.ConditionFalse, reason, message)
}

// namespaceBlockers explains what keeps a terminating namespace: its finalizers and the
// namespace controller's own conditions about remaining content.
func namespaceBlockers(ns *corev1.Namespace) string {
	var parts []string
	if len(ns.Finalizers) > 0 {
		parts = append(parts, "finalizers "+strings.Join(ns.Finalizers, ", "))
	}
	if len(ns.Spec.Finalizers) > 0 {
		names := make([]string, len(ns.Spec.Finalizers))
		for i, f := range ns.Spec.Finalizers {
			names[i] = string(f)
		}
		parts = append(parts, "namespace finalizers "+strings.Join(names, ", "))
	}
	for _, c := range ns.Status.Conditions {
		if c.Status == corev1.ConditionTrue && c.Message != "" {
			parts = append(parts, c.Message)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}
