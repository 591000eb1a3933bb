package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/api/v1alpha1"
)

func TestBackendChecks(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	interval := time.Minute
	ready := func(gen int64) *v1alpha1.Tenant {
		tenant := newTenant()
		tenant.UID = "uid-1"
		tenant.Generation = gen
		setCondition(&tenant.Status.Conditions, gen, v1alpha1.TenantTopicReady, metav1.ConditionTrue, "TopicReady", "")
		return tenant
	}
	for _, tc := range []struct {
		name   string
		mark   bool
		tenant func() *v1alpha1.Tenant
		detail string
		after  time.Duration
		want   bool
	}{
		{"never checked", false, func() *v1alpha1.Tenant { return ready(1) }, "", 0, false},
		{"just checked", true, func() *v1alpha1.Tenant { return ready(1) }, "", 10 * time.Second, true},
		{"interval passed", true, func() *v1alpha1.Tenant { return ready(1) }, "", interval, false},
		{"other detail", true, func() *v1alpha1.Tenant { return ready(1) }, "SuspendedBySpec", 0, false},
		{"spec changed", true, func() *v1alpha1.Tenant {
			tenant := ready(1)
			tenant.Generation = 2
			return tenant
		}, "", 0, false},
		{"condition no longer true", true, func() *v1alpha1.Tenant {
			tenant := ready(1)
			setCondition(&tenant.Status.Conditions, 1, v1alpha1.TenantTopicReady, metav1.ConditionFalse, "BackendUnavailable", "")
			return tenant
		}, "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c backendChecks
			if tc.mark {
				c.passed(ready(1), v1alpha1.TenantTopicReady, "", now)
			}
			if got := c.fresh(tc.tenant(), v1alpha1.TenantTopicReady, tc.detail, now.Add(tc.after), interval); got != tc.want {
				t.Errorf("fresh = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("forget", func(t *testing.T) {
		var c backendChecks
		c.passed(ready(1), v1alpha1.TenantTopicReady, "", now)
		c.forget("uid-1")
		if c.fresh(ready(1), v1alpha1.TenantTopicReady, "", now, interval) {
			t.Error("fresh after forget")
		}
	})
}
