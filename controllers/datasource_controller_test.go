package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/testenv"
)

func waitDataSource(t *testing.T, ds *v1alpha1.DataSource, condType string, status metav1.ConditionStatus, reason string) metav1.Condition {
	t.Helper()
	return waitSynced(t, ds, func() []metav1.Condition { return ds.Status.Conditions }, condType, status, reason)
}

func ordersDataSource(ns, host string) *v1alpha1.DataSource {
	return &v1alpha1.DataSource{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orders"},
		Spec: v1alpha1.DataSourceSpec{
			Type:                 v1alpha1.DataSourcePostgres,
			Schedule:             "@every 15m",
			CredentialsSecretRef: &v1alpha1.SecretRef{Name: "shop-db"},
			Postgres: &v1alpha1.PostgresSource{
				Host: host, Database: "shop", CursorColumn: "id",
				Query: "SELECT id, created_at FROM orders WHERE id > $1 ORDER BY id",
			},
			Mapping: v1alpha1.EventMapping{EventType: "order_created", IDField: "id"},
		},
	}
}

func TestDataSourceSyncsWithSealedCredentials(t *testing.T) {
	ctx := context.Background()
	const tenant = "dsrc"
	ns := newSyncTenant(t, tenant)
	sources := metastoreClient(t).DataSources(dataSourceKeys)

	// The Secret does not exist yet: reported by name, nothing stored.
	ds := ordersDataSource(ns, "shop-db.example:6432")
	if err := env.Client.Create(ctx, ds); err != nil {
		t.Fatal(err)
	}
	c := waitDataSource(t, ds, v1alpha1.ConditionSynced, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
	if !strings.Contains(c.Message, "Secret shop-db does not exist in namespace "+ns) {
		t.Errorf("Synced message %q", c.Message)
	}
	waitDataSource(t, ds, v1alpha1.ConditionValid, metav1.ConditionTrue, v1alpha1.ReasonConfigValid)
	waitDataSource(t, ds, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)

	// The Secret appears: the data source syncs with its credentials sealed.
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-db"},
		Data:       map[string][]byte{"user": []byte("shop"), "password": []byte("s3cret")},
	}
	if err := env.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	waitDataSource(t, ds, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSynced)
	id := ds.Status.DataSourceID
	if id == "" || !ds.Status.HasCredentials || !slices.Contains(ds.Finalizers, DataSourceFinalizer) {
		t.Fatalf("status %+v, finalizers %v", ds.Status, ds.Finalizers)
	}
	stored, err := sources.Get(ctx, tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(stored.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	if stored.ManagedBy != ns+"/orders" || stored.Type != "postgres" || !stored.HasCredentials ||
		cfg["host"] != "shop-db.example" || cfg["port"] != float64(6432) || cfg["schedule"] != "@every 15m" {
		t.Errorf("stored %+v, config %v", stored, cfg)
	}
	if strings.Contains(string(stored.Config), "s3cret") {
		t.Errorf("the password is in the clear config: %s", stored.Config)
	}
	wantCreds := func(want map[string]string) error {
		got, err := sources.Credentials(ctx, tenant, id)
		if err != nil {
			return err
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("credentials %v, want %v", got, want)
		}
		return nil
	}
	if err := wantCreds(map[string]string{"user": "shop", "password": "s3cret"}); err != nil {
		t.Error(err)
	}

	// A changed Secret is synced through the Secret watch.
	secret.Data["password"] = []byte("rotated")
	if err := env.Client.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, waitTimeout, func() error { return wantCreds(map[string]string{"user": "shop", "password": "rotated"}) })

	// Deleting the object deletes the row.
	if err := env.Client.Delete(ctx, ds); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ds)
	if _, err := sources.Get(ctx, tenant, id); !errors.Is(err, metastore.ErrNotFound) {
		t.Errorf("data source row after the object's deletion: %v", err)
	}
}

func TestDataSourceConfigChecks(t *testing.T) {
	ctx := context.Background()
	const tenant = "dsrcbad"
	ns := newSyncTenant(t, tenant)
	sources := metastoreClient(t).DataSources(dataSourceKeys)

	// The schema refuses what it can see: a postgres source without its block.
	noBlock := ordersDataSource(ns, "db.example")
	noBlock.Name = "no-block"
	noBlock.Spec.Postgres = nil
	if err := env.Client.Create(ctx, noBlock); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "the postgres block is required") {
		t.Errorf("creating a postgres source without its block: %v", err)
	}

	// The store's checks go further; Valid names the object's field.
	bad := ordersDataSource(ns, "not_a_host!")
	bad.Name = "bad-host"
	bad.Spec.CredentialsSecretRef = &v1alpha1.SecretRef{Name: "nowhere"}
	if err := env.Client.Create(ctx, bad); err != nil {
		t.Fatal(err)
	}
	c := waitDataSource(t, bad, v1alpha1.ConditionValid, metav1.ConditionFalse, v1alpha1.ReasonInvalidConfig)
	if !strings.Contains(c.Message, "spec.postgres.host") || !strings.Contains(c.Message, "must be a host name or IP address") {
		t.Errorf("Valid message %q", c.Message)
	}
	waitDataSource(t, bad, v1alpha1.ConditionSynced, metav1.ConditionFalse, v1alpha1.ReasonInvalidConfig)
	waitDataSource(t, bad, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvalidConfig)
	page, err := sources.List(ctx, tenant, metastore.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 0 {
		t.Errorf("an invalid data source was stored: %+v", page.Items)
	}

	// Fixed, and without credentials (an http source needs none), it syncs.
	fixed := &v1alpha1.DataSource{}
	testenv.Eventually(t, waitTimeout, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(bad), fixed); err != nil {
			return err
		}
		fixed.Spec = v1alpha1.DataSourceSpec{
			Type:     v1alpha1.DataSourceHTTP,
			Schedule: "@hourly",
			HTTP:     &v1alpha1.HTTPSource{URL: "https://api.example/orders", RecordsPath: "data.items"},
			Mapping:  v1alpha1.EventMapping{EventTypeField: "kind"},
		}
		return env.Client.Update(ctx, fixed)
	})
	c = waitDataSource(t, fixed, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSynced)
	if fixed.Status.HasCredentials {
		t.Errorf("status %+v", fixed.Status)
	}
	creds, err := sources.Credentials(ctx, tenant, fixed.Status.DataSourceID)
	if err != nil || creds != nil {
		t.Errorf("credentials of a source without a Secret: %v %v (%s)", creds, err, c.Message)
	}
}
