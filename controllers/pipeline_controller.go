package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/controllers/objects"
	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/kafka"
	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/internal/rollup"
)

// RollupDB is a tenant's ClickHouse as the Pipeline controller uses it; rollup.Client
// implements it.
type RollupDB interface {
	Now(ctx context.Context) (time.Time, error)
	Create(ctx context.Context, t rollup.Target, p *rollup.Plan, w rollup.Window) error
	Drop(ctx context.Context, t rollup.Target) error
	Exists(ctx context.Context, t rollup.Target) (table, view bool, err error)
	PendingChunks(ctx context.Context, database string, p *rollup.Plan, w rollup.Window, after int) ([]int, error)
	BackfillChunk(ctx context.Context, t rollup.Target, p *rollup.Plan, w rollup.Window, chunk int) (uint64, error)
}

// RollupConnector opens a RollupDB on the ClickHouse of cfg; close releases it.
type RollupConnector func(ctx context.Context, cfg clickhouse.Config) (db RollupDB, close func(), err error)

// ConnectRollups is the RollupConnector of real servers.
func ConnectRollups(ctx context.Context, cfg clickhouse.Config) (RollupDB, func(), error) {
	conn, err := clickhouse.Dial(cfg, 2)
	if err != nil {
		return nil, nil, err
	}
	c, err := rollup.NewClient(ctx, conn, cfg.Cluster)
	if err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("ClickHouse at %s: %w", cfg.Addr, err)
	}
	return c, func() { _ = conn.Close() }, nil
}

// ProcessorProgress tells whether the processor's consumer group has stored every record
// of a topic timestamped before a time; kafka.ConsumerProgress implements it.
type ProcessorProgress interface {
	PassedTime(ctx context.Context, group, topic string, at time.Time) (kafka.Progress, error)
}

// PipelineReconciler turns Pipelines into rollup tables fed by materialized views,
// backfills them, and rebuilds them when the spec changes.
type PipelineReconciler struct {
	Client    client.Client
	APIReader client.Reader
	Recorder  events.EventRecorder
	Platform  *config.Platform
	Connect   RollupConnector
	Processor ProcessorProgress
	// Catalog publishes each pipeline to the query API; nil publishes nothing.
	Catalog PipelineCatalog

	// CutoffLead puts the cutoff this far after the server's clock when a view is
	// created, so the view exists before the first event it must count is received.
	// Default 5s.
	CutoffLead time.Duration
	// ClockSkew is how far ingest's clock (received_at, Kafka timestamps) may be off the
	// ClickHouse server's: the backfill waits for the processor to pass cutoff+ClockSkew.
	// Default 10s.
	ClockSkew time.Duration
	// RetireGrace is how long a replaced rollup is kept for queries still reading it.
	// Default 1 minute.
	RetireGrace time.Duration
	// ResyncInterval is how often a serving pipeline checks its table and view exist.
	// Default 5 minutes.
	ResyncInterval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Retry intervals.
const (
	pipelineTenantRetry    = 10 * time.Second
	pipelineProcessorRetry = 5 * time.Second
	// pipelineNext continues a backfill right after the status recorded a chunk.
	pipelineNext = time.Millisecond
)

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (r *PipelineReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// +kubebuilder:rbac:groups=analytics.shoal.dev,resources=pipelines,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=analytics.shoal.dev,resources=pipelines/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=analytics.shoal.dev,resources=pipelines/finalizers,verbs=update

// Reconcile brings one Pipeline closer to its spec. It writes the status once.
func (r *PipelineReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	pl := &v1alpha1.Pipeline{}
	if err := r.Client.Get(ctx, req.NamespacedName, pl); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !pl.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, pl)
	}
	pl, err := ensureFinalizer(ctx, r.Client, pl, naming.PipelineFinalizer)
	if err != nil {
		return reconcile.Result{}, err
	}
	before := pl.DeepCopy()
	pl.Status.ObservedGeneration = pl.Generation

	obs := pipelineObservation{hash: rollup.Hash(pl.Name, pl.Spec)}
	res, err := r.reconcileRollup(ctx, pl, &obs)
	var invalid *rollup.InvalidSpecError
	if obs.tenantProblem == "" && !errors.As(err, &invalid) {
		err = errors.Join(err, r.publish(ctx, pl, obs.hash))
	}
	obs.err = err
	setPipelineConditions(pl, obs)
	if perr := r.patchStatus(ctx, before, pl); perr != nil {
		return reconcile.Result{}, perr
	}
	if errors.As(err, &invalid) {
		// Retrying cannot help; the spec change that fixes it triggers a reconcile.
		return reconcile.Result{}, reconcile.TerminalError(err)
	}
	return res, err
}

// pipelineConn is a connection to the ClickHouse holding a tenant's database.
type pipelineConn struct {
	db       RollupDB
	close    func()
	database string
	group    string
	topic    string
}

// connectTenant finds the pipeline's tenant and connects to its database. A reason in
// problem (and no error) means the tenant is not ready for rollups yet.
func (r *PipelineReconciler) connectTenant(ctx context.Context, pl *v1alpha1.Pipeline) (conn *pipelineConn, problem string, err error) {
	name, ok := naming.TenantFromNamespace(pl.Namespace)
	if !ok {
		return nil, fmt.Sprintf("namespace %s is not a tenant namespace (tenant-<name>)", pl.Namespace), nil
	}
	t := &v1alpha1.Tenant{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: name}, t); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Sprintf("tenant %s does not exist", name), nil
		}
		return nil, "", fromBackend(backendKubernetes, fmt.Errorf("reading tenant %s: %w", name, err))
	}
	if !t.DeletionTimestamp.IsZero() {
		return nil, fmt.Sprintf("tenant %s is being deleted", name), nil
	}
	c := meta.FindStatusCondition(t.Status.Conditions, v1alpha1.TenantDatabaseReady)
	if c == nil || c.Status != metav1.ConditionTrue || t.Status.Database == nil || t.Status.Database.Name == "" {
		why := "not reconciled yet"
		if c != nil {
			why = c.Message
		}
		return nil, fmt.Sprintf("the database of tenant %s is not ready: %s", name, why), nil
	}
	dedicated := isolation(t) == v1alpha1.IsolationDedicated
	cfg := r.Platform.ClickHouse
	if dedicated {
		cfg, err = r.dedicatedConfig(ctx, t)
		if err != nil {
			return nil, "", err
		}
	}
	db, closeDB, err := r.Connect(ctx, cfg)
	if err != nil {
		return nil, "", fromBackend(backendClickHouse, err)
	}
	return &pipelineConn{
		db: db, close: closeDB, database: t.Status.Database.Name,
		group: naming.ProcessorGroup(name, dedicated), topic: naming.Topic(name),
	}, "", nil
}

// dedicatedConfig is how to reach a Dedicated tenant's installation: the address in its
// status, the user and password in its ClickHouse Secret.
func (r *PipelineReconciler) dedicatedConfig(ctx context.Context, t *v1alpha1.Tenant) (clickhouse.Config, error) {
	secret := &corev1.Secret{}
	key := types.NamespacedName{Namespace: naming.TenantNamespace(t.Name), Name: naming.ClickHouseSecret(t.Name)}
	err := r.Client.Get(ctx, key, secret)
	if apierrors.IsNotFound(err) && r.APIReader != nil {
		err = r.APIReader.Get(ctx, key, secret)
	}
	if err != nil {
		return clickhouse.Config{}, fromBackend(backendKubernetes, fmt.Errorf("reading Secret %s: %w", key, err))
	}
	return clickhouse.Config{
		Addr:        t.Status.Database.Address,
		User:        string(secret.Data[objects.ClickHouseSecretUser]),
		Password:    string(secret.Data[objects.ClickHouseSecretPassword]),
		DialTimeout: r.Platform.ClickHouse.DialTimeout,
	}, nil
}

// reconcileRollup drives the rollup state machine one step: create the current spec's
// table and view (as pending), wait for the processor, backfill a chunk, swap the pending
// rollup in, drop retired ones.
func (r *PipelineReconciler) reconcileRollup(ctx context.Context, pl *v1alpha1.Pipeline, obs *pipelineObservation) (reconcile.Result, error) {
	conn, problem, err := r.connectTenant(ctx, pl)
	if err != nil || problem != "" {
		obs.tenantProblem = problem
		return reconcile.Result{RequeueAfter: pipelineTenantRetry}, err
	}
	defer conn.close()
	pl.Status.Database = conn.database

	plan, err := rollup.Compile(pl.Spec)
	if err != nil {
		return reconcile.Result{}, err
	}
	if err := r.dropRetired(ctx, pl, conn); err != nil {
		return reconcile.Result{}, err
	}
	st := &pl.Status
	if st.Pending != nil && st.Pending.SpecHash != obs.hash {
		// The spec changed again mid-build (or back to the active one): that build is
		// no one's, drop it now.
		if err := conn.db.Drop(ctx, r.target(conn, st.Pending)); err != nil {
			return reconcile.Result{}, fromBackend(backendClickHouse, err)
		}
		r.Recorder.Eventf(pl, nil, corev1.EventTypeNormal, v1alpha1.ReasonRebuilding, "DropPending", "dropped %s, built for an earlier spec", st.Pending.Table)
		st.Pending = nil
	}
	if st.Active != nil && st.Active.SpecHash == obs.hash {
		return r.checkActive(ctx, pl, conn, plan, obs)
	}
	if st.Pending == nil {
		return r.createPending(ctx, pl, conn, plan, obs)
	}
	return r.backfill(ctx, pl, conn, plan, obs)
}

func (r *PipelineReconciler) target(conn *pipelineConn, rs *v1alpha1.RollupStatus) rollup.Target {
	return rollup.Target{Database: conn.database, Table: rs.Table, View: rs.View}
}

func window(pl *v1alpha1.Pipeline, rs *v1alpha1.RollupStatus) rollup.Window {
	return rollup.WindowOf(pl.Spec, rs.Cutoff.Time)
}

// ensureObjects makes sure the table and view of a rollup exist, recreating what was
// dropped behind the operator's back (with the same cutoff; what the missing view did
// not see is lost, which the event says).
func (r *PipelineReconciler) ensureObjects(ctx context.Context, pl *v1alpha1.Pipeline, conn *pipelineConn, plan *rollup.Plan, rs *v1alpha1.RollupStatus) error {
	tgt := r.target(conn, rs)
	table, view, err := conn.db.Exists(ctx, tgt)
	if err != nil {
		return fromBackend(backendClickHouse, err)
	}
	if table && view {
		return nil
	}
	if err := conn.db.Create(ctx, tgt, plan, window(pl, rs)); err != nil {
		return fromBackend(backendClickHouse, err)
	}
	r.Recorder.Eventf(pl, nil, corev1.EventTypeWarning, "Recreated", "Drift", "table %s (existed: %v) or view %s (existed: %v) was missing and was created again; events in between may be missing", rs.Table, table, rs.View, view)
	return nil
}

// checkActive: the current spec's rollup serves; check it is still there.
func (r *PipelineReconciler) checkActive(ctx context.Context, pl *v1alpha1.Pipeline, conn *pipelineConn, plan *rollup.Plan, obs *pipelineObservation) (reconcile.Result, error) {
	if err := r.ensureObjects(ctx, pl, conn, plan, pl.Status.Active); err != nil {
		return reconcile.Result{}, err
	}
	obs.tableReady = true
	next := orDefault(r.ResyncInterval, 5*time.Minute)
	if len(pl.Status.Retired) > 0 {
		next = min(next, orDefault(r.RetireGrace, time.Minute))
	}
	return reconcile.Result{RequeueAfter: next}, nil
}

// createPending creates the table and view of the current spec, with a cutoff slightly
// in the future by the server's clock so the view exists before the cutoff is reached:
// no event can be received at or after the cutoff and be stored before the view.
func (r *PipelineReconciler) createPending(ctx context.Context, pl *v1alpha1.Pipeline, conn *pipelineConn, plan *rollup.Plan, obs *pipelineObservation) (reconcile.Result, error) {
	now, err := conn.db.Now(ctx)
	if err != nil {
		return reconcile.Result{}, fromBackend(backendClickHouse, err)
	}
	rs := &v1alpha1.RollupStatus{
		Table:         naming.PipelineTable(pl.Name, obs.hash),
		View:          naming.PipelineView(pl.Name, obs.hash),
		SpecHash:      obs.hash,
		Generation:    pl.Generation,
		Cutoff:        metav1.NewTime(now.Add(orDefault(r.CutoffLead, 5*time.Second)).Truncate(time.Second)),
		Dimensions:    plan.Dimensions(),
		Metrics:       plan.Metrics(),
		Granularities: plan.Granularities(),
		Backfill:      v1alpha1.BackfillStatus{Phase: v1alpha1.BackfillWaitingForProcessor},
	}
	w := window(pl, rs)
	if !w.Backfill {
		rs.Backfill.Phase = v1alpha1.BackfillDisabled
	}
	tgt := r.target(conn, rs)
	if err := conn.db.Create(ctx, tgt, plan, w); err != nil {
		return reconcile.Result{}, fromBackend(backendClickHouse, err)
	}
	after, err := conn.db.Now(ctx)
	if err == nil && !after.Before(rs.Cutoff.Time) {
		err = fmt.Errorf("creating %s took until %s, past its cutoff %s; trying again", rs.View, after.Format(time.RFC3339), rs.Cutoff.UTC().Format(time.RFC3339))
	}
	if err != nil {
		// The view may have missed events received after the cutoff: start over.
		if derr := conn.db.Drop(ctx, tgt); derr != nil {
			err = errors.Join(err, derr)
		}
		return reconcile.Result{}, fromBackend(backendClickHouse, err)
	}
	pl.Status.Pending = rs
	obs.tableReady = true
	r.Recorder.Eventf(pl, nil, corev1.EventTypeNormal, v1alpha1.ReasonTableCreated, "Create", "created table %s and view %s with cutoff %s", rs.Table, rs.View, rs.Cutoff.UTC().Format(time.RFC3339))
	if rs.Backfill.Phase == v1alpha1.BackfillDisabled {
		return reconcile.Result{RequeueAfter: pipelineNext}, nil
	}
	return reconcile.Result{RequeueAfter: r.untilBackfillable(rs)}, nil
}

// untilBackfillable is how long until the processor can have passed the cutoff.
func (r *PipelineReconciler) untilBackfillable(rs *v1alpha1.RollupStatus) time.Duration {
	return max(rs.Cutoff.Add(orDefault(r.ClockSkew, 10*time.Second)).Sub(r.now()), pipelineNext)
}

// backfill moves the pending rollup's backfill one step, and swaps it in once complete.
func (r *PipelineReconciler) backfill(ctx context.Context, pl *v1alpha1.Pipeline, conn *pipelineConn, plan *rollup.Plan, obs *pipelineObservation) (reconcile.Result, error) {
	rs := pl.Status.Pending
	if err := r.ensureObjects(ctx, pl, conn, plan, rs); err != nil {
		return reconcile.Result{}, err
	}
	obs.tableReady = true
	w := window(pl, rs)
	b := &rs.Backfill
	switch b.Phase {
	case v1alpha1.BackfillWaitingForProcessor:
		if wait := r.untilBackfillable(rs); wait > pipelineNext {
			return reconcile.Result{RequeueAfter: wait}, nil
		}
		at := rs.Cutoff.Add(orDefault(r.ClockSkew, 10*time.Second))
		progress, err := r.Processor.PassedTime(ctx, conn.group, conn.topic, at)
		if err != nil {
			return reconcile.Result{}, fromBackend(backendKafka, err)
		}
		if !progress.Done {
			obs.lag = &progress
			return reconcile.Result{RequeueAfter: pipelineProcessorRetry}, nil
		}
		b.Phase = v1alpha1.BackfillRunning
		fallthrough
	case v1alpha1.BackfillRunning:
		done, err := r.backfillChunk(ctx, pl, conn, plan, w)
		if err != nil || !done {
			return reconcile.Result{RequeueAfter: pipelineNext}, err
		}
		b.Phase = v1alpha1.BackfillComplete
		now := metav1.NewTime(r.now())
		b.CompletedAt = &now
		r.Recorder.Eventf(pl, nil, corev1.EventTypeNormal, v1alpha1.ReasonBackfilled, "Backfill", "backfill of %s complete: %d chunks, %d events", rs.Table, b.CompletedChunks, b.Events)
	}
	r.swap(pl)
	obs.tableReady = true
	return reconcile.Result{RequeueAfter: orDefault(r.RetireGrace, time.Minute)}, nil
}

// backfillChunk runs the next chunk; done when none is left.
func (r *PipelineReconciler) backfillChunk(ctx context.Context, pl *v1alpha1.Pipeline, conn *pipelineConn, plan *rollup.Plan, w rollup.Window) (bool, error) {
	rs := pl.Status.Pending
	b := &rs.Backfill
	last := 0
	if b.LastChunk != "" {
		t, err := time.Parse("2006-01", b.LastChunk)
		if err != nil {
			return false, fmt.Errorf("status.pending.backfill.lastChunk %q: %w", b.LastChunk, err)
		}
		last = t.Year()*100 + int(t.Month())
	}
	chunks, err := conn.db.PendingChunks(ctx, conn.database, plan, w, last)
	if err != nil {
		return false, fromBackend(backendClickHouse, err)
	}
	b.TotalChunks = b.CompletedChunks + int32(len(chunks))
	if len(chunks) == 0 {
		return true, nil
	}
	n, err := conn.db.BackfillChunk(ctx, r.target(conn, rs), plan, w, chunks[0])
	if err != nil {
		return false, fromBackend(backendClickHouse, err)
	}
	b.CompletedChunks++
	b.LastChunk = fmt.Sprintf("%04d-%02d", chunks[0]/100, chunks[0]%100)
	b.Events += int64(n)
	return false, nil
}

// swap makes the pending rollup the one queries read; the previous one is retired and
// dropped after the grace period.
func (r *PipelineReconciler) swap(pl *v1alpha1.Pipeline) {
	st := &pl.Status
	if old := st.Active; old != nil {
		st.Retired = append(st.Retired, v1alpha1.RetiredRollup{Table: old.Table, View: old.View, Since: metav1.NewTime(r.now())})
		r.Recorder.Eventf(pl, nil, corev1.EventTypeNormal, v1alpha1.ReasonServing, "Swap", "queries now read %s instead of %s", st.Pending.Table, old.Table)
	}
	st.Active, st.Pending = st.Pending, nil
}

// dropRetired drops the retired rollups whose grace period is over.
func (r *PipelineReconciler) dropRetired(ctx context.Context, pl *v1alpha1.Pipeline, conn *pipelineConn) error {
	grace := orDefault(r.RetireGrace, time.Minute)
	kept := pl.Status.Retired[:0]
	var errs []error
	for _, old := range pl.Status.Retired {
		if r.now().Sub(old.Since.Time) < grace {
			kept = append(kept, old)
			continue
		}
		if err := conn.db.Drop(ctx, rollup.Target{Database: conn.database, Table: old.Table, View: old.View}); err != nil {
			kept = append(kept, old)
			errs = append(errs, err)
			continue
		}
		r.Recorder.Eventf(pl, nil, corev1.EventTypeNormal, "Dropped", "Drop", "dropped retired table %s and view %s", old.Table, old.View)
	}
	pl.Status.Retired = kept
	if len(pl.Status.Retired) == 0 {
		pl.Status.Retired = nil
	}
	return fromBackend(backendClickHouse, errors.Join(errs...))
}

// reconcileDelete drops every table and view of the pipeline, then its finalizer. When
// the tenant or its database is gone or going, the rollups go (or stay, per the tenant's
// deletion policy) with the database, so nothing is dropped.
func (r *PipelineReconciler) reconcileDelete(ctx context.Context, pl *v1alpha1.Pipeline) (reconcile.Result, error) {
	if !controllerutil.ContainsFinalizer(pl, naming.PipelineFinalizer) {
		return reconcile.Result{}, nil
	}
	conn, _, err := r.connectTenant(ctx, pl)
	if err != nil {
		before := pl.DeepCopy()
		setCondition(&pl.Status.Conditions, pl.Generation, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeleting, "deleting: "+err.Error()+"; retrying")
		if perr := r.patchStatus(ctx, before, pl); perr != nil {
			return reconcile.Result{}, perr
		}
		return reconcile.Result{}, err
	}
	if conn != nil {
		defer conn.close()
		var objs []rollup.Target
		for _, rs := range []*v1alpha1.RollupStatus{pl.Status.Pending, pl.Status.Active} {
			if rs != nil {
				objs = append(objs, r.target(conn, rs))
			}
		}
		for _, old := range pl.Status.Retired {
			objs = append(objs, rollup.Target{Database: conn.database, Table: old.Table, View: old.View})
		}
		for _, tgt := range objs {
			if err := conn.db.Drop(ctx, tgt); err != nil {
				before := pl.DeepCopy()
				err = fromBackend(backendClickHouse, err)
				setCondition(&pl.Status.Conditions, pl.Generation, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeleting, "deleting: "+err.Error()+"; retrying")
				if perr := r.patchStatus(ctx, before, pl); perr != nil {
					return reconcile.Result{}, perr
				}
				return reconcile.Result{}, err
			}
		}
	}
	if err := r.unpublish(ctx, pl); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, removeFinalizer(ctx, r.Client, pl, naming.PipelineFinalizer)
}

// patchStatus writes the status when it changed, with optimistic locking, and records an
// event per condition transition.
func (r *PipelineReconciler) patchStatus(ctx context.Context, before, after *v1alpha1.Pipeline) error {
	return patchStatusOf(ctx, r.Client, r.Recorder, before, after,
		func(o *v1alpha1.Pipeline) any { return o.Status },
		func(o *v1alpha1.Pipeline) []metav1.Condition { return o.Status.Conditions })
}

// SetupWithManager registers the reconciler. A Tenant's change (its database becoming
// ready) wakes the pipelines of its namespace.
func (r *PipelineReconciler) SetupWithManager(mgr manager.Manager, maxConcurrent int) error {
	return builder.ControllerManagedBy(mgr).
		For(&v1alpha1.Pipeline{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.Tenant{}, handler.EnqueueRequestsFromMapFunc(r.tenantToPipelines)).
		WithOptions(controller.Options{MaxConcurrentReconciles: maxConcurrent}).
		Named("pipeline").
		Complete(r)
}

func (r *PipelineReconciler) tenantToPipelines(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &v1alpha1.PipelineList{}
	if err := r.Client.List(ctx, list, client.InNamespace(naming.TenantNamespace(obj.GetName()))); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, len(list.Items))
	for i := range list.Items {
		reqs[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
	}
	return reqs
}
