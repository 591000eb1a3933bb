package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/metastore"
)

// wantSyncCondition checks one condition's status, reason, generation and message
// fragments.
func wantSyncCondition(t *testing.T, conds []metav1.Condition, generation int64, condType string, status metav1.ConditionStatus, reason string, fragments ...string) {
	t.Helper()
	c := meta.FindStatusCondition(conds, condType)
	if c == nil {
		t.Fatalf("no %s condition in %+v", condType, conds)
	}
	if c.Status != status || c.Reason != reason || c.ObservedGeneration != generation {
		t.Errorf("%s = %s/%s gen %d (%q), want %s/%s gen %d", condType, c.Status, c.Reason, c.ObservedGeneration, c.Message, status, reason, generation)
	}
	for _, f := range fragments {
		if !strings.Contains(c.Message, f) {
			t.Errorf("%s message %q lacks %q", condType, c.Message, f)
		}
	}
}

func TestSetDashboardConditions(t *testing.T) {
	unavailable := fromBackend(backendMetastore, fmt.Errorf("syncing: %w", context.DeadlineExceeded))
	invalid := &metastore.InvalidError{Errs: field.ErrorList{field.Required(field.NewPath("title"), "")}}
	type want struct {
		status  metav1.ConditionStatus
		reason  string
		message []string
	}
	for _, tc := range []struct {
		name               string
		obs                dashboardObservation
		synced, valid, rdy want
	}{
		{
			name:   "synced and valid",
			obs:    dashboardObservation{id: "0b5d"},
			synced: want{metav1.ConditionTrue, v1alpha1.ReasonSynced, []string{"stored as dashboard 0b5d"}},
			valid:  want{metav1.ConditionTrue, v1alpha1.ReasonQueriesValid, []string{"the 2 widget queries"}},
			rdy:    want{metav1.ConditionTrue, v1alpha1.ReasonSynced, nil},
		},
		{
			name:   "invalid widgets are stored anyway",
			obs:    dashboardObservation{id: "0b5d", widgets: []string{"widget a: pipeline p does not exist"}},
			synced: want{metav1.ConditionTrue, v1alpha1.ReasonSynced, nil},
			valid:  want{metav1.ConditionFalse, v1alpha1.ReasonInvalidQueries, []string{"widget a: pipeline p does not exist", "stored anyway"}},
			rdy:    want{metav1.ConditionFalse, v1alpha1.ReasonInvalidQueries, []string{"Valid: widget a"}},
		},
		{
			name:   "tenant not ready",
			obs:    dashboardObservation{tenantProblem: "tenant acme does not exist"},
			synced: want{metav1.ConditionFalse, v1alpha1.ReasonTenantNotReady, []string{"tenant acme does not exist"}},
			valid:  want{metav1.ConditionTrue, v1alpha1.ReasonQueriesValid, nil},
			rdy:    want{metav1.ConditionFalse, v1alpha1.ReasonTenantNotReady, []string{"Synced: tenant acme does not exist"}},
		},
		{
			name:   "PostgreSQL down",
			obs:    dashboardObservation{syncErr: unavailable, widgets: []string{"widget a: x"}},
			synced: want{metav1.ConditionFalse, v1alpha1.ReasonBackendUnavailable, []string{"PostgreSQL unavailable", "retrying"}},
			valid:  want{metav1.ConditionFalse, v1alpha1.ReasonInvalidQueries, nil},
			rdy:    want{metav1.ConditionFalse, v1alpha1.ReasonBackendUnavailable, []string{"Synced: PostgreSQL", "; Valid: widget a"}},
		},
		{
			name:   "name taken by a dashboard made through the API",
			obs:    dashboardObservation{syncErr: fromBackend(backendMetastore, fmt.Errorf("syncing: %w", metastore.ErrNameTaken))},
			synced: want{metav1.ConditionFalse, v1alpha1.ReasonNameTaken, []string{"already has a dashboard named overview"}},
			valid:  want{metav1.ConditionTrue, v1alpha1.ReasonQueriesValid, nil},
			rdy:    want{metav1.ConditionFalse, v1alpha1.ReasonNameTaken, nil},
		},
		{
			name:   "share Secret name taken",
			obs:    dashboardObservation{syncErr: &shareSecretTakenError{namespace: "tenant-acme", name: "overview-share"}},
			synced: want{metav1.ConditionFalse, v1alpha1.ReasonNameTaken, []string{"Secret tenant-acme/overview-share exists and does not belong to this dashboard"}},
			valid:  want{metav1.ConditionTrue, v1alpha1.ReasonQueriesValid, nil},
			rdy:    want{metav1.ConditionFalse, v1alpha1.ReasonNameTaken, nil},
		},
		{
			name:   "spec refused by the store",
			obs:    dashboardObservation{syncErr: fromBackend(backendMetastore, fmt.Errorf("syncing: %w", invalid))},
			synced: want{metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, []string{"refused the spec: title: Required value"}},
			valid:  want{metav1.ConditionTrue, v1alpha1.ReasonQueriesValid, nil},
			rdy:    want{metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, nil},
		},
		{
			name:   "tenant row missing from the store",
			obs:    dashboardObservation{syncErr: fromBackend(backendMetastore, fmt.Errorf("tenant: %w", metastore.ErrNotFound))},
			synced: want{metav1.ConditionFalse, v1alpha1.ReasonTenantNotReady, []string{"no row in the metadata store"}},
			valid:  want{metav1.ConditionTrue, v1alpha1.ReasonQueriesValid, nil},
			rdy:    want{metav1.ConditionFalse, v1alpha1.ReasonTenantNotReady, nil},
		},
		{
			name:   "pipelines cannot be listed",
			obs:    dashboardObservation{id: "0b5d", pipelinesErr: fromBackend(backendKubernetes, errors.New("cache not synced"))},
			synced: want{metav1.ConditionTrue, v1alpha1.ReasonSynced, nil},
			valid:  want{metav1.ConditionUnknown, v1alpha1.ReasonBackendError, []string{"cannot check the widget queries"}},
			rdy:    want{metav1.ConditionFalse, v1alpha1.ReasonBackendError, nil},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := overviewDashboard("tenant-acme")
			d.Generation = 4
			setDashboardConditions(d, tc.obs)
			conds := d.Status.Conditions
			wantSyncCondition(t, conds, 4, v1alpha1.ConditionSynced, tc.synced.status, tc.synced.reason, tc.synced.message...)
			wantSyncCondition(t, conds, 4, v1alpha1.ConditionValid, tc.valid.status, tc.valid.reason, tc.valid.message...)
			wantSyncCondition(t, conds, 4, v1alpha1.ConditionReady, tc.rdy.status, tc.rdy.reason, tc.rdy.message...)
		})
	}
}

func TestSetSyncReadyConditionWaitsForEveryCondition(t *testing.T) {
	var conds []metav1.Condition
	setCondition(&conds, 1, v1alpha1.ConditionSynced, metav1.ConditionTrue, v1alpha1.ReasonSynced, "ok")
	setSyncReadyCondition(&conds, 1, v1alpha1.ConditionSynced, v1alpha1.ConditionValid)
	wantSyncCondition(t, conds, 1, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInProgress, "Valid: not reconciled yet")
}

func TestTenantMetadataChanged(t *testing.T) {
	ready := func(status metav1.ConditionStatus, deleting bool) *v1alpha1.Tenant {
		t := newTenant(metav1.Condition{Type: v1alpha1.TenantMetadataReady, Status: status, Reason: "r"})
		if deleting {
			now := metav1.Now()
			t.DeletionTimestamp = &now
		}
		return t
	}
	p := tenantMetadataChanged()
	for _, tc := range []struct {
		name     string
		old, new *v1alpha1.Tenant
		want     bool
	}{
		{"metadata became ready", ready(metav1.ConditionFalse, false), ready(metav1.ConditionTrue, false), true},
		{"metadata lost", ready(metav1.ConditionTrue, false), ready(metav1.ConditionFalse, false), true},
		{"deletion started", ready(metav1.ConditionTrue, false), ready(metav1.ConditionTrue, true), true},
		{"another status change", ready(metav1.ConditionTrue, false), ready(metav1.ConditionTrue, false), false},
	} {
		if got := p.Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new}); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if !p.Create(event.CreateEvent{Object: newTenant()}) || !p.Delete(event.DeleteEvent{Object: newTenant()}) {
		t.Error("tenant creation and deletion must pass")
	}
}
