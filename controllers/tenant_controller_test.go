package controllers

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/controllers/objects"
	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/internal/testenv"
)

const waitTimeout = 30 * time.Second

func sharedTenant(name, plan string) *v1alpha1.Tenant {
	return &v1alpha1.Tenant{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.TenantSpec{
			DisplayName: "Tenant " + name,
			Plan:        plan,
			Owners:      []string{"owner@" + name + ".example"},
		},
	}
}

func getTenant(ctx context.Context, name string) (*v1alpha1.Tenant, error) {
	t := &v1alpha1.Tenant{}
	err := env.Client.Get(ctx, types.NamespacedName{Name: name}, t)
	return t, err
}

// waitCondition waits until the tenant's condition has the status and one of the
// reasons, and its observedGeneration matches the tenant's, then returns the tenant.
func waitCondition(t *testing.T, name, condType string, status metav1.ConditionStatus, reasons ...string) *v1alpha1.Tenant {
	t.Helper()
	var tenant *v1alpha1.Tenant
	testenv.Eventually(t, waitTimeout, func() error {
		var err error
		tenant, err = getTenant(context.Background(), name)
		if err != nil {
			return err
		}
		c := meta.FindStatusCondition(tenant.Status.Conditions, condType)
		switch {
		case c == nil:
			return fmt.Errorf("tenant %s has no %s condition: %+v", name, condType, tenant.Status)
		case c.Status != status || !slices.Contains(reasons, c.Reason):
			return fmt.Errorf("tenant %s: %s=%s/%s (%s), want %s/%v", name, condType, c.Status, c.Reason, c.Message, status, reasons)
		case c.ObservedGeneration != tenant.Generation || tenant.Status.ObservedGeneration != tenant.Generation:
			return fmt.Errorf("tenant %s: observed generation %d/%d, want %d", name, c.ObservedGeneration, tenant.Status.ObservedGeneration, tenant.Generation)
		}
		return nil
	})
	return tenant
}

func waitGone(t *testing.T, obj client.Object) {
	t.Helper()
	testenv.Eventually(t, waitTimeout, func() error {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("%s %s still exists (err %w, finalizers %v)", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err, obj.GetFinalizers())
	})
}

func deleteTenant(t *testing.T, name string) {
	t.Helper()
	tenant := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Delete(context.Background(), tenant); client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
	waitGone(t, tenant)
}

func TestSamplesBecomeReady(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(env.Root, "config", "samples")
	files, err := filepath.Glob(filepath.Join(dir, "analytics_*.yaml"))
	if err != nil || len(files) < 4 {
		t.Fatalf("samples: %v %v", files, err)
	}
	// Tenants first: the other samples live in a tenant's namespace.
	var tenants, others []client.Object
	for _, f := range files {
		objs, err := env.DecodeFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range objs {
			if _, ok := obj.(*v1alpha1.Tenant); ok {
				tenants = append(tenants, obj)
			} else {
				others = append(others, obj)
			}
		}
	}
	if len(tenants) < 2 || len(others) < 3 {
		t.Fatalf("want at least two sample tenants and one of each other kind, got %d and %d", len(tenants), len(others))
	}
	for _, obj := range tenants {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatalf("creating sample %s: %v", obj.GetName(), err)
		}
	}
	for _, obj := range tenants {
		tenant := waitCondition(t, obj.GetName(), v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)
		if !slices.Contains(tenant.Finalizers, naming.TenantFinalizer) {
			t.Errorf("tenant %s lacks its finalizer: %v", tenant.Name, tenant.Finalizers)
		}
		if tenant.Status.Namespace != naming.TenantNamespace(tenant.Name) {
			t.Errorf("tenant %s status.namespace = %q", tenant.Name, tenant.Status.Namespace)
		}
		ns := &corev1.Namespace{}
		if err := env.Client.Get(ctx, types.NamespacedName{Name: tenant.Status.Namespace}, ns); err != nil {
			t.Fatalf("namespace of %s: %v", tenant.Name, err)
		}
		if ns.Labels[naming.TenantLabel] != tenant.Name || !metav1.IsControlledBy(ns, tenant) {
			t.Errorf("namespace %s: labels %v, owners %v", ns.Name, ns.Labels, ns.OwnerReferences)
		}
	}
	for _, obj := range others {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Errorf("creating sample %T %s/%s: %v", obj, obj.GetNamespace(), obj.GetName(), err)
		}
	}
	for _, obj := range tenants {
		deleteTenant(t, obj.GetName())
	}
}

func TestTenantDeletionRemovesNamespaceThenFinalizer(t *testing.T) {
	ctx := context.Background()
	if err := env.Client.Create(ctx, sharedTenant("delete-me", "free")); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, "delete-me", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)

	// Hold the namespace so the order can be observed: the tenant must wait for it.
	ns := &corev1.Namespace{}
	if err := env.Client.Get(ctx, types.NamespacedName{Name: "tenant-delete-me"}, ns); err != nil {
		t.Fatal(err)
	}
	hold := "test.shoal.dev/hold"
	ns.Finalizers = append(ns.Finalizers, hold)
	if err := env.Client.Update(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Delete(ctx, sharedTenant("delete-me", "free")); err != nil {
		t.Fatal(err)
	}
	// The test's deletion timeout is short, so the wait may already count as stuck.
	tenant := waitCondition(t, "delete-me", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeleting, v1alpha1.ReasonDeletionStuck)
	if !slices.Contains(tenant.Finalizers, naming.TenantFinalizer) {
		t.Fatal("finalizer removed while the namespace still exists")
	}
	if c := meta.FindStatusCondition(tenant.Status.Conditions, v1alpha1.ConditionReady); !strings.Contains(c.Message, hold) {
		t.Errorf("Ready message %q does not name what holds the namespace", c.Message)
	}

	if err := env.Client.Get(ctx, types.NamespacedName{Name: "tenant-delete-me"}, ns); err != nil {
		t.Fatal(err)
	}
	if ns.DeletionTimestamp == nil {
		t.Fatal("namespace not being deleted")
	}
	ns.Finalizers = slices.DeleteFunc(ns.Finalizers, func(f string) bool { return f == hold })
	if err := env.Client.Update(ctx, ns); err != nil {
		t.Fatal(err)
	}
	waitGone(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant-delete-me"}})
	waitGone(t, &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "delete-me"}})
}

func TestStuckDeletionIsReported(t *testing.T) {
	ctx := context.Background()
	if err := env.Client.Create(ctx, sharedTenant("stuck", "free")); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, "stuck", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)
	ns := &corev1.Namespace{}
	if err := env.Client.Get(ctx, types.NamespacedName{Name: "tenant-stuck"}, ns); err != nil {
		t.Fatal(err)
	}
	hold := "storage.example.com/volume-protection"
	ns.Finalizers = append(ns.Finalizers, hold)
	if err := env.Client.Update(ctx, ns); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := env.Client.Delete(ctx, sharedTenant("stuck", "free")); err != nil {
		t.Fatal(err)
	}
	tenant := waitCondition(t, "stuck", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeletionStuck)
	// Deletion timestamps have whole seconds, so the wait may look up to 1s longer.
	if waited := time.Since(start); waited < testDeletionTimeout-time.Second {
		t.Errorf("reported stuck after %s, before the %s timeout", waited, testDeletionTimeout)
	}
	c := meta.FindStatusCondition(tenant.Status.Conditions, v1alpha1.ConditionReady)
	for _, want := range []string{"tenant-stuck", hold, "after 2s"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("stuck message %q lacks %q", c.Message, want)
		}
	}
	waitEvent(t, "stuck", v1alpha1.ReasonDeletionStuck, corev1.EventTypeWarning)

	// Releasing the namespace lets the deletion finish.
	if err := env.Client.Get(ctx, types.NamespacedName{Name: "tenant-stuck"}, ns); err != nil {
		t.Fatal(err)
	}
	ns.Finalizers = slices.DeleteFunc(ns.Finalizers, func(f string) bool { return f == hold })
	if err := env.Client.Update(ctx, ns); err != nil {
		t.Fatal(err)
	}
	waitGone(t, &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "stuck"}})
}

func TestNamespaceDriftIsRepaired(t *testing.T) {
	ctx := context.Background()
	if err := env.Client.Create(ctx, sharedTenant("drift", "team")); err != nil {
		t.Fatal(err)
	}
	defer deleteTenant(t, "drift")
	waitCondition(t, "drift", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)

	t.Run("label removed", func(t *testing.T) {
		ns := &corev1.Namespace{}
		if err := env.Client.Get(ctx, types.NamespacedName{Name: "tenant-drift"}, ns); err != nil {
			t.Fatal(err)
		}
		delete(ns.Labels, naming.ManagedByLabel)
		ns.Labels["pod-security.kubernetes.io/enforce"] = "privileged"
		if err := env.Client.Update(ctx, ns); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, waitTimeout, func() error {
			if err := env.Client.Get(ctx, types.NamespacedName{Name: "tenant-drift"}, ns); err != nil {
				return err
			}
			if ns.Labels[naming.ManagedByLabel] != naming.ManagedByValue || ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
				return fmt.Errorf("labels not restored: %v", ns.Labels)
			}
			return nil
		})
	})

	t.Run("namespace deleted", func(t *testing.T) {
		ns := &corev1.Namespace{}
		if err := env.Client.Get(ctx, types.NamespacedName{Name: "tenant-drift"}, ns); err != nil {
			t.Fatal(err)
		}
		oldUID := ns.UID
		if err := env.Client.Delete(ctx, ns); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, waitTimeout, func() error {
			if err := env.Client.Get(ctx, types.NamespacedName{Name: "tenant-drift"}, ns); err != nil {
				return err
			}
			if ns.UID == oldUID {
				return fmt.Errorf("namespace not recreated yet (deleting: %v)", ns.DeletionTimestamp != nil)
			}
			return nil
		})
		waitCondition(t, "drift", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)
	})
}

func TestUnknownPlan(t *testing.T) {
	ctx := context.Background()
	if err := env.Client.Create(ctx, sharedTenant("planless", "platinum")); err != nil {
		t.Fatal(err)
	}
	defer deleteTenant(t, "planless")
	tenant := waitCondition(t, "planless", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonUnknownPlan)
	c := meta.FindStatusCondition(tenant.Status.Conditions, v1alpha1.ConditionReady)
	if !strings.Contains(c.Message, `"platinum"`) || !strings.Contains(c.Message, "free, team, enterprise") {
		t.Errorf("message %q should name the plan and the known ones", c.Message)
	}
	if meta.FindStatusCondition(tenant.Status.Conditions, v1alpha1.TenantNamespaceReady) != nil {
		t.Error("namespace phase ran for a tenant with an unknown plan")
	}
	waitEvent(t, "planless", v1alpha1.ReasonUnknownPlan, corev1.EventTypeWarning)

	tenant.Spec.Plan = "free"
	if err := env.Client.Update(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, "planless", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)
	waitEvent(t, "planless", v1alpha1.ReasonProvisioned, corev1.EventTypeNormal)
}

func TestNamespaceConflict(t *testing.T) {
	ctx := context.Background()
	squatter := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant-taken", Labels: map[string]string{"team": "someone-else"}}}
	if err := env.Client.Create(ctx, squatter); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, sharedTenant("taken", "free")); err != nil {
		t.Fatal(err)
	}
	defer deleteTenant(t, "taken")
	tenant := waitCondition(t, "taken", v1alpha1.TenantNamespaceReady, metav1.ConditionFalse, v1alpha1.ReasonNamespaceConflict)
	if c := meta.FindStatusCondition(tenant.Status.Conditions, v1alpha1.ConditionReady); c.Status != metav1.ConditionFalse {
		t.Errorf("Ready = %s with a conflicting namespace", c.Status)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(squatter), squatter); err != nil {
		t.Fatal(err)
	}
	if _, ok := squatter.Labels[naming.TenantLabel]; ok || len(squatter.OwnerReferences) > 0 {
		t.Errorf("operator took over a namespace that is not the tenant's: %v %v", squatter.Labels, squatter.OwnerReferences)
	}

	// Once the other namespace is gone the tenant gets its own, without a nudge.
	if err := env.Client.Delete(ctx, squatter); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, "taken", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)
}

func TestConcurrentTenants(t *testing.T) {
	ctx := context.Background()
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- env.Client.Create(ctx, sharedTenant(fmt.Sprintf("many-%02d", i), "team"))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		waitCondition(t, fmt.Sprintf("many-%02d", i), v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)
	}
	for i := range n {
		if err := env.Client.Delete(ctx, sharedTenant(fmt.Sprintf("many-%02d", i), "team")); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		waitGone(t, &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("many-%02d", i)}})
	}
}

func TestStatusWrittenOnlyWhenChanged(t *testing.T) {
	ctx := context.Background()
	if err := env.Client.Create(ctx, sharedTenant("quiet", "free")); err != nil {
		t.Fatal(err)
	}
	defer deleteTenant(t, "quiet")
	tenant := waitCondition(t, "quiet", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)

	// A metadata change wakes the reconciler; an unchanged outcome must not write status.
	version := tenant.ResourceVersion
	tenant.Annotations = map[string]string{"example.com/poke": "1"}
	if err := env.Client.Update(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	poked := tenant.ResourceVersion
	if poked == version {
		t.Fatal("update did not change the resource version")
	}
	time.Sleep(2 * time.Second)
	after, err := getTenant(ctx, "quiet")
	if err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != poked {
		t.Errorf("status was rewritten without a change: resource version %s -> %s", poked, after.ResourceVersion)
	}
}

// waitEvent waits for an event about the tenant with the reason and type.
func waitEvent(t *testing.T, tenant, reason, eventType string) {
	t.Helper()
	testenv.Eventually(t, waitTimeout, func() error {
		var list eventsv1.EventList
		if err := env.Client.List(context.Background(), &list); err != nil {
			return err
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Kind != "Tenant" || e.Regarding.Name != tenant {
				continue
			}
			if e.Reason == reason && e.Type == eventType {
				return nil
			}
			seen = append(seen, e.Type+"/"+e.Reason)
		}
		return fmt.Errorf("no %s event %s for tenant %s; seen %v", eventType, reason, tenant, seen)
	})
}

func getQuota(ctx context.Context, tenant string) (*corev1.ResourceQuota, error) {
	q := &corev1.ResourceQuota{}
	err := env.Client.Get(ctx, types.NamespacedName{Namespace: naming.TenantNamespace(tenant), Name: objects.ResourceQuotaName}, q)
	return q, err
}

func TestNamespaceGuards(t *testing.T) {
	ctx := context.Background()
	if err := env.Client.Create(ctx, sharedTenant("guarded", "free")); err != nil {
		t.Fatal(err)
	}
	defer deleteTenant(t, "guarded")
	waitCondition(t, "guarded", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)

	q, err := getQuota(ctx, "guarded")
	if err != nil {
		t.Fatal(err)
	}
	if pods := q.Spec.Hard[corev1.ResourcePods]; pods.Value() != 20 {
		t.Errorf("quota pods = %s, want the free plan's 20", pods.String())
	}
	np := &networkingv1.NetworkPolicy{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: "tenant-guarded", Name: objects.NetworkPolicyName}, np); err != nil {
		t.Fatal(err)
	}
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].From) != 2 {
		t.Errorf("network policy ingress = %+v", np.Spec.Ingress)
	}

	t.Run("quota deleted comes back", func(t *testing.T) {
		if err := env.Client.Delete(ctx, q); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, waitTimeout, func() error {
			got, err := getQuota(ctx, "guarded")
			if err != nil {
				return err
			}
			if got.UID == q.UID {
				return errors.New("quota not recreated yet")
			}
			return nil
		})
	})

	t.Run("quota edited is restored", func(t *testing.T) {
		got, err := getQuota(ctx, "guarded")
		if err != nil {
			t.Fatal(err)
		}
		got.Spec.Hard[corev1.ResourcePods] = resource.MustParse("500")
		if err := env.Client.Update(ctx, got); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, waitTimeout, func() error {
			got, err := getQuota(ctx, "guarded")
			if err != nil {
				return err
			}
			if pods := got.Spec.Hard[corev1.ResourcePods]; pods.Value() != 20 {
				return fmt.Errorf("quota pods = %s, want 20 restored", pods.String())
			}
			return nil
		})
	})

	t.Run("plan change updates the quota", func(t *testing.T) {
		tenant, err := getTenant(ctx, "guarded")
		if err != nil {
			t.Fatal(err)
		}
		tenant.Spec.Plan = "enterprise"
		if err := env.Client.Update(ctx, tenant); err != nil {
			t.Fatal(err)
		}
		waitCondition(t, "guarded", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)
		got, err := getQuota(ctx, "guarded")
		if err != nil {
			t.Fatal(err)
		}
		want, _ := testPlatform().Plan("enterprise")
		if cpu := got.Spec.Hard[corev1.ResourceRequestsCPU]; cpu.Cmp(want.Quota.CPU) != 0 {
			t.Errorf("quota cpu = %s after the plan change, want %s", cpu.String(), want.Quota.CPU.String())
		}
		// The runtime reads the plan's ingest limits from the tenant's row.
		if rec, err := metastoreClient(t).GetTenant(ctx, "guarded"); err != nil || rec.Plan != "enterprise" {
			t.Errorf("metastore row %+v, %v: want plan enterprise", rec, err)
		}
	})
}
