package controllers

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/shoal-dev/shoal/internal/billing"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/kafka"
	"github.com/shoal-dev/shoal/internal/testbackends"
	"github.com/shoal-dev/shoal/internal/testenv"
	"github.com/shoal-dev/shoal/internal/testplatform"
)

// env is the real kube-apiserver and etcd the tests in this package share, with the
// tenant controller running against it.
var env *testenv.Env

// backends are the real servers the tenant controller provisions in: Kafka, ClickHouse,
// PostgreSQL, S3 and stripe-mock, started once for the package.
var backends *testplatform.Platform

// reconciler is the tenant controller under test, for tests that swap a backend.
var reconciler *TenantReconciler

// billingStates lets a test make Stripe report another subscription status for one
// tenant. stripe-mock answers every subscription with the same fixture, so a past_due
// subscription cannot be had from it; everything else goes to stripe-mock.
var billingStates *stateOverride

// It can also make Stripe look down for one tenant, without stopping it for the others.
type stateOverride struct {
	Subscriptions
	forced sync.Map // tenant UID -> status
	down   sync.Map // tenant UID -> error
}

func (o *stateOverride) EnsureSubscription(ctx context.Context, c billing.Customer, plan string, ids billing.IDs) (billing.State, error) {
	if err, ok := o.down.Load(c.TenantID); ok {
		return billing.State{}, err.(error)
	}
	st, err := o.Subscriptions.EnsureSubscription(ctx, c, plan, ids)
	if status, ok := o.forced.Load(c.TenantID); ok && err == nil {
		st.Status = status.(string)
	}
	return st, err
}

// testResync is short so drift in the backends is repaired within a test.
const testResync = 2 * time.Second

// testDeletionTimeout is short so the stuck-deletion report is seen within a test.
const testDeletionTimeout = 2 * time.Second

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true), zap.Level(zapcore.InfoLevel)))
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "controllers tests:", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping test API server:", err)
		}
	}()

	suite := testbackends.NewSuite("controllers")
	defer suite.Close()
	if err := suite.Do(func(tb testing.TB) { backends = testplatform.Start(tb, true) }); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := env.RunNamespaceController(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// No Altinity operator, deployment controller or kubelet runs here: stand-ins play
	// them, pointing every installation at the test ClickHouse.
	if err := env.RunInstallationStandIn(ctx, backends.ClickHouse.Addr, backends.ClickHouse.UsersDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := env.RunDeploymentStandIn(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := startManager(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func testPlatform() *config.Platform {
	p := &config.Platform{
		APIVersion: config.APIVersion,
		Kind:       config.Kind,
		Operator:   config.Operator{DeletionTimeout: metav1.Duration{Duration: testDeletionTimeout}},
		Plans: []config.Plan{
			{Name: "free"},
			{Name: "team"},
			{Name: "enterprise", Quota: config.Quota{CPU: resource.MustParse("64"), Pods: 200}},
		},
	}
	for i := range p.Plans {
		p.Plans[i].StripePriceID = "price_" + p.Plans[i].Name
	}
	backends.Configure(p)
	p.Default()
	return p
}

func startManager(ctx context.Context) error {
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Client.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return err
	}
	platform := testPlatform()
	b, closeBackends, err := OpenBackends(ctx, platform, mgr.GetClient())
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); closeBackends() }()
	billingStates = &stateOverride{Subscriptions: b.Billing}
	b.Billing = billingStates
	r := &TenantReconciler{
		Client:         mgr.GetClient(),
		APIReader:      mgr.GetAPIReader(),
		Recorder:       mgr.GetEventRecorder("shoal-operator"),
		Platform:       platform,
		Backends:       b,
		ResyncInterval: testResync,
	}
	reconciler = r
	if err := r.SetupWithManager(mgr, platform.Operator.MaxConcurrentReconciles); err != nil {
		return err
	}
	progress, err := kafka.NewConsumerProgress(platform.Kafka)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); progress.Close() }()
	pipelines := &PipelineReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("shoal-operator"),
		Platform:  platform,
		Connect:   ConnectRollups,
		Processor: progress,
		Catalog:   b.Catalog,
		// Short, so a pipeline is built and swapped within a test.
		CutoffLead: time.Second, ClockSkew: time.Second, RetireGrace: time.Second, ResyncInterval: testResync,
	}
	if err := pipelines.SetupWithManager(mgr, platform.Operator.MaxConcurrentReconciles); err != nil {
		return err
	}
	if err := startSyncControllers(ctx, mgr, b, platform.Operator.MaxConcurrentReconciles); err != nil {
		return err
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped:", err)
		}
	}()
	return nil
}
