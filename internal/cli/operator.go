package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/shoal-dev/shoal/controllers"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/kafka"
	"github.com/shoal-dev/shoal/internal/kubescheme"
	"github.com/shoal-dev/shoal/internal/naming"
)

type operatorOptions struct {
	configPath string
	kubeconfig string
	devLogs    bool
}

func newOperatorCommand() *cobra.Command {
	var opts operatorOptions
	cmd := &cobra.Command{
		Use:   "operator --config FILE",
		Short: "Run the control plane: reconcile Tenants and the objects in tenant namespaces",
		Long: `Run the Shoal operator.

It reconciles Tenant objects: each gets a namespace tenant-<name>, a Kafka topic, a
ClickHouse database (or, for Dedicated tenants, its own ClickHouseInstallation), a lake
prefix, its metadata and ingest key, a Stripe subscription when billing is on, and its
runtime; conditions say how far provisioning got, with a Ready summary for kubectl wait.

The platform config (--config) holds the plan catalog, the backends and operator
settings; it is
validated at start and any invalid field stops the operator with an error naming it.
The cluster is the one of --kubeconfig, else $KUBECONFIG, else in-cluster, else
~/.kube/config.`,
		Example: `  shoal operator --config config/platform.yaml
  shoal operator --config /etc/shoal/platform.yaml --kubeconfig ~/.kube/config`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runOperator(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.configPath, "config", "", "platform config file (required)")
	f.StringVar(&opts.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster to manage")
	f.BoolVar(&opts.devLogs, "dev-logs", false, "human-readable logs instead of JSON")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func runOperator(cmd *cobra.Command, opts operatorOptions) error {
	platform, err := config.Load(opts.configPath)
	if err != nil {
		return err
	}
	logger := zap.New(zap.UseDevMode(opts.devLogs), zap.WriteTo(cmd.ErrOrStderr()))
	ctrl.SetLogger(logger)

	restConfig, err := loadRESTConfig(opts.kubeconfig)
	if err != nil {
		return err
	}
	mgr, closeBackends, err := NewManager(cmd.Context(), restConfig, platform)
	if err != nil {
		return err
	}
	defer closeBackends()
	logger.Info("starting operator", "plans", platform.PlanNames(), "kafkaMode", platform.Kafka.Mode)
	return mgr.Start(cmd.Context())
}

func loadRESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("loading kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("finding a cluster (set --kubeconfig or $KUBECONFIG): %w", err)
	}
	return cfg, nil
}

// NewManager builds the operator's controller manager with every reconciler registered,
// connected to the platform's backends. The returned close disconnects them; call it once
// the manager stopped.
func NewManager(ctx context.Context, restConfig *rest.Config, platform *config.Platform) (ctrl.Manager, func(), error) {
	mgr, err := newManager(restConfig, platform)
	if err != nil {
		return nil, nil, err
	}
	backends, closeBackends, err := controllers.OpenBackends(ctx, platform, mgr.GetClient())
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to the platform's backends: %w", err)
	}
	tenants := &controllers.TenantReconciler{
		Client:         mgr.GetClient(),
		APIReader:      mgr.GetAPIReader(),
		Recorder:       mgr.GetEventRecorder("shoal-operator"),
		Platform:       platform,
		Backends:       backends,
		ResyncInterval: platform.Operator.ResyncInterval.Duration,
	}
	if err := tenants.SetupWithManager(mgr, platform.Operator.MaxConcurrentReconciles); err != nil {
		closeBackends()
		return nil, nil, fmt.Errorf("setting up tenant controller: %w", err)
	}
	progress, err := kafka.NewConsumerProgress(platform.Kafka)
	if err != nil {
		closeBackends()
		return nil, nil, fmt.Errorf("setting up pipeline controller: %w", err)
	}
	pipelines := &controllers.PipelineReconciler{
		Client:         mgr.GetClient(),
		APIReader:      mgr.GetAPIReader(),
		Recorder:       mgr.GetEventRecorder("shoal-operator"),
		Platform:       platform,
		Connect:        controllers.ConnectRollups,
		Processor:      progress,
		Catalog:        backends.Catalog,
		ResyncInterval: platform.Operator.ResyncInterval.Duration,
	}
	if err := pipelines.SetupWithManager(mgr, platform.Operator.MaxConcurrentReconciles); err != nil {
		progress.Close()
		closeBackends()
		return nil, nil, fmt.Errorf("setting up pipeline controller: %w", err)
	}
	closeAll := func() { progress.Close(); closeBackends() }
	dashboards := &controllers.DashboardReconciler{
		Client:         mgr.GetClient(),
		APIReader:      mgr.GetAPIReader(),
		Recorder:       mgr.GetEventRecorder("shoal-operator"),
		Store:          backends.Dashboards,
		BaseURL:        platform.Query.PublicURL,
		ResyncInterval: platform.Operator.ResyncInterval.Duration,
	}
	if err := dashboards.SetupWithManager(ctx, mgr, platform.Operator.MaxConcurrentReconciles); err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("setting up dashboard controller: %w", err)
	}
	dataSources := &controllers.DataSourceReconciler{
		Client:         mgr.GetClient(),
		Recorder:       mgr.GetEventRecorder("shoal-operator"),
		Store:          backends.DataSources,
		ResyncInterval: platform.Operator.ResyncInterval.Duration,
	}
	if err := dataSources.SetupWithManager(ctx, mgr, platform.Operator.MaxConcurrentReconciles); err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("setting up data source controller: %w", err)
	}
	return mgr, closeAll, nil
}

// newManager builds the manager. Only Secrets and Deployments that belong to a tenant are
// cached: the operator reads no others, and caching every Secret of a large cluster would
// cost memory for nothing.
func newManager(restConfig *rest.Config, platform *config.Platform) (ctrl.Manager, error) {
	scheme, err := kubescheme.New()
	if err != nil {
		return nil, err
	}
	tenantOwned, err := labels.NewRequirement(naming.TenantLabel, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	owned := cache.ByObject{Label: labels.NewSelector().Add(*tenantOwned)}
	op := platform.Operator
	restConfig = rest.CopyConfig(restConfig)
	restConfig.QPS, restConfig.Burst = float32(op.KubeAPIQPS), op.KubeAPIBurst
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: op.MetricsAddr},
		HealthProbeBindAddress:  op.HealthAddr,
		LeaderElection:          op.LeaderElection,
		LeaderElectionID:        "shoal-operator.analytics.shoal.dev",
		LeaderElectionNamespace: op.LeaderElectionNamespace,
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}:     owned,
			&appsv1.Deployment{}: owned,
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	return mgr, nil
}
