package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/shoal-dev/shoal/controllers"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/kubescheme"
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

It reconciles Tenant objects: each gets a namespace tenant-<name> (and, as later phases
arrive, its topic, database, lake prefix, metadata, billing and runtime), conditions that
say how far provisioning got, and a Ready summary for kubectl wait.

The platform config (--config) holds the plan catalog and operator settings; it is
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
	mgr, err := NewManager(restConfig, platform)
	if err != nil {
		return err
	}
	logger.Info("starting operator", "plans", platform.PlanNames())
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

// NewManager builds the operator's controller manager with every reconciler registered.
func NewManager(restConfig *rest.Config, platform *config.Platform) (ctrl.Manager, error) {
	scheme, err := kubescheme.New()
	if err != nil {
		return nil, err
	}
	op := platform.Operator
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: op.MetricsAddr},
		HealthProbeBindAddress:  op.HealthAddr,
		LeaderElection:          op.LeaderElection,
		LeaderElectionID:        "shoal-operator.analytics.shoal.dev",
		LeaderElectionNamespace: op.LeaderElectionNamespace,
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
	tenants := &controllers.TenantReconciler{
		Client:   mgr.GetClient(),
		Recorder: mgr.GetEventRecorder("shoal-operator"),
		Platform: platform,
	}
	if err := tenants.SetupWithManager(mgr, op.MaxConcurrentReconciles); err != nil {
		return nil, fmt.Errorf("setting up tenant controller: %w", err)
	}
	return mgr, nil
}
