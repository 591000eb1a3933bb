package controllers

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/shoal-dev/shoal/api/v1alpha1"
)

// dataSourceObservation is what one reconcile of a DataSource saw, from which its
// conditions are derived.
type dataSourceObservation struct {
	// configErrs are what the metastore would refuse in the configuration, by field.
	configErrs field.ErrorList
	// tenantProblem says why the tenant cannot take the data source yet.
	tenantProblem string
	// secretProblem says why the credentials Secret cannot be read (it does not exist).
	secretProblem string
	// id of the data source in the store, and whether it holds credentials; set once
	// synced.
	id             string
	hasCredentials bool
	// syncErr is why the sync failed.
	syncErr error
}

// setDataSourceConditions derives Valid, Synced and Ready.
func setDataSourceConditions(ds *v1alpha1.DataSource, obs dataSourceObservation) {
	setDataSourceValidCondition(ds, obs)
	setDataSourceSyncedCondition(ds, obs)
	setSyncReadyCondition(&ds.Status.Conditions, ds.Generation, v1alpha1.ConditionSynced, v1alpha1.ConditionValid)
}

// setDataSourceValidCondition: the metastore accepts the configuration, or every field
// it would refuse, by path.
func setDataSourceValidCondition(ds *v1alpha1.DataSource, obs dataSourceObservation) {
	if len(obs.configErrs) > 0 {
		msgs := make([]string, len(obs.configErrs))
		for i, e := range obs.configErrs {
			msgs[i] = e.Error()
		}
		setCondition(&ds.Status.Conditions, ds.Generation, v1alpha1.ConditionValid, metav1.ConditionFalse, v1alpha1.ReasonInvalidConfig, strings.Join(msgs, "; "))
		return
	}
	setCondition(&ds.Status.Conditions, ds.Generation, v1alpha1.ConditionValid, metav1.ConditionTrue, v1alpha1.ReasonConfigValid,
		fmt.Sprintf("the %s configuration is valid", ds.Spec.Type))
}

// setDataSourceSyncedCondition: the store holds the spec and credentials, or why not.
func setDataSourceSyncedCondition(ds *v1alpha1.DataSource, obs dataSourceObservation) {
	set := func(status metav1.ConditionStatus, reason, message string) {
		setCondition(&ds.Status.Conditions, ds.Generation, v1alpha1.ConditionSynced, status, reason, message)
	}
	if reason, message, ok := syncFailure("data source", ds.Name, obs.syncErr); ok {
		set(metav1.ConditionFalse, reason, message)
		return
	}
	switch {
	case len(obs.configErrs) > 0:
		set(metav1.ConditionFalse, v1alpha1.ReasonInvalidConfig, "not synced: the configuration is invalid (see Valid)")
	case obs.tenantProblem != "":
		set(metav1.ConditionFalse, v1alpha1.ReasonTenantNotReady, obs.tenantProblem)
	case obs.secretProblem != "":
		set(metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound, obs.secretProblem)
	case obs.hasCredentials && ds.Spec.CredentialsSecretRef != nil:
		set(metav1.ConditionTrue, v1alpha1.ReasonSynced, fmt.Sprintf("stored as data source %s, with the credentials of Secret %s sealed", obs.id, ds.Spec.CredentialsSecretRef.Name))
	default:
		set(metav1.ConditionTrue, v1alpha1.ReasonSynced, fmt.Sprintf("stored as data source %s, without credentials", obs.id))
	}
}
