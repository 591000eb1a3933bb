package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/metastore"
)

func TestDataSourceConfig(t *testing.T) {
	mapping := v1alpha1.EventMapping{EventType: "order", IDField: "id"}
	const mappingJSON = `"mapping":{"eventType":"order","idField":"id"}`
	for _, tc := range []struct {
		name string
		spec v1alpha1.DataSourceSpec
		want string
	}{
		{
			name: "http",
			spec: v1alpha1.DataSourceSpec{Type: v1alpha1.DataSourceHTTP, Schedule: "@hourly", Mapping: mapping,
				HTTP: &v1alpha1.HTTPSource{URL: "https://api.example/x", RecordsPath: "data"}},
			want: `{` + mappingJSON + `,"recordsPath":"data","schedule":"@hourly","url":"https://api.example/x"}`,
		},
		{
			name: "postgres with a port",
			spec: v1alpha1.DataSourceSpec{Type: v1alpha1.DataSourcePostgres, Schedule: "*/5 * * * *", Mapping: mapping,
				Postgres: &v1alpha1.PostgresSource{Host: "db.example:6432", Database: "shop", Query: "SELECT 1", CursorColumn: "id"}},
			want: `{"cursorColumn":"id","database":"shop","host":"db.example",` + mappingJSON + `,"port":6432,"query":"SELECT 1","schedule":"*/5 * * * *"}`,
		},
		{
			name: "postgres on the default port",
			spec: v1alpha1.DataSourceSpec{Type: v1alpha1.DataSourcePostgres, Mapping: mapping,
				Postgres: &v1alpha1.PostgresSource{Host: "db.example", Database: "shop"}},
			want: `{"database":"shop","host":"db.example",` + mappingJSON + `}`,
		},
		{
			name: "s3",
			spec: v1alpha1.DataSourceSpec{Type: v1alpha1.DataSourceS3, Schedule: "@every 5m", Mapping: mapping,
				S3: &v1alpha1.S3Source{Bucket: "exports", Prefix: "orders/", Region: "eu-west-1", Format: "csv"}},
			want: `{"bucket":"exports","format":"csv",` + mappingJSON + `,"prefix":"orders/","region":"eu-west-1","schedule":"@every 5m"}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := &v1alpha1.DataSource{ObjectMeta: metav1.ObjectMeta{Name: "src"}, Spec: tc.spec}
			got, err := dataSourceConfig(ds)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if errs := metastore.ValidateDataSourceConfig(string(tc.spec.Type), got); len(errs) > 0 {
				t.Errorf("the store refuses it: %v", errs)
			}
		})
	}
}

func TestSplitPort(t *testing.T) {
	for _, tc := range []struct {
		in, host string
		port     any
	}{
		{"db.example", "db.example", nil},
		{"db.example:5432", "db.example", 5432},
		{"[::1]:5432", "::1", 5432},
		{"::1", "::1", nil},
		{"db.example:pg", "db.example", "pg"},
	} {
		host, port := splitPort(tc.in)
		if host != tc.host || port != tc.port {
			t.Errorf("splitPort(%q) = %q, %v; want %q, %v", tc.in, host, port, tc.host, tc.port)
		}
	}
}

func TestDataSourceConfigErrorsNameTheObjectsFields(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec v1alpha1.DataSourceSpec
		want []string
	}{
		{
			name: "bad host and port",
			spec: v1alpha1.DataSourceSpec{Type: v1alpha1.DataSourcePostgres,
				Postgres: &v1alpha1.PostgresSource{Host: "bad_host!:99999", Database: "shop"}},
			want: []string{"spec.postgres.host", "spec.postgres.host"},
		},
		{
			name: "URL with a password",
			spec: v1alpha1.DataSourceSpec{Type: v1alpha1.DataSourceHTTP, HTTP: &v1alpha1.HTTPSource{URL: "https://u:p@api.example/"}},
			want: []string{"spec.http.url"},
		},
		{
			name: "bad bucket",
			spec: v1alpha1.DataSourceSpec{Type: v1alpha1.DataSourceS3, S3: &v1alpha1.S3Source{Bucket: "Exports_2024"}},
			want: []string{"spec.s3.bucket"},
		},
		{
			name: "valid",
			spec: v1alpha1.DataSourceSpec{Type: v1alpha1.DataSourceS3, S3: &v1alpha1.S3Source{Bucket: "exports"}},
		},
		{
			// Pushed to: nothing to configure but the mapping.
			name: "webhook",
			spec: v1alpha1.DataSourceSpec{Type: v1alpha1.DataSourceWebhook},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs, err := dataSourceConfigErrors(&v1alpha1.DataSource{Spec: tc.spec})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("fields %v, want %v (%v)", got, tc.want, errs)
			}
		})
	}
}

func TestSpecPath(t *testing.T) {
	for _, tc := range []struct{ store, want string }{
		{"type", "spec.type"},
		{"config", "spec"},
		{"config.host", "spec.postgres.host"},
		{"config.port", "spec.postgres.host"},
		{"config.schedule", "spec.schedule"},
		{"config.mapping", "spec.mapping"},
	} {
		if got := specPath(v1alpha1.DataSourcePostgres, tc.store); got != tc.want {
			t.Errorf("specPath(%q) = %q, want %q", tc.store, got, tc.want)
		}
	}
}

func TestSecretCredentials(t *testing.T) {
	got := secretCredentials(&corev1.Secret{Data: map[string][]byte{"password": []byte("pw"), "user": []byte("u")}})
	if len(got) != 2 || got["password"] != "pw" || got["user"] != "u" {
		t.Errorf("credentials %v", got)
	}
}

func TestSetDataSourceConditions(t *testing.T) {
	invalid := field.ErrorList{field.Invalid(field.NewPath("spec", "postgres", "host"), "bad_host!", "must be a host name or IP address")}
	withSecret := func(ds *v1alpha1.DataSource) { ds.Spec.CredentialsSecretRef = &v1alpha1.SecretRef{Name: "shop-db"} }
	type want struct {
		status  metav1.ConditionStatus
		reason  string
		message string
	}
	for _, tc := range []struct {
		name               string
		obs                dataSourceObservation
		synced, valid, rdy want
	}{
		{
			name:   "synced with credentials",
			obs:    dataSourceObservation{id: "7c1e", hasCredentials: true},
			synced: want{metav1.ConditionTrue, v1alpha1.ReasonSynced, "stored as data source 7c1e, with the credentials of Secret shop-db sealed"},
			valid:  want{metav1.ConditionTrue, v1alpha1.ReasonConfigValid, "the postgres configuration is valid"},
			rdy:    want{metav1.ConditionTrue, v1alpha1.ReasonSynced, ""},
		},
		{
			name:   "invalid configuration",
			obs:    dataSourceObservation{configErrs: invalid},
			synced: want{metav1.ConditionFalse, v1alpha1.ReasonInvalidConfig, "not synced"},
			valid:  want{metav1.ConditionFalse, v1alpha1.ReasonInvalidConfig, `spec.postgres.host: Invalid value: "bad_host!": must be a host name or IP address`},
			rdy:    want{metav1.ConditionFalse, v1alpha1.ReasonInvalidConfig, "Synced: not synced"},
		},
		{
			name:   "Secret missing",
			obs:    dataSourceObservation{secretProblem: "the credentials Secret shop-db does not exist in namespace tenant-acme"},
			synced: want{metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound, "Secret shop-db does not exist"},
			valid:  want{metav1.ConditionTrue, v1alpha1.ReasonConfigValid, ""},
			rdy:    want{metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound, "Synced: the credentials Secret shop-db"},
		},
		{
			name:   "tenant not ready",
			obs:    dataSourceObservation{tenantProblem: "tenant acme is being deleted"},
			synced: want{metav1.ConditionFalse, v1alpha1.ReasonTenantNotReady, "tenant acme is being deleted"},
			valid:  want{metav1.ConditionTrue, v1alpha1.ReasonConfigValid, ""},
			rdy:    want{metav1.ConditionFalse, v1alpha1.ReasonTenantNotReady, ""},
		},
		{
			name:   "PostgreSQL down",
			obs:    dataSourceObservation{syncErr: fromBackend(backendMetastore, fmt.Errorf("syncing: %w", context.DeadlineExceeded))},
			synced: want{metav1.ConditionFalse, v1alpha1.ReasonBackendUnavailable, "PostgreSQL unavailable"},
			valid:  want{metav1.ConditionTrue, v1alpha1.ReasonConfigValid, ""},
			rdy:    want{metav1.ConditionFalse, v1alpha1.ReasonBackendUnavailable, ""},
		},
		{
			name:   "name taken",
			obs:    dataSourceObservation{syncErr: fmt.Errorf("syncing: %w", metastore.ErrNameTaken)},
			synced: want{metav1.ConditionFalse, v1alpha1.ReasonNameTaken, "already has a data source named orders"},
			valid:  want{metav1.ConditionTrue, v1alpha1.ReasonConfigValid, ""},
			rdy:    want{metav1.ConditionFalse, v1alpha1.ReasonNameTaken, ""},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := ordersDataSource("tenant-acme", "db.example")
			withSecret(ds)
			ds.Generation = 2
			setDataSourceConditions(ds, tc.obs)
			conds := ds.Status.Conditions
			wantSyncCondition(t, conds, 2, v1alpha1.ConditionSynced, tc.synced.status, tc.synced.reason, tc.synced.message)
			wantSyncCondition(t, conds, 2, v1alpha1.ConditionValid, tc.valid.status, tc.valid.reason, tc.valid.message)
			wantSyncCondition(t, conds, 2, v1alpha1.ConditionReady, tc.rdy.status, tc.rdy.reason, tc.rdy.message)
		})
	}
}

func TestSyncResults(t *testing.T) {
	r := &DataSourceReconciler{}
	res, err := r.result(dataSourceObservation{configErrs: field.ErrorList{field.Required(field.NewPath("spec", "http", "url"), "")}})
	if err == nil || !strings.Contains(err.Error(), "terminal") || res.RequeueAfter != 0 {
		t.Errorf("invalid configuration: %v %v", res, err)
	}
	if res, err := r.result(dataSourceObservation{secretProblem: "missing"}); err != nil || res.RequeueAfter != syncTenantRetry {
		t.Errorf("missing Secret: %v %v", res, err)
	}
	if res, err := r.result(dataSourceObservation{id: "x"}); err != nil || res.RequeueAfter != DefaultSyncResyncInterval {
		t.Errorf("synced: %v %v", res, err)
	}
	d := &DashboardReconciler{}
	if res, err := d.result(dashboardObservation{syncErr: fmt.Errorf("x: %w", metastore.ErrNameTaken)}); err != nil || res.RequeueAfter != syncNameTakenRetry {
		t.Errorf("name taken: %v %v", res, err)
	}
	unavailable := fromBackend(backendMetastore, context.DeadlineExceeded)
	if _, err := d.result(dashboardObservation{syncErr: unavailable}); err == nil || strings.Contains(err.Error(), "terminal") {
		t.Errorf("PostgreSQL down must be retried with backoff: %v", err)
	}
}
