package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/kafka"
)

// wantCondition checks one condition's status, reason and message fragments.
func wantCondition(t *testing.T, tenant *v1alpha1.Tenant, condType string, status metav1.ConditionStatus, reason string, fragments ...string) {
	t.Helper()
	c := meta.FindStatusCondition(tenant.Status.Conditions, condType)
	if c == nil {
		t.Fatalf("no %s condition", condType)
	}
	if c.Status != status || c.Reason != reason {
		t.Errorf("%s = %s/%s (%q), want %s/%s", condType, c.Status, c.Reason, c.Message, status, reason)
	}
	for _, f := range fragments {
		if !strings.Contains(c.Message, f) {
			t.Errorf("%s message %q lacks %q", condType, c.Message, f)
		}
	}
}

func TestFromBackend(t *testing.T) {
	for _, tc := range []struct {
		name       string
		backend    string
		err        error
		wantReason string
		wantMsg    string
	}{
		{"deadline is unavailable", backendStripe, fmt.Errorf("call: %w", context.DeadlineExceeded), v1alpha1.ReasonBackendUnavailable, "Stripe unavailable: call: context deadline exceeded"},
		{"refusal is an error", backendClickHouse, errors.New("code: 81, Database x doesn't exist"), v1alpha1.ReasonBackendError, "ClickHouse: code: 81"},
		{"kafka adapter says unavailable", backendKafka, &kafka.Error{Op: "creating topic", Backend: "brokers b:9092", Unavailable: true, Err: errors.New("dial tcp: connection refused")}, v1alpha1.ReasonBackendUnavailable, "Kafka unavailable"},
		{"already wrapped keeps its backend", backendLake, fromBackend(backendMetastore, context.DeadlineExceeded), v1alpha1.ReasonBackendUnavailable, "PostgreSQL unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := fromBackend(tc.backend, tc.err)
			if got := failureReason(err); got != tc.wantReason {
				t.Errorf("reason %s, want %s", got, tc.wantReason)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("message %q lacks %q", err.Error(), tc.wantMsg)
			}
			if !errors.Is(err, tc.err) && !errors.Is(tc.err, errors.Unwrap(err)) {
				t.Errorf("%v does not wrap %v", err, tc.err)
			}
		})
	}
	if fromBackend(backendKafka, nil) != nil {
		t.Error("fromBackend(nil) is not nil")
	}
}

func TestSetTopicReadyCondition(t *testing.T) {
	down := fromBackend(backendKafka, context.DeadlineExceeded)
	for _, tc := range []struct {
		name      string
		st        kafka.TopicStatus
		err       error
		status    metav1.ConditionStatus
		reason    string
		fragments []string
	}{
		{"ready", kafka.TopicStatus{Name: "shoal-events-acme", Partitions: 6, Ready: true}, nil, metav1.ConditionTrue, v1alpha1.ReasonTopicReady, []string{"shoal-events-acme has 6 partitions"}},
		{"ready but not shrunk", kafka.TopicStatus{Name: "t", Partitions: 6, Ready: true, Message: "has 6 partitions, spec asks 3: partitions are never removed"}, nil, metav1.ConditionTrue, v1alpha1.ReasonTopicReady, []string{"never removed"}},
		{"strimzi still working", kafka.TopicStatus{Name: "t", Message: "KafkaTopic not reconciled yet"}, nil, metav1.ConditionFalse, v1alpha1.ReasonInProgress, []string{"topic t is not ready yet: KafkaTopic not reconciled yet"}},
		{"broker down", kafka.TopicStatus{}, down, metav1.ConditionFalse, v1alpha1.ReasonBackendUnavailable, []string{"Kafka unavailable", "retrying"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tenant := newTenant()
			setTopicReadyCondition(tenant, tc.st, tc.err)
			wantCondition(t, tenant, v1alpha1.TenantTopicReady, tc.status, tc.reason, tc.fragments...)
		})
	}
}

func TestSetDatabaseReadyCondition(t *testing.T) {
	for _, tc := range []struct {
		name      string
		obs       databaseObservation
		err       error
		status    metav1.ConditionStatus
		reason    string
		fragments []string
	}{
		{"shared ready", databaseObservation{ready: true, address: "ch:9000"}, nil, metav1.ConditionTrue, v1alpha1.ReasonDatabaseReady, []string{"database tenant_acme", "on ch:9000"}},
		{"installation without status", databaseObservation{dedicated: true}, nil, metav1.ConditionFalse, v1alpha1.ReasonInProgress, []string{"waiting for ClickHouseInstallation clickhouse to complete (status: no status yet)"}},
		{"installation in progress", databaseObservation{dedicated: true, installationStatus: "InProgress"}, nil, metav1.ConditionFalse, v1alpha1.ReasonInProgress, []string{"(status: InProgress)"}},
		{"installation without endpoint", databaseObservation{dedicated: true, installationDone: true}, nil, metav1.ConditionFalse, v1alpha1.ReasonInProgress, []string{"report its endpoint"}},
		{"dedicated ready", databaseObservation{dedicated: true, installationDone: true, address: "h:9000", ready: true}, nil, metav1.ConditionTrue, v1alpha1.ReasonDatabaseReady, []string{"on h:9000"}},
		{"clickhouse down", databaseObservation{}, fromBackend(backendClickHouse, context.DeadlineExceeded), metav1.ConditionFalse, v1alpha1.ReasonBackendUnavailable, []string{"ClickHouse unavailable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tenant := newTenant()
			setDatabaseReadyCondition(tenant, tc.obs, tc.err)
			wantCondition(t, tenant, v1alpha1.TenantDatabaseReady, tc.status, tc.reason, tc.fragments...)
		})
	}
}

func TestSetBillingReadyCondition(t *testing.T) {
	subscribed := &v1alpha1.BillingStatus{CustomerID: "cus_1", SubscriptionID: "sub_1", State: "active", PriceID: "price_team"}
	for _, tc := range []struct {
		name      string
		enabled   bool
		billing   *v1alpha1.BillingStatus
		err       error
		status    metav1.ConditionStatus
		reason    string
		fragments []string
	}{
		{"off", false, nil, nil, metav1.ConditionTrue, v1alpha1.ReasonBillingDisabled, []string{"billing is off"}},
		{"subscribed", true, subscribed, nil, metav1.ConditionTrue, v1alpha1.ReasonSubscribed, []string{"sub_1 of customer cus_1 is active on price price_team"}},
		{"stripe down", true, subscribed, fromBackend(backendStripe, context.DeadlineExceeded), metav1.ConditionFalse, v1alpha1.ReasonBackendUnavailable, []string{"Stripe unavailable", "retrying"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tenant := newTenant()
			tenant.Status.Billing = tc.billing
			setBillingReadyCondition(tenant, tc.enabled, tc.err)
			wantCondition(t, tenant, v1alpha1.TenantBillingReady, tc.status, tc.reason, tc.fragments...)
		})
	}
}

func TestSuspension(t *testing.T) {
	for _, tc := range []struct {
		name      string
		suspended bool
		state     string
		want      bool
		reason    string
	}{
		{"active", false, "active", false, v1alpha1.ReasonActive},
		{"no billing", false, "", false, v1alpha1.ReasonActive},
		{"by spec", true, "active", true, v1alpha1.ReasonSuspendedBySpec},
		{"past due", false, "past_due", true, v1alpha1.ReasonSuspendedByBilling},
		{"unpaid", false, "unpaid", true, v1alpha1.ReasonSuspendedByBilling},
		{"canceled", false, "canceled", true, v1alpha1.ReasonSuspendedByBilling},
		{"trialing", false, "trialing", false, v1alpha1.ReasonActive},
		{"spec wins over billing", true, "past_due", true, v1alpha1.ReasonSuspendedBySpec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tenant := newTenant()
			tenant.Spec.Suspended = tc.suspended
			if tc.state != "" {
				tenant.Status.Billing = &v1alpha1.BillingStatus{SubscriptionID: "sub_1", State: tc.state}
			}
			s := suspensionOf(tenant)
			if s.suspended != tc.want || s.reason != tc.reason {
				t.Errorf("suspensionOf = %+v, want suspended=%v reason %s", s, tc.want, tc.reason)
			}
			setSuspendedCondition(tenant, s)
			status := metav1.ConditionFalse
			if tc.want {
				status = metav1.ConditionTrue
			}
			wantCondition(t, tenant, v1alpha1.TenantSuspended, status, tc.reason)
		})
	}
}

func deployment(name string, generation, observed int64, replicas *int32, available int32) appsv1.Deployment {
	d := appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: generation}}
	d.Spec.Replicas = replicas
	d.Status.ObservedGeneration = observed
	d.Status.AvailableReplicas = available
	return d
}

func TestSetRuntimeReadyCondition(t *testing.T) {
	two := int32(2)
	ready := []appsv1.Deployment{deployment("shoal-ingest", 1, 1, nil, 1), deployment("shoal-process", 2, 2, &two, 2)}
	for _, tc := range []struct {
		name      string
		obs       runtimeObservation
		err       error
		status    metav1.ConditionStatus
		reason    string
		fragments []string
	}{
		{"shared", runtimeObservation{shared: true}, nil, metav1.ConditionTrue, v1alpha1.ReasonRegistered, []string{"shared runtime"}},
		{"shared waits", runtimeObservation{shared: true, waitingFor: []string{"TopicReady", "DatabaseReady"}}, nil, metav1.ConditionFalse, v1alpha1.ReasonWaiting, []string{"waiting for TopicReady, DatabaseReady"}},
		{"dedicated available", runtimeObservation{deployments: ready}, nil, metav1.ConditionTrue, v1alpha1.ReasonRuntimeAvailable, nil},
		{"dedicated scaling", runtimeObservation{deployments: []appsv1.Deployment{deployment("shoal-process", 2, 2, &two, 1)}}, nil, metav1.ConditionFalse, v1alpha1.ReasonInProgress, []string{"shoal-process: 1 of 2 replicas available"}},
		{"dedicated new generation", runtimeObservation{deployments: []appsv1.Deployment{deployment("shoal-query", 3, 2, nil, 1)}}, nil, metav1.ConditionFalse, v1alpha1.ReasonInProgress, []string{"generation 3 not yet observed"}},
		{"apply failed", runtimeObservation{}, fromBackend(backendKubernetes, errors.New("forbidden")), metav1.ConditionFalse, v1alpha1.ReasonBackendError, []string{"Kubernetes: forbidden"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tenant := newTenant()
			setRuntimeReadyCondition(tenant, tc.obs, tc.err)
			wantCondition(t, tenant, v1alpha1.TenantRuntimeReady, tc.status, tc.reason, tc.fragments...)
		})
	}
}

func TestDeletionRetry(t *testing.T) {
	for _, tc := range []struct {
		waited, timeout, want time.Duration
	}{
		{0, 5 * time.Minute, time.Second},
		{20 * time.Second, 5 * time.Minute, 5 * time.Second},
		{4 * time.Minute, 5 * time.Minute, 30 * time.Second},
		{4*time.Minute + 50*time.Second, 5 * time.Minute, 10 * time.Second},
		{time.Hour, 5 * time.Minute, 30 * time.Second},
	} {
		if got := deletionRetry(tc.waited, tc.timeout); got != tc.want {
			t.Errorf("deletionRetry(%s, %s) = %s, want %s", tc.waited, tc.timeout, got, tc.want)
		}
	}
}
