package controllers

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/billing"
	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/kafka"
	"github.com/shoal-dev/shoal/internal/lake"
	"github.com/shoal-dev/shoal/internal/metastore"
)

// Backends are the systems outside the API server a tenant is provisioned in. Each is
// the small interface the reconciler needs, satisfied by the adapter in internal/.
type Backends struct {
	// Topics provisions the tenant topics (direct or strimzi mode).
	Topics kafka.Provisioner
	// ClickHouse is the shared cluster Shared tenants get a database on.
	ClickHouse TenantDatabases
	// Dedicated connects to a Dedicated tenant's own installation once it is up.
	Dedicated DedicatedConnector
	// Lake holds the tenant prefixes.
	Lake TenantLake
	// Metastore holds tenant rows, owners and ingest key hashes.
	Metastore TenantStore
	// Billing manages Stripe subscriptions; when it is not enabled billing is off.
	Billing Subscriptions
	// Catalog is where the Pipeline controller publishes pipelines for the query API.
	Catalog PipelineCatalog
	// Dashboards and DataSources are where Dashboard and DataSource objects are synced.
	Dashboards  DashboardStore
	DataSources DataSourceStore
}

// TenantDatabases creates, checks, exports and drops tenant databases on one ClickHouse.
type TenantDatabases interface {
	EnsureTenantDatabase(ctx context.Context, spec clickhouse.TenantDB) error
	DatabaseStatus(ctx context.Context, db string) (exists, eventsTable bool, err error)
	DropTenantDatabase(ctx context.Context, spec clickhouse.TenantDB) error
	ExportTable(ctx context.Context, db, table string, w io.Writer) (int64, error)
}

// DedicatedDatabases is a connection to a Dedicated tenant's installation.
type DedicatedDatabases interface {
	TenantDatabases
	io.Closer
}

// DedicatedConnector opens a connection to a Dedicated tenant's installation.
type DedicatedConnector func(ctx context.Context, cfg clickhouse.Config) (DedicatedDatabases, error)

// ConnectClickHouse is the DedicatedConnector of real installations.
func ConnectClickHouse(ctx context.Context, cfg clickhouse.Config) (DedicatedDatabases, error) {
	return clickhouse.New(ctx, cfg)
}

// TenantLake manages tenant prefixes in the lake bucket and takes archives.
type TenantLake interface {
	Bucket() string
	EnsureBucket(ctx context.Context) error
	EnsureLifecycle(ctx context.Context) (bool, error)
	EnsureTenantPrefix(ctx context.Context, class v1alpha1.LakeClass, tenant string) (string, error)
	TenantPrefixExists(ctx context.Context, prefix string) (bool, error)
	DeleteTenantPrefix(ctx context.Context, prefix string) (int, error)
	PutStream(ctx context.Context, key string, r io.Reader, contentType string) (int64, error)
	PutObject(ctx context.Context, key string, body []byte, contentType string) error
}

// TenantStore is the metastore as the reconciler uses it.
type TenantStore interface {
	UpsertTenant(ctx context.Context, rec metastore.TenantRecord) error
	EnsureOwners(ctx context.Context, tenantID string, emails []string) error
	EnsureIngestKey(ctx context.Context, tenantID, existingPlaintext string) (string, bool, error)
	MarkTenantDeleted(ctx context.Context, id string) error
	DeleteTenant(ctx context.Context, id string) error
	SetTenantBilling(ctx context.Context, id string, b metastore.TenantBilling) error
}

// Subscriptions is Stripe as the reconciler uses it.
type Subscriptions interface {
	Enabled() bool
	EnsureSubscription(ctx context.Context, c billing.Customer, plan string, ids billing.IDs) (billing.State, error)
	CancelSubscription(ctx context.Context, subscriptionID string) error
}

// Backend names, as conditions and events show them.
const (
	backendKafka      = "Kafka"
	backendClickHouse = "ClickHouse"
	backendLake       = "S3"
	backendMetastore  = "PostgreSQL"
	backendStripe     = "Stripe"
	backendKubernetes = "Kubernetes"
)

// backendError is a failed call to a backend, named so conditions say which backend
// failed and whether waiting for it will help.
type backendError struct {
	backend string
	// unavailable: the backend could not be reached or timed out; the same call is
	// expected to work once it is back.
	unavailable bool
	err         error
}

func (e *backendError) Error() string {
	if e.unavailable {
		return fmt.Sprintf("%s unavailable: %v", e.backend, e.err)
	}
	return fmt.Sprintf("%s: %v", e.backend, e.err)
}

func (e *backendError) Unwrap() error { return e.err }

// isUnavailable asks the backend's adapter whether err means it is unreachable.
func isUnavailable(backend string, err error) bool {
	switch backend {
	case backendKafka:
		return kafka.IsUnavailable(err)
	case backendClickHouse:
		return clickhouse.IsUnavailable(err)
	case backendLake:
		return lake.IsUnavailable(err)
	case backendMetastore:
		return metastore.IsUnavailable(err)
	case backendStripe:
		return billing.IsUnavailable(err)
	}
	return false
}

// fromBackend wraps err as a failure of backend; nil stays nil.
func fromBackend(backend string, err error) error {
	if err == nil {
		return nil
	}
	var be *backendError
	if errors.As(err, &be) {
		return err
	}
	unavailable := errors.Is(err, context.DeadlineExceeded) || isUnavailable(backend, err)
	return &backendError{backend: backend, unavailable: unavailable, err: err}
}

// failureReason is the condition reason of a phase that failed with err.
func failureReason(err error) string {
	var be *backendError
	if errors.As(err, &be) && be.unavailable {
		return v1alpha1.ReasonBackendUnavailable
	}
	return v1alpha1.ReasonBackendError
}
