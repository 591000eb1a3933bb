package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/shoal-dev/shoal/internal/bench"
)

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the operator",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newBenchTenantsCommand())
	return cmd
}

type benchTenantsOptions struct {
	bench.Options
	json bool
}

func newBenchTenantsCommand() *cobra.Command {
	var opts benchTenantsOptions
	cmd := &cobra.Command{
		Use:   "tenants -n N --kubeconfig FILE --config FILE",
		Short: "Measure how fast the operator provisions N Shared tenants",
		Long: `Measure how fast the operator provisions tenants.

It runs the operator (shoal operator, or --operator-bin) as a child process with the
platform config of --config, metrics and health endpoints off and, with --concurrency,
that many tenants reconciled in parallel. Once its controllers run, it creates N Shared
tenants <prefix>-00001... on the config's first plan with deletionPolicy Delete, a few
requests in flight at a time, and waits until each has Ready=True for its current
generation. It reports the time until all were Ready, tenants per second, the spread of
each tenant's create-to-Ready time, and the operator's peak resident memory; then, unless
--keep, deletes the tenants, reports how long until they were gone, and stops the
operator.

The cluster needs every backend the config names; hack/bench-tenants.sh starts a local
one. When not every tenant is Ready within --timeout, the report says how many were and
what a few of the others' Ready conditions say, the tenants are left in place, and the
command fails.`,
		Example: `  shoal bench tenants -n 100 --kubeconfig kubeconfig --config platform.yaml
  shoal bench tenants -n 1000 --concurrency 16 --json --kubeconfig kubeconfig --config platform.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchTenants(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.IntVarP(&opts.Tenants, "tenants", "n", 0, "number of tenants to create (required)")
	f.StringVar(&opts.Kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (required)")
	f.StringVar(&opts.PlatformConfig, "config", "", "platform config the operator runs with (required)")
	f.StringVar(&opts.OperatorBin, "operator-bin", "", "shoal binary to run the operator from (default: this one)")
	f.IntVar(&opts.Concurrency, "concurrency", 0, "tenants reconciled in parallel (default: the config's maxConcurrentReconciles)")
	f.DurationVar(&opts.Timeout, "timeout", 10*time.Minute, "how long to wait for every tenant to be Ready, and again to be gone")
	f.StringVar(&opts.Prefix, "prefix", "bench", "tenant name prefix")
	f.BoolVar(&opts.Keep, "keep", false, "leave the tenants in place")
	f.BoolVar(&opts.json, "json", false, "print the report as JSON")
	for _, name := range []string{"tenants", "kubeconfig", "config"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func runBenchTenants(cmd *cobra.Command, opts benchTenantsOptions) error {
	if opts.OperatorBin == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding this executable to run the operator from (set --operator-bin): %w", err)
		}
		opts.OperatorBin = self
	}
	// Progress goes to stderr so that stdout holds only the report, JSON or not. The
	// tenant informer logs through controller-runtime; only its errors belong there too.
	opts.Progress = cmd.ErrOrStderr()
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(cmd.ErrOrStderr()), zap.Level(zapcore.ErrorLevel)))
	report, err := bench.Run(cmd.Context(), opts.Options)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if opts.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		err = enc.Encode(report)
	} else {
		err = report.WriteText(out)
	}
	if err != nil {
		return err
	}
	if report.TimedOut {
		return fmt.Errorf("%d of %d tenants Ready after %s; the tenants are left in place (label %s=%s)",
			report.Ready, report.Tenants, opts.Timeout, bench.RunLabel, opts.Prefix)
	}
	return nil
}
