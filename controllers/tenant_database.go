package controllers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/controllers/objects"
	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/naming"
)

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=clickhouse.altinity.com,resources=clickhouseinstallations,verbs=get;list;watch;create;update;patch;delete

// reconcileDatabase gives a Shared tenant its database, tables and user on the shared
// cluster, and a Dedicated tenant its own installation with the database on it once the
// installation is up. Dropped tables and deleted users come back.
func (r *TenantReconciler) reconcileDatabase(ctx context.Context, s *tenantScope) (reconcile.Result, error) {
	t := s.tenant
	if t.Spec.Isolation == v1alpha1.IsolationDedicated {
		return r.reconcileDedicatedDatabase(ctx, s)
	}
	creds, rewritten, err := r.clickHouseCredentials(ctx, t, naming.ClickHouseUser(t.Name), r.Platform.ClickHouse.Addr)
	// A rewritten Secret holds a new password the user must get at once.
	if err == nil && !rewritten && r.checkedRecently(t, v1alpha1.TenantDatabaseReady, "") {
		return reconcile.Result{}, nil
	}
	if err == nil {
		err = fromBackend(backendClickHouse, r.Backends.ClickHouse.EnsureTenantDatabase(ctx, tenantDB(t, creds)))
	}
	t.Status.Database = databaseStatus(t, creds)
	setDatabaseReadyCondition(t, databaseObservation{ready: err == nil, address: creds.Address}, err)
	if err == nil {
		r.checkPassed(t, v1alpha1.TenantDatabaseReady, "")
	}
	return reconcile.Result{}, err
}

// reconcileDedicatedDatabase applies the tenant's ClickHouseInstallation and, once the
// Altinity operator reports it Completed, creates the database on it.
func (r *TenantReconciler) reconcileDedicatedDatabase(ctx context.Context, s *tenantScope) (reconcile.Result, error) {
	t := s.tenant
	obs := databaseObservation{dedicated: true}
	// The password must exist before the installation refers to it.
	creds, _, err := r.clickHouseCredentials(ctx, t, naming.DedicatedClickHouseUser, "")
	if err == nil {
		err = apply(ctx, r.Client, objects.ClickHouseInstallation(t))
	}
	var chi *unstructured.Unstructured
	if err == nil {
		chi, err = r.readInstallation(ctx, t)
	}
	if err == nil {
		obs.installationDone, obs.installationStatus = objects.ClickHouseInstallationCompleted(chi)
		obs.address = objects.ClickHouseInstallationAddress(chi)
		if obs.address != creds.Address {
			creds.Address = obs.address
			err = r.applyClickHouseSecret(ctx, t, creds)
		}
	}
	if err == nil && obs.installationDone && obs.address != "" {
		err = r.withDedicated(ctx, creds, func(db TenantDatabases) error {
			return db.EnsureTenantDatabase(ctx, tenantDB(t, creds))
		})
		obs.ready = err == nil
	}
	t.Status.Database = databaseStatus(t, creds)
	setDatabaseReadyCondition(t, obs, err)
	if err == nil && !obs.ready {
		return reconcile.Result{RequeueAfter: inProgressRetry}, nil
	}
	return reconcile.Result{}, err
}

func (r *TenantReconciler) readInstallation(ctx context.Context, t *v1alpha1.Tenant) (*unstructured.Unstructured, error) {
	chi := &unstructured.Unstructured{}
	chi.SetGroupVersionKind(objects.ClickHouseInstallationGVK)
	key := types.NamespacedName{Namespace: naming.TenantNamespace(t.Name), Name: naming.ClickHouseInstallation}
	if err := r.Client.Get(ctx, key, chi); err != nil {
		return nil, fmt.Errorf("reading ClickHouseInstallation %s: %w", key, err)
	}
	return chi, nil
}

// withDedicated runs fn on a connection to a Dedicated tenant's installation.
func (r *TenantReconciler) withDedicated(ctx context.Context, creds objects.ClickHouseCredentials, fn func(TenantDatabases) error) error {
	cfg := clickhouse.Config{
		Addr:        creds.Address,
		User:        creds.User,
		Password:    creds.Password,
		DialTimeout: r.Platform.ClickHouse.DialTimeout,
	}
	db, err := r.Backends.Dedicated(ctx, cfg)
	if err != nil {
		return fromBackend(backendClickHouse, err)
	}
	defer func() { _ = db.Close() }()
	return fromBackend(backendClickHouse, fn(db))
}

// tenantDB is the database a tenant gets. A Dedicated tenant's user is defined by its
// installation, so none is created.
func tenantDB(t *v1alpha1.Tenant, creds objects.ClickHouseCredentials) clickhouse.TenantDB {
	db := clickhouse.TenantDB{
		Database:      naming.Database(t.Name),
		RetentionDays: int(t.Spec.Retention.RawEventsDays),
	}
	if isolation(t) != v1alpha1.IsolationDedicated {
		db.User, db.Password = creds.User, creds.Password
	}
	return db
}

func databaseStatus(t *v1alpha1.Tenant, creds objects.ClickHouseCredentials) *v1alpha1.DatabaseStatus {
	return &v1alpha1.DatabaseStatus{
		Name:              naming.Database(t.Name),
		User:              creds.User,
		Address:           creds.Address,
		CredentialsSecret: naming.ClickHouseSecret(t.Name),
	}
}

// clickHouseCredentials returns the tenant's ClickHouse credentials, keeping the password
// of its Secret and minting one when there is none, and (re)writes the Secret when it
// differs, saying so. The Secret is written before the password is used, so a crash in
// between cannot lose it.
func (r *TenantReconciler) clickHouseCredentials(ctx context.Context, t *v1alpha1.Tenant, user, address string) (objects.ClickHouseCredentials, bool, error) {
	creds := objects.ClickHouseCredentials{User: user, Database: naming.Database(t.Name), Address: address}
	data, err := r.secretData(ctx, t, naming.ClickHouseSecret(t.Name))
	if err != nil {
		return creds, false, err
	}
	creds.Password = string(data[objects.ClickHouseSecretPassword])
	if creds.Password == "" {
		if creds.Password, err = newPassword(); err != nil {
			return creds, false, err
		}
	}
	if creds.Address == "" {
		creds.Address = string(data[objects.ClickHouseSecretAddress])
	}
	if data == nil || string(data[objects.ClickHouseSecretUser]) != creds.User ||
		string(data[objects.ClickHouseSecretPassword]) != creds.Password ||
		string(data[objects.ClickHouseSecretDatabase]) != creds.Database ||
		string(data[objects.ClickHouseSecretAddress]) != creds.Address {
		return creds, true, r.applyClickHouseSecret(ctx, t, creds)
	}
	return creds, false, nil
}

func (r *TenantReconciler) applyClickHouseSecret(ctx context.Context, t *v1alpha1.Tenant, creds objects.ClickHouseCredentials) error {
	return fromBackend(backendKubernetes, apply(ctx, r.Client, objects.ClickHouseSecret(t, creds)))
}

// secretData reads a Secret of the tenant namespace; nil data when it does not exist.
func (r *TenantReconciler) secretData(ctx context.Context, t *v1alpha1.Tenant, name string) (map[string][]byte, error) {
	secret := &corev1.Secret{}
	key := types.NamespacedName{Namespace: naming.TenantNamespace(t.Name), Name: name}
	err := r.Client.Get(ctx, key, secret)
	if apierrors.IsNotFound(err) && r.APIReader != nil {
		err = r.APIReader.Get(ctx, key, secret)
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fromBackend(backendKubernetes, fmt.Errorf("reading Secret %s: %w", key, err))
	}
	return secret.Data, nil
}

// newPassword is 32 random bytes, URL-safe base64 encoded.
func newPassword() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
