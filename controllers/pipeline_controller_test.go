package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/internal/rollup"
	"github.com/shoal-dev/shoal/internal/testenv"
)

// pipelineWait is long enough for the cutoff lead, the processor check and a backfill.
const pipelineWait = 60 * time.Second

func waitPipeline(t *testing.T, ns, name, condType string, status metav1.ConditionStatus, reasons ...string) *v1alpha1.Pipeline {
	t.Helper()
	var pl *v1alpha1.Pipeline
	testenv.Eventually(t, pipelineWait, func() error {
		pl = &v1alpha1.Pipeline{}
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, pl); err != nil {
			return err
		}
		c := meta.FindStatusCondition(pl.Status.Conditions, condType)
		switch {
		case c == nil:
			return fmt.Errorf("pipeline %s has no %s condition: %+v", name, condType, pl.Status)
		case c.Status != status || !slices.Contains(reasons, c.Reason):
			return fmt.Errorf("pipeline %s: %s=%s/%s (%s), want %s/%v", name, condType, c.Status, c.Reason, c.Message, status, reasons)
		case c.ObservedGeneration != pl.Generation || pl.Status.ObservedGeneration != pl.Generation:
			return fmt.Errorf("pipeline %s: observed generation %d/%d, want %d", name, c.ObservedGeneration, pl.Status.ObservedGeneration, pl.Generation)
		}
		return nil
	})
	return pl
}

func adminConn(t *testing.T) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Dial(clickhouse.Config{Addr: backends.ClickHouse.Addr, User: backends.ClickHouse.User, Password: backends.ClickHouse.Password}, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func tableExists(t *testing.T, conn driver.Conn, db, name string) bool {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM system.tables WHERE database = ? AND name = ?", db, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// rollupCount sums a count metric over a rollup's day buckets.
func rollupCount(t *testing.T, conn driver.Conn, pl *v1alpha1.Pipeline, metric string) uint64 {
	t.Helper()
	plan, err := rollup.Compile(pl.Spec)
	if err != nil {
		t.Fatal(err)
	}
	var raw string
	if err := conn.QueryRow(context.Background(), "SELECT version()").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	v, err := clickhouse.ParseVersion(raw)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := rollup.Select(clickhouse.NewDialect(v, ""), rollup.Target{Database: pl.Status.Database, Table: pl.Status.Active.Table, View: pl.Status.Active.View},
		plan, rollup.Query{Granularity: v1alpha1.GranularityDay, Metrics: []string{metric}, From: time.Unix(0, 0), To: time.Now().Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(context.Background(), st.SQL, st.Args...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	var total uint64
	for rows.Next() {
		var bucket time.Time
		var n uint64
		if err := rows.Scan(&bucket, &n); err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

func TestPipelineBuildsBackfillsRebuildsAndDrops(t *testing.T) {
	ctx := context.Background()
	const tenant = "pipes"
	if err := env.Client.Create(ctx, sharedTenant(tenant, "free")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteTenant(t, tenant) })
	waitCondition(t, tenant, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned)

	// Events stored before the pipeline exists, over two months: the backfill's work.
	conn := adminConn(t)
	db := naming.Database(tenant)
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO `"+db+"`.`events` (`event_id`, `event_type`, `timestamp`, `received_at`, `user_id`, `session_id`, `properties`)")
	if err != nil {
		t.Fatal(err)
	}
	received := time.Now().Add(-time.Hour)
	for i := range 30 {
		ts := time.Date(2024, time.Month(3+i%2), 1+i, 12, 0, 0, 0, time.UTC)
		typ := "click"
		if i%3 == 0 {
			typ = "view" // not the pipeline's
		}
		if err := batch.Append(fmt.Sprintf("e%d", i), typ, ts, received, "u", "s", fmt.Sprintf(`{"v":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}

	ns := naming.TenantNamespace(tenant)
	pl := &v1alpha1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "clicks"},
		Spec: v1alpha1.PipelineSpec{
			Source:        v1alpha1.PipelineSource{EventTypes: []string{"click"}},
			Metrics:       []v1alpha1.Metric{{Name: "n", Type: v1alpha1.MetricCount}},
			Granularities: []v1alpha1.Granularity{v1alpha1.GranularityDay},
		},
	}
	if err := env.Client.Create(ctx, pl); err != nil {
		t.Fatal(err)
	}
	pl = waitPipeline(t, ns, "clicks", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	if !slices.Contains(pl.Finalizers, naming.PipelineFinalizer) {
		t.Errorf("finalizers %v", pl.Finalizers)
	}
	active := pl.Status.Active
	if active == nil || pl.Status.Pending != nil {
		t.Fatalf("status %+v", pl.Status)
	}
	if b := active.Backfill; b.Phase != v1alpha1.BackfillComplete || b.TotalChunks != 2 || b.CompletedChunks != 2 || b.Events != 20 || b.LastChunk != "2024-04" {
		t.Errorf("backfill %+v, want 2 of 2 chunks, 20 events, last 2024-04", b)
	}
	for _, c := range []string{v1alpha1.PipelineTableReady, v1alpha1.PipelineBackfillComplete} {
		if cond := meta.FindStatusCondition(pl.Status.Conditions, c); cond == nil || cond.Status != metav1.ConditionTrue {
			t.Errorf("%s: %+v", c, cond)
		}
	}
	if !tableExists(t, conn, db, active.Table) || !tableExists(t, conn, db, active.View) {
		t.Fatalf("table %s or view %s missing", active.Table, active.View)
	}
	if n := rollupCount(t, conn, pl, "n"); n != 20 {
		t.Errorf("rollup counts %d clicks, want 20", n)
	}
	store := metastoreClient(t)
	checkCatalog(t, store, tenant, "clicks", active.Table, "n")

	// A spec change builds a new table, backfills it, swaps it in and drops the old one.
	pl.Spec.Metrics = append(pl.Spec.Metrics, v1alpha1.Metric{Name: "total", Type: v1alpha1.MetricSum, Field: "properties.v"})
	if err := env.Client.Update(ctx, pl); err != nil {
		t.Fatal(err)
	}
	pl = waitPipeline(t, ns, "clicks", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	if pl.Status.Active.Table == active.Table || pl.Status.Active.Backfill.Events != 20 {
		t.Fatalf("after the spec change: active %+v, previous table %s", pl.Status.Active, active.Table)
	}
	if n := rollupCount(t, conn, pl, "n"); n != 20 {
		t.Errorf("rebuilt rollup counts %d clicks, want 20", n)
	}
	checkCatalog(t, store, tenant, "clicks", pl.Status.Active.Table, "n", "total")
	testenv.Eventually(t, pipelineWait, func() error {
		if tableExists(t, conn, db, active.Table) || tableExists(t, conn, db, active.View) {
			return fmt.Errorf("old table %s or view %s still exists", active.Table, active.View)
		}
		return nil
	})

	// Deletion drops the table and view, then lets the Pipeline go.
	rebuilt := pl.Status.Active
	if err := env.Client.Delete(ctx, pl); err != nil {
		t.Fatal(err)
	}
	waitGone(t, &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "clicks"}})
	if tableExists(t, conn, db, rebuilt.Table) || tableExists(t, conn, db, rebuilt.View) {
		t.Errorf("table %s or view %s survived the pipeline", rebuilt.Table, rebuilt.View)
	}
	if _, err := store.GetPipeline(ctx, tenant, "clicks"); !errors.Is(err, metastore.ErrNotFound) {
		t.Errorf("the query API's catalog still has the deleted pipeline: %v", err)
	}
}

// checkCatalog: the query API's catalog names the serving table and the spec it was
// built from.
func checkCatalog(t *testing.T, store *metastore.Store, tenant, name, table string, metrics ...string) {
	t.Helper()
	rec, err := store.GetPipeline(context.Background(), tenant, name)
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	var spec v1alpha1.PipelineSpec
	if err := json.Unmarshal(rec.Spec, &spec); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range spec.Metrics {
		got = append(got, m.Name)
	}
	if rec.RollupTable != table || !slices.Equal(got, metrics) {
		t.Errorf("catalog: table %q with metrics %v, want %q with %v", rec.RollupTable, got, table, metrics)
	}
}

func TestPipelineWaitsForItsTenant(t *testing.T) {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: naming.TenantNamespace("ghost")}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	pl := &v1alpha1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "orphan"},
		Spec: v1alpha1.PipelineSpec{
			Source:  v1alpha1.PipelineSource{EventTypes: []string{"click"}},
			Metrics: []v1alpha1.Metric{{Name: "n", Type: v1alpha1.MetricCount}},
		},
	}
	if err := env.Client.Create(ctx, pl); err != nil {
		t.Fatal(err)
	}
	got := waitPipeline(t, ns.Name, "orphan", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonTenantNotReady)
	if c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Message != "tenant ghost does not exist" {
		t.Errorf("Ready %+v", c)
	}
	// Without a tenant there is nothing to drop: deletion is not held up.
	if err := env.Client.Delete(ctx, pl); err != nil {
		t.Fatal(err)
	}
	waitGone(t, &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "orphan"}})
	_ = env.Client.Delete(ctx, ns)
}
