package controllers

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/api/v1alpha1"
)

func newTenant(conds ...metav1.Condition) *v1alpha1.Tenant {
	return &v1alpha1.Tenant{
		ObjectMeta: metav1.ObjectMeta{Name: "acme", Generation: 3},
		Status:     v1alpha1.TenantStatus{Conditions: conds},
	}
}

func cond(condType string, status metav1.ConditionStatus, reason string) metav1.Condition {
	return metav1.Condition{Type: condType, Status: status, Reason: reason, Message: reason + " message"}
}

func TestSetNamespaceReadyCondition(t *testing.T) {
	now := metav1.Now()
	for _, tc := range []struct {
		name        string
		ns          *corev1.Namespace
		err         error
		wantStatus  metav1.ConditionStatus
		wantReason  string
		wantMessage string
	}{
		{
			name:        "exists",
			ns:          &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant-acme"}},
			wantStatus:  metav1.ConditionTrue,
			wantReason:  v1alpha1.ReasonNamespaceCreated,
			wantMessage: "namespace tenant-acme exists",
		},
		{
			name:        "conflict",
			err:         &namespaceConflictError{namespace: "tenant-acme", owner: "other"},
			wantStatus:  metav1.ConditionFalse,
			wantReason:  v1alpha1.ReasonNamespaceConflict,
			wantMessage: `belongs to tenant "other"`,
		},
		{
			name:        "wrapped conflict",
			err:         errors.Join(errors.New("x"), &namespaceConflictError{namespace: "tenant-acme"}),
			wantStatus:  metav1.ConditionFalse,
			wantReason:  v1alpha1.ReasonNamespaceConflict,
			wantMessage: "does not belong to this tenant",
		},
		{
			name:        "api error",
			err:         errors.New("connection refused"),
			wantStatus:  metav1.ConditionFalse,
			wantReason:  v1alpha1.ReasonNamespaceError,
			wantMessage: "connection refused",
		},
		{
			name: "terminating",
			ns: &corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{Name: "tenant-acme", DeletionTimestamp: &now, Finalizers: []string{"example.com/hold"}},
			},
			wantStatus:  metav1.ConditionFalse,
			wantReason:  v1alpha1.ReasonNamespaceDeleting,
			wantMessage: "terminating (finalizers example.com/hold)",
		},
		{
			name:       "not observed",
			wantStatus: metav1.ConditionUnknown,
			wantReason: v1alpha1.ReasonNamespaceError,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tenant := newTenant()
			setNamespaceReadyCondition(tenant, tc.ns, tc.err)
			c := meta.FindStatusCondition(tenant.Status.Conditions, v1alpha1.TenantNamespaceReady)
			if c == nil {
				t.Fatal("no NamespaceReady condition")
			}
			if c.Status != tc.wantStatus || c.Reason != tc.wantReason || !strings.Contains(c.Message, tc.wantMessage) {
				t.Errorf("got %s/%s %q, want %s/%s containing %q", c.Status, c.Reason, c.Message, tc.wantStatus, tc.wantReason, tc.wantMessage)
			}
			if c.ObservedGeneration != 3 {
				t.Errorf("observedGeneration = %d, want 3", c.ObservedGeneration)
			}
		})
	}
}

func TestSetReadyCondition(t *testing.T) {
	var allReady []metav1.Condition
	for _, ct := range tenantPhaseConditions() {
		allReady = append(allReady, cond(ct, metav1.ConditionTrue, "Ready"))
	}
	nsFailed := cond(v1alpha1.TenantNamespaceReady, metav1.ConditionFalse, v1alpha1.ReasonNamespaceError)
	billingDown := append(slices.Clone(allReady[:4]), cond(v1alpha1.TenantBillingReady, metav1.ConditionFalse, v1alpha1.ReasonBackendUnavailable))
	billingDown = append(billingDown, allReady[5:]...)
	for _, tc := range []struct {
		name        string
		conds       []metav1.Condition
		err         error
		wantStatus  metav1.ConditionStatus
		wantReason  string
		wantMessage string
	}{
		{"all phases ready", allReady, nil, metav1.ConditionTrue, v1alpha1.ReasonProvisioned, "every provisioning phase is ready"},
		{"phase missing", nil, nil, metav1.ConditionFalse, v1alpha1.ReasonPhaseNotReady, "NamespaceReady: not reconciled yet"},
		{"phase failed", []metav1.Condition{nsFailed}, nil, metav1.ConditionFalse, v1alpha1.ReasonPhaseNotReady, "NamespaceReady: NamespaceError message"},
		{"one backend down", billingDown, nil, metav1.ConditionFalse, v1alpha1.ReasonPhaseNotReady, "BillingReady: BackendUnavailable message"},
		{"only the namespace reconciled", []metav1.Condition{allReady[0]}, nil, metav1.ConditionFalse, v1alpha1.ReasonPhaseNotReady, "TopicReady: not reconciled yet"},
		{"unknown plan wins", allReady, &unknownPlanError{plan: "gold", known: []string{"free", "team"}}, metav1.ConditionFalse, v1alpha1.ReasonUnknownPlan, `plan "gold" is not in the platform's plan catalog (known plans: free, team)`},
		{"error after ready phases", allReady, errors.New("patch failed"), metav1.ConditionFalse, v1alpha1.ReasonReconcileError, "patch failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tenant := newTenant(tc.conds...)
			setReadyCondition(tenant, tc.err)
			c := meta.FindStatusCondition(tenant.Status.Conditions, v1alpha1.ConditionReady)
			if c == nil {
				t.Fatal("no Ready condition")
			}
			if c.Status != tc.wantStatus || c.Reason != tc.wantReason || !strings.Contains(c.Message, tc.wantMessage) {
				t.Errorf("got %s/%s %q, want %s/%s containing %q", c.Status, c.Reason, c.Message, tc.wantStatus, tc.wantReason, tc.wantMessage)
			}
		})
	}
}

func TestSetDeletingCondition(t *testing.T) {
	now := metav1.Now()
	terminating := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant-acme", DeletionTimestamp: &now}}
	terminating.Spec.Finalizers = []corev1.FinalizerName{"kubernetes"}
	terminating.Status.Conditions = []corev1.NamespaceCondition{
		{Type: corev1.NamespaceContentRemaining, Status: corev1.ConditionTrue, Message: "Some resources are remaining: pods. has 2 resource instances"},
		{Type: corev1.NamespaceDeletionDiscoveryFailure, Status: corev1.ConditionFalse, Message: "All resources successfully discovered"},
	}
	for _, tc := range []struct {
		name        string
		ns          *corev1.Namespace
		err         error
		waited      time.Duration
		wantReason  string
		wantMessage []string
		notMessage  string
	}{
		{"waiting", terminating, nil, time.Second, v1alpha1.ReasonDeleting, []string{"waiting for namespace tenant-acme", "namespace finalizers kubernetes", "pods. has 2"}, "successfully discovered"},
		{"stuck", terminating, nil, 10 * time.Minute, v1alpha1.ReasonDeletionStuck, []string{"stuck after 5m0s", "pods. has 2", "keeps its finalizer"}, "successfully discovered"},
		{"gone", nil, nil, 10 * time.Minute, v1alpha1.ReasonDeleting, []string{"cleanup finished"}, "stuck"},
		{"backend failing", nil, fromBackend(backendClickHouse, errors.New("dial tcp: connection refused")), time.Minute, v1alpha1.ReasonDeleting,
			[]string{"deleting: ClickHouse: dial tcp: connection refused"}, "stuck"},
		{"backend stuck", nil, fromBackend(backendLake, errors.New("access denied")), 10 * time.Minute, v1alpha1.ReasonDeletionStuck,
			[]string{"stuck after 5m0s: S3: access denied", "set spec.deletionPolicy to Retain"}, "waiting for namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tenant := newTenant()
			setDeletingCondition(tenant, tc.ns, tc.err, tc.waited, 5*time.Minute)
			c := meta.FindStatusCondition(tenant.Status.Conditions, v1alpha1.ConditionReady)
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != tc.wantReason {
				t.Fatalf("Ready = %+v, want False/%s", c, tc.wantReason)
			}
			for _, want := range tc.wantMessage {
				if !strings.Contains(c.Message, want) {
					t.Errorf("message %q lacks %q", c.Message, want)
				}
			}
			if strings.Contains(c.Message, tc.notMessage) {
				t.Errorf("message %q should not contain %q", c.Message, tc.notMessage)
			}
		})
	}
}

func TestSetConditionKeepsTransitionTime(t *testing.T) {
	tenant := newTenant()
	setCondition(&tenant.Status.Conditions, 1, "X", metav1.ConditionTrue, "A", "first")
	first := tenant.Status.Conditions[0].LastTransitionTime
	first.Time = first.Add(-time.Hour)
	tenant.Status.Conditions[0].LastTransitionTime = first

	setCondition(&tenant.Status.Conditions, 2, "X", metav1.ConditionTrue, "A", "second")
	if got := tenant.Status.Conditions[0]; !got.LastTransitionTime.Equal(&first) || got.Message != "second" || got.ObservedGeneration != 2 {
		t.Errorf("same status: got %+v, want transition time kept and message, generation updated", got)
	}
	setCondition(&tenant.Status.Conditions, 2, "X", metav1.ConditionFalse, "B", "third")
	if got := tenant.Status.Conditions[0]; got.LastTransitionTime.Equal(&first) {
		t.Error("status changed but transition time did not move")
	}
}

func TestConditionTransitions(t *testing.T) {
	readyTrue := cond("Ready", metav1.ConditionTrue, "Provisioned")
	readyFalse := cond("Ready", metav1.ConditionFalse, "PhaseNotReady")
	readyFalseOther := cond("Ready", metav1.ConditionFalse, "UnknownPlan")
	nsUnknown := cond("NamespaceReady", metav1.ConditionUnknown, "NamespaceError")
	for _, tc := range []struct {
		name          string
		before, after []metav1.Condition
		want          []string // type/eventType
	}{
		{"new condition true", nil, []metav1.Condition{readyTrue}, []string{"Ready/Normal"}},
		{"new condition false", nil, []metav1.Condition{readyFalse}, []string{"Ready/Warning"}},
		{"unknown is normal", nil, []metav1.Condition{nsUnknown}, []string{"NamespaceReady/Normal"}},
		{"unchanged", []metav1.Condition{readyTrue}, []metav1.Condition{readyTrue}, nil},
		{"message only", []metav1.Condition{readyFalse}, []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: "PhaseNotReady", Message: "other"}}, nil},
		{"reason changed", []metav1.Condition{readyFalse}, []metav1.Condition{readyFalseOther}, []string{"Ready/Warning"}},
		{"false to true", []metav1.Condition{readyFalse}, []metav1.Condition{readyTrue}, []string{"Ready/Normal"}},
		{"two changes in order", nil, []metav1.Condition{nsUnknown, readyFalse}, []string{"NamespaceReady/Normal", "Ready/Warning"}},
		{"suspended is a warning", nil, []metav1.Condition{cond("Suspended", metav1.ConditionTrue, "SuspendedBySpec")}, []string{"Suspended/Warning"}},
		{"resumed is normal", []metav1.Condition{cond("Suspended", metav1.ConditionTrue, "SuspendedBySpec")}, []metav1.Condition{cond("Suspended", metav1.ConditionFalse, "Active")}, []string{"Suspended/Normal"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, tr := range conditionTransitions(tc.before, tc.after) {
				got = append(got, tr.condition.Type+"/"+tr.eventType)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
