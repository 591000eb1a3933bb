package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/controllers/objects"
	"github.com/shoal-dev/shoal/internal/archive"
	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/lake"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/internal/testenv"
)

// The helpers below look at the backends directly, through clients of their own, so a
// test checks what really exists rather than what the reconciler believes.

func kafkaAdmin(t *testing.T) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(backends.Kafka.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func topicExists(ctx context.Context, adm *kadm.Client, topic string) (bool, error) {
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return false, err
	}
	d, ok := details[topic]
	return ok && d.Err == nil, nil
}

func clickHouseAdmin(t *testing.T) *clickhouse.Client {
	t.Helper()
	c, err := clickhouse.New(context.Background(), reconciler.Platform.ClickHouse)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func lakeClient(t *testing.T) *lake.Lake {
	t.Helper()
	l, err := lake.New(context.Background(), reconciler.Platform.Lake)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func metastoreClient(t *testing.T) *metastore.Store {
	t.Helper()
	s, err := metastore.Open(context.Background(), reconciler.Platform.Metastore)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func secretValue(ctx context.Context, tenant, name, key string) (string, error) {
	s := &corev1.Secret{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: naming.TenantNamespace(tenant), Name: name}, s); err != nil {
		return "", err
	}
	return string(s.Data[key]), nil
}

// tenantConn logs in as the tenant's own ClickHouse user, with the password from its
// Secret.
func tenantConn(t *testing.T, tenant string) ch.Conn {
	t.Helper()
	ctx := context.Background()
	password, err := secretValue(ctx, tenant, naming.ClickHouseSecret(tenant), objects.ClickHouseSecretPassword)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ch.Open(&ch.Options{Addr: []string{backends.ClickHouse.Addr}, Auth: ch.Auth{
		Database: naming.Database(tenant), Username: naming.ClickHouseUser(tenant), Password: password,
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// insertEvents writes n events into the tenant's table as its own user.
func insertEvents(t *testing.T, tenant string, n int) {
	t.Helper()
	insertEventsAs(t, tenantConn(t, tenant), tenant, n)
}

func insertEventsAs(t *testing.T, conn ch.Conn, tenant string, n int) {
	t.Helper()
	testenv.Eventually(t, waitTimeout, func() error {
		// The server picks up the tenant's users.d file within a few seconds.
		return conn.Ping(context.Background())
	})
	batch, err := conn.PrepareBatch(context.Background(), "INSERT INTO events (event_id, event_type, timestamp, received_at, user_id, session_id, properties)")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	for i := range n {
		if err := batch.Append(fmt.Sprintf("%s-%d", tenant, i), "page_view", now, now, "u", "s", "{}"); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
}

func TestSharedTenantProvisionsEveryBackend(t *testing.T) {
	ctx := context.Background()
	tenant := sharedTenant("full", "team")
	tenant.Spec.Owners = []string{"ada@full.example", "bob@full.example"}
	if err := env.Client.Create(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	defer deleteTenant(t, "full")
	got := waitCondition(t, "full", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)

	t.Run("status", func(t *testing.T) {
		st := got.Status
		if st.Topic == nil || st.Topic.Name != "shoal-events-full" || st.Topic.Partitions != 3 {
			t.Errorf("status.topic = %+v", st.Topic)
		}
		if st.Database == nil || st.Database.Name != "tenant_full" || st.Database.User != "tenant_full" ||
			st.Database.Address != backends.ClickHouse.Addr || st.Database.CredentialsSecret != "full-clickhouse" {
			t.Errorf("status.database = %+v", st.Database)
		}
		if st.Storage == nil || st.Storage.Bucket != reconciler.Platform.Lake.Bucket || st.Storage.Prefix != "standard/tenant=full/" {
			t.Errorf("status.storage = %+v", st.Storage)
		}
		if st.IngestKeySecret != "full-ingest-key" {
			t.Errorf("status.ingestKeySecret = %q", st.IngestKeySecret)
		}
		if st.Endpoints == nil || st.Endpoints.Ingest != "http://shoal-ingest.shoal-system.svc" {
			t.Errorf("status.endpoints = %+v", st.Endpoints)
		}
		if b := st.Billing; b == nil || !strings.HasPrefix(b.CustomerID, "cus_") || !strings.HasPrefix(b.SubscriptionID, "sub_") || b.State == "" {
			t.Errorf("status.billing = %+v", b)
		}
		for _, ct := range tenantPhaseConditions() {
			if !meta.IsStatusConditionTrue(st.Conditions, ct) {
				t.Errorf("%s is not True: %+v", ct, meta.FindStatusCondition(st.Conditions, ct))
			}
		}
		if meta.IsStatusConditionTrue(st.Conditions, v1alpha1.TenantSuspended) {
			t.Error("a new tenant is suspended")
		}
	})
	t.Run("topic", func(t *testing.T) {
		ok, err := topicExists(ctx, kafkaAdmin(t), "shoal-events-full")
		if err != nil || !ok {
			t.Errorf("topic shoal-events-full exists=%v err=%v", ok, err)
		}
	})
	t.Run("database and user", func(t *testing.T) {
		exists, table, err := clickHouseAdmin(t).DatabaseStatus(ctx, "tenant_full")
		if err != nil || !exists || !table {
			t.Fatalf("database exists=%v events=%v err=%v", exists, table, err)
		}
		insertEvents(t, "full", 3)
	})
	t.Run("lake prefix", func(t *testing.T) {
		ok, err := lakeClient(t).TenantPrefixExists(ctx, "standard/tenant=full/")
		if err != nil || !ok {
			t.Errorf("prefix exists=%v err=%v", ok, err)
		}
	})
	t.Run("metadata", func(t *testing.T) {
		store := metastoreClient(t)
		rec, err := store.GetTenant(ctx, "full")
		if err != nil || rec.Plan != "team" || rec.Isolation != "Shared" || rec.Suspended {
			t.Errorf("tenant row %+v, err %v", rec, err)
		}
		key, err := secretValue(ctx, "full", "full-ingest-key", objects.IngestKeySecretKey)
		if err != nil || key == "" {
			t.Fatalf("ingest key Secret: %q, %v", key, err)
		}
		id, suspended, err := store.LookupIngestKey(ctx, key)
		if err != nil || id != "full" || suspended {
			t.Errorf("LookupIngestKey = %q, %v, %v", id, suspended, err)
		}
		// One key was ever minted: a reconcile that ran before its own Secret reached
		// the cache must not take the Secret for missing and mint (and revoke) again.
		conn, err := pgx.Connect(ctx, backends.MetastoreDSN)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close(ctx) }()
		var keys int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM api_keys WHERE tenant_id = $1", "full").Scan(&keys); err != nil || keys != 1 {
			t.Errorf("%d ingest keys minted (err %v), want 1", keys, err)
		}
	})
}

func TestBackendDriftIsRepaired(t *testing.T) {
	ctx := context.Background()
	if err := env.Client.Create(ctx, sharedTenant("drifty", "free")); err != nil {
		t.Fatal(err)
	}
	defer deleteTenant(t, "drifty")
	waitCondition(t, "drifty", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)

	t.Run("deleted topic", func(t *testing.T) {
		adm := kafkaAdmin(t)
		if _, err := adm.DeleteTopics(ctx, "shoal-events-drifty"); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, waitTimeout, func() error {
			ok, err := topicExists(ctx, adm, "shoal-events-drifty")
			if err != nil || !ok {
				return fmt.Errorf("topic not back yet (err %w)", err)
			}
			return nil
		})
	})
	t.Run("dropped table", func(t *testing.T) {
		admin, err := ch.Open(&ch.Options{Addr: []string{backends.ClickHouse.Addr}, Auth: ch.Auth{Username: backends.ClickHouse.User, Password: backends.ClickHouse.Password}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = admin.Close() }()
		if err := admin.Exec(ctx, "DROP TABLE tenant_drifty.events"); err != nil {
			t.Fatal(err)
		}
		chc := clickHouseAdmin(t)
		testenv.Eventually(t, waitTimeout, func() error {
			_, table, err := chc.DatabaseStatus(ctx, "tenant_drifty")
			if err != nil || !table {
				return fmt.Errorf("events table not back yet (err %w)", err)
			}
			return nil
		})
	})
	t.Run("dropped database", func(t *testing.T) {
		admin, err := ch.Open(&ch.Options{Addr: []string{backends.ClickHouse.Addr}, Auth: ch.Auth{Username: backends.ClickHouse.User, Password: backends.ClickHouse.Password}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = admin.Close() }()
		if err := admin.Exec(ctx, "DROP DATABASE tenant_drifty"); err != nil {
			t.Fatal(err)
		}
		chc := clickHouseAdmin(t)
		testenv.Eventually(t, waitTimeout, func() error {
			exists, table, err := chc.DatabaseStatus(ctx, "tenant_drifty")
			if err != nil || !exists || !table {
				return fmt.Errorf("database not back yet: exists=%v events=%v (err %w)", exists, table, err)
			}
			return nil
		})
	})
	t.Run("deleted key Secret", func(t *testing.T) {
		old, err := secretValue(ctx, "drifty", "drifty-ingest-key", objects.IngestKeySecretKey)
		if err != nil {
			t.Fatal(err)
		}
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-drifty", Name: "drifty-ingest-key"}}
		if err := env.Client.Delete(ctx, secret); err != nil {
			t.Fatal(err)
		}
		var fresh string
		testenv.Eventually(t, waitTimeout, func() error {
			fresh, err = secretValue(ctx, "drifty", "drifty-ingest-key", objects.IngestKeySecretKey)
			if err != nil || fresh == "" || fresh == old {
				return fmt.Errorf("no new key yet (err %w)", err)
			}
			return nil
		})
		store := metastoreClient(t)
		if id, _, err := store.LookupIngestKey(ctx, fresh); err != nil || id != "drifty" {
			t.Errorf("new key: %q, %v", id, err)
		}
		// The old plaintext may have leaked with the Secret: it must stop working.
		if _, _, err := store.LookupIngestKey(ctx, old); !errors.Is(err, metastore.ErrNotFound) {
			t.Errorf("old key still accepted: %v", err)
		}
	})
	t.Run("deleted ClickHouse Secret", func(t *testing.T) {
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-drifty", Name: "drifty-clickhouse"}}
		password, err := secretValue(ctx, "drifty", "drifty-clickhouse", objects.ClickHouseSecretPassword)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Delete(ctx, secret); err != nil {
			t.Fatal(err)
		}
		// A new password is minted and the user follows it, so the runtime never holds a
		// password ClickHouse refuses.
		testenv.Eventually(t, waitTimeout, func() error {
			got, err := secretValue(ctx, "drifty", "drifty-clickhouse", objects.ClickHouseSecretPassword)
			if err != nil || got == "" || got == password {
				return fmt.Errorf("no new password yet (err %w)", err)
			}
			return nil
		})
		insertEvents(t, "drifty", 1)
	})
}

func TestSuspensionAndResume(t *testing.T) {
	ctx := context.Background()
	if err := env.Client.Create(ctx, sharedTenant("pauser", "free")); err != nil {
		t.Fatal(err)
	}
	defer deleteTenant(t, "pauser")
	tenant := waitCondition(t, "pauser", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)
	insertEvents(t, "pauser", 5)
	store := metastoreClient(t)
	key, err := secretValue(ctx, "pauser", "pauser-ingest-key", objects.IngestKeySecretKey)
	if err != nil {
		t.Fatal(err)
	}
	suspendedInStore := func(want bool) {
		t.Helper()
		testenv.Eventually(t, waitTimeout, func() error {
			_, suspended, err := store.LookupIngestKey(ctx, key)
			if err != nil || suspended != want {
				return fmt.Errorf("metastore suspended=%v err=%w, want %v", suspended, err, want)
			}
			return nil
		})
	}

	t.Run("by spec", func(t *testing.T) {
		patch := client.MergeFrom(tenant.DeepCopy())
		tenant.Spec.Suspended = true
		if err := env.Client.Patch(ctx, tenant, patch); err != nil {
			t.Fatal(err)
		}
		waitCondition(t, "pauser", v1alpha1.TenantSuspended, metav1.ConditionTrue, v1alpha1.ReasonSuspendedBySpec)
		suspendedInStore(true)
		waitEvent(t, "pauser", v1alpha1.ReasonSuspendedBySpec, corev1.EventTypeWarning)

		tenant, err = getTenant(ctx, "pauser")
		if err != nil {
			t.Fatal(err)
		}
		patch = client.MergeFrom(tenant.DeepCopy())
		tenant.Spec.Suspended = false
		if err := env.Client.Patch(ctx, tenant, patch); err != nil {
			t.Fatal(err)
		}
		waitCondition(t, "pauser", v1alpha1.TenantSuspended, metav1.ConditionFalse, v1alpha1.ReasonActive)
		suspendedInStore(false)
	})
	t.Run("by billing", func(t *testing.T) {
		billingStates.forced.Store(string(tenant.UID), "past_due")
		got := waitCondition(t, "pauser", v1alpha1.TenantSuspended, metav1.ConditionTrue, v1alpha1.ReasonSuspendedByBilling)
		if c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.TenantSuspended); !strings.Contains(c.Message, "past_due") {
			t.Errorf("Suspended message %q does not say past_due", c.Message)
		}
		suspendedInStore(true)
		billingStates.forced.Delete(string(tenant.UID))
		waitCondition(t, "pauser", v1alpha1.TenantSuspended, metav1.ConditionFalse, v1alpha1.ReasonActive)
		suspendedInStore(false)
	})
	t.Run("no data lost", func(t *testing.T) {
		var n uint64
		if err := tenantConn(t, "pauser").QueryRow(ctx, "SELECT count() FROM events").Scan(&n); err != nil || n != 5 {
			t.Errorf("events after resume: %d, %v; want 5", n, err)
		}
	})
}

func TestBackendOutageIsReportedAndRecovered(t *testing.T) {
	ctx := context.Background()
	backends.ClickHouse.Stop()
	restarted := false
	defer func() {
		if !restarted {
			backends.ClickHouse.Restart(t)
		}
	}()
	if err := env.Client.Create(ctx, sharedTenant("outage", "free")); err != nil {
		t.Fatal(err)
	}
	defer deleteTenant(t, "outage")
	got := waitCondition(t, "outage", v1alpha1.TenantDatabaseReady, metav1.ConditionFalse, v1alpha1.ReasonBackendUnavailable)
	c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.TenantDatabaseReady)
	if !strings.Contains(c.Message, "ClickHouse unavailable") || !strings.Contains(c.Message, "retrying") {
		t.Errorf("DatabaseReady message %q does not name ClickHouse", c.Message)
	}
	// The other backends are provisioned meanwhile; the runtime waits for the database.
	for _, ct := range []string{v1alpha1.TenantTopicReady, v1alpha1.TenantStorageReady, v1alpha1.TenantMetadataReady} {
		waitCondition(t, "outage", ct, metav1.ConditionTrue, v1alpha1.ReasonTopicReady, v1alpha1.ReasonPrefixReady, v1alpha1.ReasonMetadataStored)
	}
	waitCondition(t, "outage", v1alpha1.TenantRuntimeReady, metav1.ConditionFalse, v1alpha1.ReasonWaiting)
	ready := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionFalse || !strings.Contains(ready.Message, "ClickHouse unavailable") {
		t.Errorf("Ready = %+v, want False naming ClickHouse", ready)
	}

	backends.ClickHouse.Restart(t)
	restarted = true
	waitCondition(t, "outage", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)
}

// TestStripeOutageBreaksOnlyBilling: the tenant is provisioned and served while Stripe is
// down; only BillingReady (and so Ready) says so, and both recover.
func TestStripeOutageBreaksOnlyBilling(t *testing.T) {
	ctx := context.Background()
	if err := env.Client.Create(ctx, sharedTenant("unbilled", "team")); err != nil {
		t.Fatal(err)
	}
	defer deleteTenant(t, "unbilled")
	tenant, err := getTenant(ctx, "unbilled")
	if err != nil {
		t.Fatal(err)
	}
	// A timeout, as a request to an unreachable Stripe ends; the billing adapter's own
	// tests check that a stopped server counts as unavailable.
	billingStates.down.Store(string(tenant.UID), fmt.Errorf("request to Stripe: %w", context.DeadlineExceeded))
	got := waitCondition(t, "unbilled", v1alpha1.TenantBillingReady, metav1.ConditionFalse, v1alpha1.ReasonBackendUnavailable)
	for _, ct := range []string{v1alpha1.TenantTopicReady, v1alpha1.TenantDatabaseReady, v1alpha1.TenantStorageReady, v1alpha1.TenantMetadataReady, v1alpha1.TenantRuntimeReady} {
		if !meta.IsStatusConditionTrue(got.Status.Conditions, ct) {
			t.Errorf("%s is not True while only Stripe is down: %+v", ct, meta.FindStatusCondition(got.Status.Conditions, ct))
		}
	}
	if c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.TenantBillingReady); !strings.Contains(c.Message, "Stripe unavailable") {
		t.Errorf("BillingReady message %q does not name Stripe", c.Message)
	}
	billingStates.down.Delete(string(tenant.UID))
	waitCondition(t, "unbilled", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)
}

func TestDeletionPolicies(t *testing.T) {
	ctx := context.Background()
	adm := kafkaAdmin(t)
	chc := clickHouseAdmin(t)
	lk := lakeClient(t)
	store := metastoreClient(t)
	for _, policy := range []v1alpha1.DeletionPolicy{v1alpha1.DeletionRetain, v1alpha1.DeletionArchive, v1alpha1.DeletionDelete} {
		name := "policy-" + strings.ToLower(string(policy))
		t.Run(string(policy), func(t *testing.T) {
			tenant := sharedTenant(name, "free")
			tenant.Spec.DeletionPolicy = policy
			if err := env.Client.Create(ctx, tenant); err != nil {
				t.Fatal(err)
			}
			waitCondition(t, name, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)
			insertEvents(t, name, 7)
			prefix := naming.LakePrefix(string(v1alpha1.LakeStandard), name)
			deleteTenant(t, name)

			topic, _ := topicExists(ctx, adm, naming.Topic(name))
			db, _, err := chc.DatabaseStatus(ctx, naming.Database(name))
			if err != nil {
				t.Fatal(err)
			}
			marker, err := lk.TenantPrefixExists(ctx, prefix)
			if err != nil {
				t.Fatal(err)
			}
			rec, rowErr := store.GetTenant(ctx, name)
			switch policy {
			case v1alpha1.DeletionRetain:
				if !topic || !db || !marker {
					t.Errorf("retained: topic=%v database=%v prefix=%v, want all kept", topic, db, marker)
				}
				if rowErr != nil || rec.DeletedAt == nil {
					t.Errorf("retained tenant row %+v, %v: want marked deleted", rec, rowErr)
				}
				waitEventMessage(t, name, v1alpha1.ReasonDataRetained, "kept topic "+naming.Topic(name))
			case v1alpha1.DeletionArchive:
				if topic || db || !marker {
					t.Errorf("archived: topic=%v database=%v prefix=%v, want topic and database gone, prefix kept", topic, db, marker)
				}
				if rowErr != nil || rec.DeletedAt == nil {
					t.Errorf("archived tenant row %+v, %v: want marked deleted", rec, rowErr)
				}
				checkArchive(t, lk, name, 7)
			case v1alpha1.DeletionDelete:
				if topic || db || marker {
					t.Errorf("deleted: topic=%v database=%v prefix=%v, want all gone", topic, db, marker)
				}
				if !errors.Is(rowErr, metastore.ErrNotFound) {
					t.Errorf("deleted tenant row: %v, want ErrNotFound", rowErr)
				}
			}
		})
	}
}

// TestDeletionWaitsForABackend: a Delete-policy tenant whose ClickHouse is down keeps its
// finalizer, says which backend holds it, and finishes once ClickHouse is back.
func TestDeletionWaitsForABackend(t *testing.T) {
	ctx := context.Background()
	tenant := sharedTenant("hold-on", "free")
	tenant.Spec.DeletionPolicy = v1alpha1.DeletionDelete
	if err := env.Client.Create(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, "hold-on", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)
	backends.ClickHouse.Stop()
	restarted := false
	defer func() {
		if !restarted {
			backends.ClickHouse.Restart(t)
		}
	}()
	if err := env.Client.Delete(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	// The suite's deletion timeout is short, so the wait turns into DeletionStuck.
	got := waitCondition(t, "hold-on", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeletionStuck)
	c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
	for _, want := range []string{"dropping database tenant_hold_on", "ClickHouse unavailable", "set spec.deletionPolicy to Retain"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("Ready message %q lacks %q", c.Message, want)
		}
	}
	ns := &corev1.Namespace{}
	if err := env.Client.Get(ctx, types.NamespacedName{Name: "tenant-hold-on"}, ns); err != nil || ns.DeletionTimestamp != nil {
		t.Errorf("the namespace went before the data: %v", err)
	}
	backends.ClickHouse.Restart(t)
	restarted = true
	waitGone(t, tenant)
	if exists, _, err := clickHouseAdmin(t).DatabaseStatus(ctx, "tenant_hold_on"); err != nil || exists {
		t.Errorf("database still there after the deletion: exists=%v err=%v", exists, err)
	}
}

// checkArchive reads the manifest of the archive the tenant's deletion event names and
// checks its event count.
func checkArchive(t *testing.T, lk *lake.Lake, tenant string, events int64) {
	t.Helper()
	note := waitEventMessage(t, tenant, v1alpha1.ReasonDataArchived, fmt.Sprintf("archived %d rows to s3://", events))
	_, dir, _ := strings.Cut(note, "s3://"+lk.Bucket()+"/")
	dir, _, _ = strings.Cut(dir, ";")
	data, err := lk.GetObject(context.Background(), dir+archive.ManifestName)
	if err != nil {
		t.Fatalf("reading the manifest of %q: %v", dir, err)
	}
	var m archive.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Tables) == 0 || m.Tables[0].Name != clickhouse.EventsTable || m.Tables[0].Rows != events {
		t.Errorf("manifest %+v, want %d events", m, events)
	}
	if _, err := lk.GetObject(context.Background(), m.Tables[0].Key); err != nil {
		t.Errorf("archived events object: %v", err)
	}
}

// waitEventMessage waits for an event about the tenant with the reason and a message
// containing want.
func waitEventMessage(t *testing.T, tenant, reason, want string) string {
	t.Helper()
	var note string
	testenv.Eventually(t, waitTimeout, func() error {
		var list eventsv1.EventList
		if err := env.Client.List(context.Background(), &list); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.Kind == "Tenant" && e.Regarding.Name == tenant && e.Reason == reason && strings.Contains(e.Note, want) {
				note = e.Note
				return nil
			}
		}
		return fmt.Errorf("no %s event for %s mentioning %q", reason, tenant, want)
	})
	return note
}

func dedicatedTenant(name string, policy v1alpha1.DeletionPolicy) *v1alpha1.Tenant {
	tenant := sharedTenant(name, "enterprise")
	tenant.Spec.Isolation = v1alpha1.IsolationDedicated
	tenant.Spec.DeletionPolicy = policy
	tenant.Spec.Dedicated = &v1alpha1.DedicatedSpec{
		ClickHouse: v1alpha1.DedicatedClickHouse{Shards: 1, Replicas: 2, Storage: resource.MustParse("50Gi")},
		Runtime:    v1alpha1.DedicatedRuntime{IngestReplicas: 2, ProcessReplicas: 3, QueryReplicas: 1},
	}
	return tenant
}

// TestDedicatedTenant provisions a Dedicated tenant end to end. The suite's stand-in
// plays the Altinity operator: it completes the installation, gives its user the
// password from the tenant's Secret, and points it at the test ClickHouse.
func TestDedicatedTenant(t *testing.T) {
	ctx := context.Background()
	if err := env.Client.Create(ctx, dedicatedTenant("whale", v1alpha1.DeletionArchive)); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, "whale", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)
	if d := got.Status.Database; d == nil || d.User != naming.DedicatedClickHouseUser || d.Address != backends.ClickHouse.Addr {
		t.Errorf("status.database = %+v", d)
	}
	if e := got.Status.Endpoints; e == nil || e.Ingest != "http://shoal-ingest.tenant-whale.svc" {
		t.Errorf("status.endpoints = %+v", e)
	}
	// The pods' platform config is in the namespace, without the operator's secrets, and
	// every Deployment carries its hash.
	doc, err := secretValue(ctx, "whale", objects.RuntimeConfigSecretName, objects.RuntimeConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	runtimeConfig, err := config.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("the runtime's platform config does not parse: %v", err)
	}
	if runtimeConfig.Kafka.Brokers[0] != testPlatform().Kafka.Brokers[0] || runtimeConfig.ClickHouse.Password != "" || runtimeConfig.Billing.SecretKey != "" {
		t.Errorf("runtime platform config: brokers %v, ClickHouse password set %v, Stripe key set %v",
			runtimeConfig.Kafka.Brokers, runtimeConfig.ClickHouse.Password != "", runtimeConfig.Billing.SecretKey != "")
	}
	for _, role := range objects.RuntimeRoles() {
		dep := &appsv1.Deployment{}
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: "tenant-whale", Name: objects.RuntimeName(role)}, dep); err != nil {
			t.Errorf("Deployment of %s: %v", role, err)
			continue
		}
		if dep.Spec.Template.Annotations[objects.ConfigHashAnnotation] == "" {
			t.Errorf("Deployment of %s has no config hash", role)
		}
	}
	if n := deploymentReplicas(t, "tenant-whale", "shoal-process"); n != 3 {
		t.Errorf("process replicas %d, want 3", n)
	}

	// The tenant's data, written as the installation's user with the Secret's password.
	password, err := secretValue(ctx, "whale", "whale-clickhouse", objects.ClickHouseSecretPassword)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ch.Open(&ch.Options{Addr: []string{backends.ClickHouse.Addr}, Auth: ch.Auth{
		Database: "tenant_whale", Username: naming.DedicatedClickHouseUser, Password: password,
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	insertEventsAs(t, conn, "whale", 2)

	t.Run("drift: a deleted Deployment comes back", func(t *testing.T) {
		dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-whale", Name: "shoal-query"}}
		if err := env.Client.Delete(ctx, dep); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, waitTimeout, func() error {
			return env.Client.Get(ctx, client.ObjectKeyFromObject(dep), dep)
		})
	})
	t.Run("archive on deletion", func(t *testing.T) {
		deleteTenant(t, "whale")
		checkArchive(t, lakeClient(t), "whale", 2)
	})
}

func deploymentReplicas(t *testing.T, namespace, name string) int32 {
	t.Helper()
	dep := &appsv1.Deployment{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: namespace, Name: name}, dep); err != nil {
		t.Fatal(err)
	}
	if dep.Spec.Replicas == nil {
		return 0
	}
	return *dep.Spec.Replicas
}

// TestDedicatedRetainKeepsNamespace: a Dedicated tenant's database lives in its
// namespace, so Retain keeps the namespace and its installation, released from the Tenant.
func TestDedicatedRetainKeepsNamespace(t *testing.T) {
	ctx := context.Background()
	if err := env.Client.Create(ctx, dedicatedTenant("keeper", v1alpha1.DeletionRetain)); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, "keeper", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)
	deleteTenant(t, "keeper")
	ns := &corev1.Namespace{}
	if err := env.Client.Get(ctx, types.NamespacedName{Name: "tenant-keeper"}, ns); err != nil {
		t.Fatalf("retained namespace: %v", err)
	}
	if len(ns.OwnerReferences) != 0 || ns.DeletionTimestamp != nil {
		t.Errorf("retained namespace still owned or deleting: %+v", ns.ObjectMeta)
	}
	chi := &unstructured.Unstructured{}
	chi.SetGroupVersionKind(objects.ClickHouseInstallationGVK)
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: "tenant-keeper", Name: naming.ClickHouseInstallation}, chi); err != nil {
		t.Errorf("retained installation: %v", err)
	}
	waitEventMessage(t, "keeper", v1alpha1.ReasonDataRetained, "in namespace tenant-keeper, which is kept")
	// The stand-in shares one server between installations: free the user for the next.
	if err := env.Client.Delete(ctx, ns); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ns)
}
