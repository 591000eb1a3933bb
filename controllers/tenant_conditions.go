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
	"github.com/shoal-dev/shoal/internal/kafka"
	"github.com/shoal-dev/shoal/internal/naming"
)

// tenantPhaseConditions are the conditions Ready summarises, in phase order.
func tenantPhaseConditions() []string {
	return []string{
		v1alpha1.TenantNamespaceReady,
		v1alpha1.TenantTopicReady,
		v1alpha1.TenantDatabaseReady,
		v1alpha1.TenantStorageReady,
		v1alpha1.TenantBillingReady,
		v1alpha1.TenantMetadataReady,
		v1alpha1.TenantRuntimeReady,
	}
}

// phaseOutcome is what a phase's condition says: ready, still working (reason and
// message), or failed (err).
type phaseOutcome struct {
	ready   bool
	reason  string
	message string
	err     error
}

// setPhaseCondition derives a phase condition from its outcome. A failure names the
// backend and says whether it is unreachable; it is retried.
func setPhaseCondition(t *v1alpha1.Tenant, condType string, o phaseOutcome) {
	switch {
	case o.err != nil:
		setCondition(&t.Status.Conditions, t.Generation, condType, metav1.ConditionFalse, failureReason(o.err), o.err.Error()+"; retrying")
	case o.ready:
		setCondition(&t.Status.Conditions, t.Generation, condType, metav1.ConditionTrue, o.reason, o.message)
	default:
		setCondition(&t.Status.Conditions, t.Generation, condType, metav1.ConditionFalse, o.reason, o.message)
	}
}

// setTopicReadyCondition: the topic serves, is being created, or could not be made.
func setTopicReadyCondition(t *v1alpha1.Tenant, st kafka.TopicStatus, err error) {
	o := phaseOutcome{ready: st.Ready, err: err, reason: v1alpha1.ReasonTopicReady,
		message: fmt.Sprintf("topic %s has %d partitions", st.Name, st.Partitions)}
	if st.Message != "" {
		o.message += "; " + st.Message
	}
	if !st.Ready {
		o.reason, o.message = v1alpha1.ReasonInProgress, fmt.Sprintf("topic %s is not ready yet", st.Name)
		if st.Message != "" {
			o.message += ": " + st.Message
		}
	}
	setPhaseCondition(t, v1alpha1.TenantTopicReady, o)
}

// databaseObservation is what the database phase saw.
type databaseObservation struct {
	ready     bool
	dedicated bool
	address   string
	// installationDone and installationStatus describe a Dedicated tenant's
	// ClickHouseInstallation.
	installationDone   bool
	installationStatus string
}

// setDatabaseReadyCondition: the database is there, the Dedicated installation is still
// coming up, or ClickHouse failed.
func setDatabaseReadyCondition(t *v1alpha1.Tenant, obs databaseObservation, err error) {
	db := naming.Database(t.Name)
	o := phaseOutcome{ready: obs.ready, err: err, reason: v1alpha1.ReasonDatabaseReady,
		message: fmt.Sprintf("database %s with its tables on %s", db, obs.address)}
	switch {
	case obs.ready:
	case obs.dedicated && !obs.installationDone:
		status := obs.installationStatus
		if status == "" {
			status = "no status yet"
		}
		o.reason, o.message = v1alpha1.ReasonInProgress, fmt.Sprintf("waiting for ClickHouseInstallation %s to complete (status: %s)", naming.ClickHouseInstallation, status)
	case obs.dedicated && obs.address == "":
		o.reason, o.message = v1alpha1.ReasonInProgress, fmt.Sprintf("waiting for ClickHouseInstallation %s to report its endpoint", naming.ClickHouseInstallation)
	default:
		o.reason, o.message = v1alpha1.ReasonInProgress, "database "+db+" not created yet"
	}
	setPhaseCondition(t, v1alpha1.TenantDatabaseReady, o)
}

// setStorageReadyCondition: the tenant's lake prefix exists, or S3 failed.
func setStorageReadyCondition(t *v1alpha1.Tenant, st *v1alpha1.StorageStatus, err error) {
	o := phaseOutcome{ready: err == nil && st != nil, err: err, reason: v1alpha1.ReasonPrefixReady}
	if st != nil {
		o.message = fmt.Sprintf("lake prefix s3://%s/%s", st.Bucket, st.Prefix)
	}
	setPhaseCondition(t, v1alpha1.TenantStorageReady, o)
}

// setBillingReadyCondition: off (no Stripe key: True, so it does not hold Ready back),
// subscribed, or Stripe failed.
func setBillingReadyCondition(t *v1alpha1.Tenant, enabled bool, err error) {
	o := phaseOutcome{ready: true, reason: v1alpha1.ReasonBillingDisabled, message: "billing is off: the platform config has no Stripe key"}
	if enabled {
		o = phaseOutcome{ready: err == nil, err: err, reason: v1alpha1.ReasonSubscribed}
		if b := t.Status.Billing; b != nil {
			o.message = fmt.Sprintf("subscription %s of customer %s is %s on price %s", b.SubscriptionID, b.CustomerID, b.State, b.PriceID)
		}
	}
	setPhaseCondition(t, v1alpha1.TenantBillingReady, o)
}

// setMetadataReadyCondition: the tenant's row, owners and key are stored, or not.
func setMetadataReadyCondition(t *v1alpha1.Tenant, err error) {
	setPhaseCondition(t, v1alpha1.TenantMetadataReady, phaseOutcome{ready: err == nil, err: err, reason: v1alpha1.ReasonMetadataStored,
		message: fmt.Sprintf("tenant row, %d owners and the ingest key (Secret %s) are stored", len(t.Spec.Owners), naming.IngestKeySecret(t.Name))})
}

// setSuspendedCondition reports the suspension the metastore now holds.
func setSuspendedCondition(t *v1alpha1.Tenant, s suspension) {
	status := metav1.ConditionFalse
	if s.suspended {
		status = metav1.ConditionTrue
	}
	setCondition(&t.Status.Conditions, t.Generation, v1alpha1.TenantSuspended, status, s.reason, s.message)
}

// setRuntimeReadyCondition: the runtime serves the tenant, waits for what it needs, or
// its Deployments are not available yet.
func setRuntimeReadyCondition(t *v1alpha1.Tenant, obs runtimeObservation, err error) {
	o := phaseOutcome{err: err, ready: true}
	var pending []string
	for i := range obs.deployments {
		if ok, msg := deploymentAvailable(&obs.deployments[i]); !ok {
			pending = append(pending, msg)
		}
	}
	switch {
	case len(obs.waitingFor) > 0:
		o.ready, o.reason, o.message = false, v1alpha1.ReasonWaiting, "waiting for "+strings.Join(obs.waitingFor, ", ")
	case obs.shared:
		o.reason, o.message = v1alpha1.ReasonRegistered, "served by the shared runtime"
	case len(pending) > 0:
		o.ready, o.reason, o.message = false, v1alpha1.ReasonInProgress, strings.Join(pending, "; ")
	default:
		o.reason, o.message = v1alpha1.ReasonRuntimeAvailable, "ingest, process and query Deployments are available"
	}
	setPhaseCondition(t, v1alpha1.TenantRuntimeReady, o)
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
	for _, condType := range tenantPhaseConditions() {
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

// setDeletingCondition reports a tenant's deletion in Ready: a cleanup step that failed,
// or the wait for the namespace (with what holds it); stuck once the wait passed the
// timeout.
func setDeletingCondition(t *v1alpha1.Tenant, ns *corev1.Namespace, cleanupErr error, waited, timeout time.Duration) {
	reason := v1alpha1.ReasonDeleting
	var what string
	switch {
	case cleanupErr != nil:
		what = cleanupErr.Error()
	case ns != nil:
		what = fmt.Sprintf("waiting for namespace %s to be removed%s", ns.Name, namespaceBlockers(ns))
	default:
		setCondition(&t.Status.Conditions, t.Generation, v1alpha1.ConditionReady, metav1.ConditionFalse, reason, "deleting: cleanup finished")
		return
	}
	message := "deleting: " + what
	if waited >= timeout {
		reason = v1alpha1.ReasonDeletionStuck
		message = fmt.Sprintf("deletion stuck after %s: %s; the tenant keeps its finalizer until this is resolved", timeout, what)
		if cleanupErr != nil {
			message += " (or set spec.deletionPolicy to Retain to keep the data instead)"
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
