package controllers

import (
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/metastore"
)

// dashboardObservation is what one reconcile of a Dashboard saw, from which its
// conditions are derived.
type dashboardObservation struct {
	// tenantProblem says why the tenant cannot take the dashboard yet; empty when it can.
	tenantProblem string
	// id of the dashboard in the store; set once synced.
	id string
	// syncErr is why the sync failed: a backend, a taken name, a spec the store refused.
	syncErr error
	// widgets lists the widgets whose queries do not fit the pipelines, with why.
	widgets []string
	// pipelinesErr is a failure to list the pipelines; Valid is then unknown.
	pipelinesErr error
}

// setDashboardConditions derives Synced, Valid and Ready.
func setDashboardConditions(d *v1alpha1.Dashboard, obs dashboardObservation) {
	setDashboardSyncedCondition(d, obs)
	setDashboardValidCondition(d, obs)
	setSyncReadyCondition(&d.Status.Conditions, d.Generation, v1alpha1.ConditionSynced, v1alpha1.ConditionValid)
}

// setDashboardSyncedCondition: the store holds the spec, or why not.
func setDashboardSyncedCondition(d *v1alpha1.Dashboard, obs dashboardObservation) {
	set := func(status metav1.ConditionStatus, reason, message string) {
		setCondition(&d.Status.Conditions, d.Generation, v1alpha1.ConditionSynced, status, reason, message)
	}
	if obs.tenantProblem != "" {
		set(metav1.ConditionFalse, v1alpha1.ReasonTenantNotReady, obs.tenantProblem)
		return
	}
	var taken *shareSecretTakenError
	if errors.As(obs.syncErr, &taken) {
		set(metav1.ConditionFalse, v1alpha1.ReasonNameTaken, taken.Error())
		return
	}
	if reason, message, ok := syncFailure("dashboard", d.Name, obs.syncErr); ok {
		set(metav1.ConditionFalse, reason, message)
		return
	}
	set(metav1.ConditionTrue, v1alpha1.ReasonSynced, "stored as dashboard "+obs.id)
}

// syncFailure turns a failed sync of the kind's object name into a condition's reason
// and message; ok is false when err is nil.
func syncFailure(kind, name string, err error) (reason, message string, ok bool) {
	var invalid *metastore.InvalidError
	switch {
	case err == nil:
		return "", "", false
	case errors.Is(err, metastore.ErrNameTaken):
		return v1alpha1.ReasonNameTaken, fmt.Sprintf("the tenant already has a %s named %s, made through the API: delete it there or rename this object", kind, name), true
	case errors.As(err, &invalid):
		return v1alpha1.ReasonInvalidSpec, "the metadata store refused the spec: " + invalid.Error(), true
	case errors.Is(err, metastore.ErrNotFound):
		return v1alpha1.ReasonTenantNotReady, "the tenant has no row in the metadata store yet; retrying", true
	}
	return failureReason(err), err.Error() + "; retrying", true
}

// setDashboardValidCondition: every widget query fits its pipeline, or which do not.
// Invalid widgets do not stop the sync: the dashboard is stored and those widgets report
// their error when viewed.
func setDashboardValidCondition(d *v1alpha1.Dashboard, obs dashboardObservation) {
	set := func(status metav1.ConditionStatus, reason, message string) {
		setCondition(&d.Status.Conditions, d.Generation, v1alpha1.ConditionValid, status, reason, message)
	}
	switch {
	case obs.pipelinesErr != nil:
		set(metav1.ConditionUnknown, failureReason(obs.pipelinesErr), "cannot check the widget queries: "+obs.pipelinesErr.Error()+"; retrying")
	case len(obs.widgets) > 0:
		set(metav1.ConditionFalse, v1alpha1.ReasonInvalidQueries, widgetsMessage(obs.widgets)+
			" (the dashboard is stored anyway; these widgets show an error until fixed)")
	default:
		set(metav1.ConditionTrue, v1alpha1.ReasonQueriesValid,
			fmt.Sprintf("the %d widget queries name existing pipelines, metrics, dimensions and granularities", len(d.Spec.Widgets)))
	}
}
