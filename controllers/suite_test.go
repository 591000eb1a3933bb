package controllers

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/testenv"
)

// env is the real kube-apiserver and etcd the tests in this package share, with the
// tenant controller running against it.
var env *testenv.Env

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

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := env.RunNamespaceController(ctx); err != nil {
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
	r := &TenantReconciler{
		Client:   mgr.GetClient(),
		Recorder: mgr.GetEventRecorder("shoal-operator"),
		Platform: platform,
	}
	if err := r.SetupWithManager(mgr, platform.Operator.MaxConcurrentReconciles); err != nil {
		return err
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped:", err)
		}
	}()
	return nil
}
