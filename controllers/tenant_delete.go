package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/controllers/objects"
	"github.com/shoal-dev/shoal/internal/archive"
	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/naming"
)

// cleanupStep is one step of a tenant's deletion before its namespace goes. Each is
// idempotent: a failed deletion runs them all again.
type cleanupStep func(ctx context.Context, t *v1alpha1.Tenant) error

// cleanUp runs the deletion steps in order and stops at the first failure: the data
// must be archived before it is dropped, and the metadata goes last so the runtime keeps
// refusing the tenant's keys until then.
func (r *TenantReconciler) cleanUp(ctx context.Context, t *v1alpha1.Tenant) error {
	for _, step := range []cleanupStep{r.cancelSubscription, r.releaseData, r.releaseMetadata} {
		if err := step(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// cancelSubscription stops billing a deleted tenant.
func (r *TenantReconciler) cancelSubscription(ctx context.Context, t *v1alpha1.Tenant) error {
	b := t.Status.Billing
	if !r.billingEnabled() || b == nil || b.SubscriptionID == "" || b.State == "canceled" {
		return nil
	}
	if err := r.Backends.Billing.CancelSubscription(ctx, b.SubscriptionID); err != nil {
		return fmt.Errorf("canceling the subscription: %w", fromBackend(backendStripe, err))
	}
	b.State = "canceled"
	return nil
}

// releaseData keeps, archives or drops the tenant's topic, database and lake data, once:
// DataReleased records that it happened, so a later failure does not archive twice.
func (r *TenantReconciler) releaseData(ctx context.Context, t *v1alpha1.Tenant) error {
	if meta.IsStatusConditionTrue(t.Status.Conditions, v1alpha1.TenantDataReleased) {
		return nil
	}
	var (
		reason string
		done   []string
		err    error
	)
	switch deletionPolicy(t) {
	case v1alpha1.DeletionArchive:
		reason = v1alpha1.ReasonDataArchived
		var m archive.Manifest
		if m, err = r.archiveDatabase(ctx, t); err == nil {
			done = append(done, archiveSummary(m, r.Backends.Lake.Bucket(), naming.LakePrefix(string(lakeClass(t)), t.Name)))
			done, err = r.dropTopicAndDatabase(ctx, t, done)
		}
	case v1alpha1.DeletionDelete:
		reason = v1alpha1.ReasonDataDeleted
		if done, err = r.dropTopicAndDatabase(ctx, t, nil); err == nil {
			done, err = r.dropLakePrefix(ctx, t, done)
		}
	default:
		reason = v1alpha1.ReasonDataRetained
		done = retainedSummary(t)
	}
	if err != nil {
		return err
	}
	setCondition(&t.Status.Conditions, t.Generation, v1alpha1.TenantDataReleased, metav1.ConditionTrue, reason, strings.Join(done, "; "))
	return nil
}

// archiveDatabase exports the tenant's tables to its lake prefix. A database that was
// never created has nothing to archive.
func (r *TenantReconciler) archiveDatabase(ctx context.Context, t *v1alpha1.Tenant) (archive.Manifest, error) {
	prefix := naming.LakePrefix(string(lakeClass(t)), t.Name)
	var m archive.Manifest
	run := func(db TenantDatabases) error {
		exists, _, err := db.DatabaseStatus(ctx, naming.Database(t.Name))
		if err != nil || !exists {
			return err
		}
		// The deletion time names the archive, so a retry overwrites a partial one.
		m, err = archive.Tenant(ctx, db, r.Backends.Lake, naming.Database(t.Name), prefix, t.DeletionTimestamp.Time)
		return err
	}
	var err error
	if isolation(t) == v1alpha1.IsolationDedicated {
		err = r.onDedicated(ctx, t, run)
	} else {
		err = fromBackend(backendClickHouse, run(r.Backends.ClickHouse))
	}
	if err != nil {
		return m, fmt.Errorf("archiving database %s to the lake: %w", naming.Database(t.Name), classifyArchive(err))
	}
	return m, nil
}

// onDedicated runs fn on a Dedicated tenant's installation, if it ever came up.
func (r *TenantReconciler) onDedicated(ctx context.Context, t *v1alpha1.Tenant, fn func(TenantDatabases) error) error {
	data, err := r.secretData(ctx, t, naming.ClickHouseSecret(t.Name))
	if err != nil {
		return err
	}
	creds := objects.ClickHouseCredentials{
		User:     string(data[objects.ClickHouseSecretUser]),
		Password: string(data[objects.ClickHouseSecretPassword]),
		Address:  string(data[objects.ClickHouseSecretAddress]),
	}
	if creds.Address == "" {
		return nil
	}
	return r.withDedicated(ctx, creds, fn)
}

// classifyArchive names the backend an archive failure came from.
func classifyArchive(err error) error {
	var be *backendError
	if errors.As(err, &be) {
		return err
	}
	if clickhouse.IsUnavailable(err) {
		return fromBackend(backendClickHouse, err)
	}
	return fromBackend(backendLake, err)
}

// dropTopicAndDatabase drops the tenant's topic and its database on the shared cluster
// (a Dedicated installation goes with the namespace).
func (r *TenantReconciler) dropTopicAndDatabase(ctx context.Context, t *v1alpha1.Tenant, done []string) ([]string, error) {
	topic := naming.Topic(t.Name)
	if err := r.Backends.Topics.Delete(ctx, topic); err != nil {
		return done, fmt.Errorf("deleting topic %s: %w", topic, fromBackend(backendKafka, err))
	}
	done = append(done, "deleted topic "+topic)
	db := naming.Database(t.Name)
	if isolation(t) == v1alpha1.IsolationDedicated {
		return append(done, "database "+db+" goes with its installation in namespace "+naming.TenantNamespace(t.Name)), nil
	}
	spec := clickhouse.TenantDB{Database: db, User: naming.ClickHouseUser(t.Name)}
	if err := r.Backends.ClickHouse.DropTenantDatabase(ctx, spec); err != nil {
		return done, fmt.Errorf("dropping database %s: %w", db, fromBackend(backendClickHouse, err))
	}
	return append(done, "dropped database "+db), nil
}

func (r *TenantReconciler) dropLakePrefix(ctx context.Context, t *v1alpha1.Tenant, done []string) ([]string, error) {
	prefix := naming.LakePrefix(string(lakeClass(t)), t.Name)
	n, err := r.Backends.Lake.DeleteTenantPrefix(ctx, prefix)
	if err != nil {
		return done, fmt.Errorf("deleting lake prefix %s: %w", prefix, fromBackend(backendLake, err))
	}
	return append(done, fmt.Sprintf("deleted %d objects under s3://%s/%s", n, r.Backends.Lake.Bucket(), prefix)), nil
}

// releaseMetadata removes the tenant's metastore row when its data is gone, and
// otherwise marks it deleted, so its keys stop working and the kept data stays findable.
func (r *TenantReconciler) releaseMetadata(ctx context.Context, t *v1alpha1.Tenant) error {
	var err error
	if deletionPolicy(t) == v1alpha1.DeletionDelete {
		err = r.Backends.Metastore.DeleteTenant(ctx, t.Name)
	} else {
		err = r.Backends.Metastore.MarkTenantDeleted(ctx, t.Name)
		if errors.Is(err, metastore.ErrNotFound) {
			err = nil // never got that far
		}
	}
	if err != nil {
		return fmt.Errorf("releasing the tenant's metadata: %w", fromBackend(backendMetastore, err))
	}
	return nil
}

func deletionPolicy(t *v1alpha1.Tenant) v1alpha1.DeletionPolicy {
	if t.Spec.DeletionPolicy == "" {
		return v1alpha1.DeletionRetain
	}
	return t.Spec.DeletionPolicy
}

// retainedSummary says where a retained tenant's data stays.
func retainedSummary(t *v1alpha1.Tenant) []string {
	kept := []string{"kept topic " + naming.Topic(t.Name)}
	db := "kept database " + naming.Database(t.Name)
	if d := t.Status.Database; d != nil && d.Address != "" {
		db += " on " + d.Address
	}
	if isolation(t) == v1alpha1.IsolationDedicated {
		db += " in namespace " + naming.TenantNamespace(t.Name) + ", which is kept"
	}
	kept = append(kept, db)
	if s := t.Status.Storage; s != nil {
		kept = append(kept, fmt.Sprintf("kept lake data under s3://%s/%s", s.Bucket, s.Prefix))
	}
	return kept
}

func archiveSummary(m archive.Manifest, bucket, prefix string) string {
	if len(m.Tables) == 0 {
		return "nothing to archive: the database was never created"
	}
	var rows int64
	for _, tbl := range m.Tables {
		rows += tbl.Rows
	}
	return fmt.Sprintf("archived %d rows to s3://%s/%s", rows, bucket, archive.Dir(prefix, m.Time))
}
