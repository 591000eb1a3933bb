package controllers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/internal/sealing"
	"github.com/shoal-dev/shoal/internal/testenv"
)

// testBaseURL is the query API's public URL the Dashboard controller is given.
const testBaseURL = "https://analytics.example.test"

// The Dashboard and DataSource controllers under test, and the keyring sealing data
// source credentials.
var (
	dashboards     *DashboardReconciler
	dataSources    *DataSourceReconciler
	dataSourceKeys *sealing.Keyring
)

// startSyncControllers registers the Dashboard and DataSource controllers with the
// suite's manager, on the suite's PostgreSQL, with a keyring of one fresh key.
func startSyncControllers(ctx context.Context, mgr manager.Manager, b Backends, maxConcurrent int) error {
	store, ok := b.Metastore.(*metastore.Store)
	if !ok {
		return fmt.Errorf("the suite's metastore is a %T, not a *metastore.Store", b.Metastore)
	}
	key, err := sealing.GenerateKey()
	if err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return err
	}
	if dataSourceKeys, err = sealing.NewKeyring("test-1", map[string][]byte{"test-1": raw}); err != nil {
		return err
	}
	dashboards = &DashboardReconciler{
		Client:         mgr.GetClient(),
		APIReader:      mgr.GetAPIReader(),
		Recorder:       mgr.GetEventRecorder("shoal-operator"),
		Store:          store,
		BaseURL:        testBaseURL,
		ResyncInterval: testResync,
	}
	if err := dashboards.SetupWithManager(ctx, mgr, maxConcurrent); err != nil {
		return err
	}
	dataSources = &DataSourceReconciler{
		Client:         mgr.GetClient(),
		Recorder:       mgr.GetEventRecorder("shoal-operator"),
		Store:          store.DataSources(dataSourceKeys),
		ResyncInterval: testResync,
	}
	return dataSources.SetupWithManager(ctx, mgr, maxConcurrent)
}

// waitSynced waits until obj's condition has the status and reason for its current
// generation, and returns the condition.
func waitSynced(t *testing.T, obj client.Object, conds func() []metav1.Condition, condType string, status metav1.ConditionStatus, reason string) metav1.Condition {
	t.Helper()
	var got metav1.Condition
	testenv.Eventually(t, waitTimeout, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		c := meta.FindStatusCondition(conds(), condType)
		switch {
		case c == nil:
			return fmt.Errorf("%s has no %s condition: %+v", obj.GetName(), condType, conds())
		case c.Status != status || c.Reason != reason:
			return fmt.Errorf("%s: %s=%s/%s (%s), want %s/%s", obj.GetName(), condType, c.Status, c.Reason, c.Message, status, reason)
		case c.ObservedGeneration != obj.GetGeneration():
			return fmt.Errorf("%s: %s observed generation %d, want %d", obj.GetName(), condType, c.ObservedGeneration, obj.GetGeneration())
		}
		got = *c
		return nil
	})
	return got
}

func waitDashboard(t *testing.T, d *v1alpha1.Dashboard, condType string, status metav1.ConditionStatus, reason string) metav1.Condition {
	t.Helper()
	return waitSynced(t, d, func() []metav1.Condition { return d.Status.Conditions }, condType, status, reason)
}

// newSyncTenant makes a Shared tenant and waits until its metadata is stored.
func newSyncTenant(t *testing.T, name string) string {
	t.Helper()
	if err := env.Client.Create(context.Background(), sharedTenant(name, "free")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteTenant(t, name) })
	waitCondition(t, name, v1alpha1.TenantMetadataReady, metav1.ConditionTrue, v1alpha1.ReasonMetadataStored)
	return naming.TenantNamespace(name)
}

func clicksPipeline(ns string) *v1alpha1.Pipeline {
	return &v1alpha1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "clicks"},
		Spec: v1alpha1.PipelineSpec{
			Source:        v1alpha1.PipelineSource{EventTypes: []string{"click"}},
			Metrics:       []v1alpha1.Metric{{Name: "clicks", Type: v1alpha1.MetricCount}},
			Dimensions:    []v1alpha1.FieldRef{"properties.page"},
			Granularities: []v1alpha1.Granularity{v1alpha1.GranularityHour, v1alpha1.GranularityDay},
		},
	}
}

func refreshSeconds(s int32) *int32 { return &s }

func overviewDashboard(ns string) *v1alpha1.Dashboard {
	return &v1alpha1.Dashboard{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "overview"},
		Spec: v1alpha1.DashboardSpec{
			Title:          "Overview",
			RefreshSeconds: refreshSeconds(60),
			Widgets: []v1alpha1.Widget{
				{
					ID: "by-page", Type: v1alpha1.WidgetTimeseries,
					Query:    v1alpha1.WidgetQuery{Pipeline: "clicks", Metric: "clicks", GroupBy: []v1alpha1.FieldRef{"properties.page"}, Interval: v1alpha1.GranularityDay},
					Position: v1alpha1.WidgetPosition{Column: 0, Row: 0, Width: 12, Height: 4},
				},
				{
					ID: "total", Type: v1alpha1.WidgetNumber,
					Query:    v1alpha1.WidgetQuery{Pipeline: "clicks", Metric: "visits"},
					Position: v1alpha1.WidgetPosition{Column: 0, Row: 4, Width: 3, Height: 2},
				},
			},
		},
	}
}

// updateDashboard changes a dashboard's spec, retrying on conflicts with the controller.
func updateDashboard(t *testing.T, d *v1alpha1.Dashboard, change func(*v1alpha1.Dashboard)) {
	t.Helper()
	testenv.Eventually(t, waitTimeout, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(d), d); err != nil {
			return err
		}
		change(d)
		return env.Client.Update(context.Background(), d)
	})
}

func shareSecretOf(t *testing.T, d *v1alpha1.Dashboard) (*corev1.Secret, error) {
	t.Helper()
	s := &corev1.Secret{}
	err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: d.Namespace, Name: d.Name + "-share"}, s)
	return s, err
}

func TestDashboardSyncsAndChecksItsWidgets(t *testing.T) {
	ctx := context.Background()
	const tenant = "dash"
	ns := newSyncTenant(t, tenant)
	store := metastoreClient(t)

	// Before the pipeline exists, both widgets are invalid, but the dashboard is stored.
	d := overviewDashboard(ns)
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	synced := waitDashboard(t, d, v1alpha1.ConditionSynced, metav1.ConditionTrue, v1alpha1.ReasonSynced)
	valid := waitDashboard(t, d, v1alpha1.ConditionValid, metav1.ConditionFalse, v1alpha1.ReasonInvalidQueries)
	for _, want := range []string{"widget by-page: pipeline clicks does not exist", "widget total: pipeline clicks does not exist"} {
		if !strings.Contains(valid.Message, want) {
			t.Errorf("Valid message %q lacks %q", valid.Message, want)
		}
	}
	id := d.Status.DashboardID
	if !strings.Contains(synced.Message, id) || id == "" {
		t.Errorf("Synced %q, status.dashboardID %q", synced.Message, id)
	}
	if d.Status.URL != testBaseURL+"/api/v1/dashboards/"+id {
		t.Errorf("status.url = %q", d.Status.URL)
	}
	if !slices.Contains(d.Finalizers, DashboardFinalizer) {
		t.Errorf("finalizers %v", d.Finalizers)
	}
	waitDashboard(t, d, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvalidQueries)

	stored, err := store.GetDashboard(ctx, tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if stored.ManagedBy != ns+"/overview" || stored.Name != "overview" || stored.Title != "Overview" || len(stored.Widgets) != 2 {
		t.Fatalf("stored dashboard %+v", stored)
	}
	if w := stored.Widgets[0]; w.Key != "by-page" || w.Type != "timeseries" {
		t.Errorf("first widget %+v", w)
	}
	var q v1alpha1.WidgetQuery
	if err := json.Unmarshal(stored.Widgets[1].Query, &q); err != nil || q.Pipeline != "clicks" || q.Metric != "visits" || q.Interval != v1alpha1.GranularityHour {
		t.Errorf("second widget's query %s (%v)", stored.Widgets[1].Query, err)
	}
	// The API cannot change a dashboard the object owns.
	var managed *metastore.ManagedError
	if err := store.DeleteDashboard(ctx, tenant, id); !errors.As(err, &managed) || managed.ManagedBy != ns+"/overview" {
		t.Errorf("deleting a managed dashboard through the API: %v", err)
	}

	// The pipeline appears: only the widget naming a metric it lacks stays invalid.
	if err := env.Client.Create(ctx, clicksPipeline(ns)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, waitTimeout, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			return err
		}
		c := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionValid)
		if c == nil || c.Status != metav1.ConditionFalse || strings.Contains(c.Message, "by-page") ||
			!strings.Contains(c.Message, "widget total: pipeline clicks has no metric visits (metrics: clicks)") {
			return fmt.Errorf("Valid %+v", c)
		}
		return nil
	})

	// Re-reconciling an unchanged dashboard writes nothing.
	stored, err = store.GetDashboard(ctx, tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dashboards.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(d)}); err != nil {
		t.Fatal(err)
	}
	again, err := store.GetDashboard(ctx, tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if again.Version != stored.Version || !again.UpdatedAt.Equal(stored.UpdatedAt) {
		t.Errorf("an unchanged reconcile wrote: version %d -> %d", stored.Version, again.Version)
	}

	// Fixing the widget makes the dashboard Ready and updates the store.
	updateDashboard(t, d, func(d *v1alpha1.Dashboard) {
		d.Spec.Widgets[1].Query.Metric = "clicks"
		d.Spec.Title = "Clicks"
	})
	waitDashboard(t, d, v1alpha1.ConditionValid, metav1.ConditionTrue, v1alpha1.ReasonQueriesValid)
	waitDashboard(t, d, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSynced)
	stored, err = store.GetDashboard(ctx, tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Title != "Clicks" || stored.Version <= again.Version {
		t.Errorf("after the edit: title %q, version %d (was %d)", stored.Title, stored.Version, again.Version)
	}

	// Deleting the object deletes the row.
	if err := env.Client.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitGone(t, d)
	if _, err := store.GetDashboard(ctx, tenant, id); !errors.Is(err, metastore.ErrNotFound) {
		t.Errorf("dashboard row after the object's deletion: %v", err)
	}
}

func TestPublicDashboardShareToken(t *testing.T) {
	ctx := context.Background()
	const tenant = "dashpub"
	ns := newSyncTenant(t, tenant)
	store := metastoreClient(t)

	d := overviewDashboard(ns)
	d.Spec.Public = true
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitDashboard(t, d, v1alpha1.ConditionSynced, metav1.ConditionTrue, v1alpha1.ReasonSynced)
	if d.Status.ShareSecret != "overview-share" {
		t.Fatalf("status.shareSecret = %q", d.Status.ShareSecret)
	}
	opens := func(token string) error {
		got, err := store.GetDashboardByShareToken(ctx, token)
		if err != nil {
			return err
		}
		if got.ID != d.Status.DashboardID || got.TenantID != tenant {
			return fmt.Errorf("token opens dashboard %s of %s, want %s", got.ID, got.TenantID, d.Status.DashboardID)
		}
		return nil
	}
	secret, err := shareSecretOf(t, d)
	if err != nil {
		t.Fatal(err)
	}
	first := string(secret.Data[ShareTokenKey])
	if err := opens(first); err != nil {
		t.Fatalf("the Secret's token: %v", err)
	}
	if got := string(secret.Data[ShareURLKey]); got != testBaseURL+"/api/v1/public/dashboards/"+first {
		t.Errorf("share url %q", got)
	}
	if !metav1.IsControlledBy(secret, d) {
		t.Errorf("share Secret owners %v", secret.OwnerReferences)
	}

	// A lost Secret gets a new token; the old one stops working.
	if err := env.Client.Delete(ctx, secret); err != nil {
		t.Fatal(err)
	}
	var second string
	testenv.Eventually(t, waitTimeout, func() error {
		s, err := shareSecretOf(t, d)
		if err != nil {
			return err
		}
		second = string(s.Data[ShareTokenKey])
		if second == first {
			return errors.New("share Secret not replaced yet")
		}
		return opens(second)
	})
	if err := opens(first); !errors.Is(err, metastore.ErrNotFound) {
		t.Errorf("the lost token still opens the dashboard: %v", err)
	}

	// Made private: the Secret goes and the token stops working.
	updateDashboard(t, d, func(d *v1alpha1.Dashboard) { d.Spec.Public = false })
	testenv.Eventually(t, waitTimeout, func() error {
		switch _, err := shareSecretOf(t, d); {
		case err == nil:
			return errors.New("a private dashboard still has its share Secret")
		case !apierrors.IsNotFound(err):
			return err
		}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			return err
		}
		if d.Status.ShareSecret != "" {
			return fmt.Errorf("status.shareSecret = %q", d.Status.ShareSecret)
		}
		return nil
	})
	if err := opens(second); !errors.Is(err, metastore.ErrNotFound) {
		t.Errorf("a private dashboard opens by token: %v", err)
	}
}

func TestDashboardWaitsForItsTenant(t *testing.T) {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: naming.TenantNamespace("nodash")}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, ns) })
	d := overviewDashboard(ns.Name)
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	c := waitDashboard(t, d, v1alpha1.ConditionSynced, metav1.ConditionFalse, v1alpha1.ReasonTenantNotReady)
	if c.Message != "tenant nodash does not exist" {
		t.Errorf("Synced message %q", c.Message)
	}
	if d.Status.DashboardID != "" || d.Status.URL != "" {
		t.Errorf("status of an unsynced dashboard %+v", d.Status)
	}
	waitDashboard(t, d, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonTenantNotReady)
	// Nothing was stored; deletion is not held up.
	if err := env.Client.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitGone(t, d)
}
