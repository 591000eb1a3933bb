// Command localcluster runs a local Kubernetes control plane for the demo and for
// developers: kube-apiserver and etcd from bin/, Shoal's CRDs (and the upstream Strimzi
// and Altinity CRDs when they are beside the repository) installed, and stand-ins for the
// controllers a real cluster runs: the namespace controller, so deleted namespaces go
// away, and the deployment controller, so Deployments become available.
//
// With --platform-config it also starts every backend Shoal provisions into (Kafka,
// ClickHouse, PostgreSQL, S3 and stripe-mock), writes a platform config pointing at them
// and, beside it, a shell-sourceable file of their addresses, and plays the Altinity
// operator for ClickHouseInstallations on the local ClickHouse. The kubeconfig is written
// last, once everything is up. It runs until interrupted, then stops what it started.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/testbackends"
	"github.com/shoal-dev/shoal/internal/testenv"
	"github.com/shoal-dev/shoal/internal/testplatform"
)

type options struct {
	kubeconfig     string
	platformConfig string
	example        string
}

func main() {
	// An own flag set: a dependency registers --kubeconfig on the global one.
	flags := flag.NewFlagSet("localcluster", flag.ExitOnError)
	var opts options
	flags.StringVar(&opts.kubeconfig, "kubeconfig", "", "where to write the admin kubeconfig (required); written last, once everything is up")
	flags.StringVar(&opts.platformConfig, "platform-config", "", "also start the backends and write a platform config for them here, and their addresses to this path plus .env")
	flags.StringVar(&opts.example, "example", "", "the platform config the written one starts from (default config/platform.yaml in the repository)")
	_ = flags.Parse(os.Args[1:])
	if err := run(opts); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

func run(opts options) (err error) {
	if opts.kubeconfig == "" {
		return errors.New("--kubeconfig is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	env, err := testenv.Start()
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, env.Stop()) }()
	if err := env.RunNamespaceController(ctx); err != nil {
		return err
	}
	if err := env.RunDeploymentStandIn(ctx); err != nil {
		return err
	}
	fmt.Printf("control plane ready at %s\n", env.Config.Host)
	if len(env.UpstreamCRDs) > 0 {
		fmt.Printf("upstream CRDs installed from %v\n", env.UpstreamCRDs)
	}

	if opts.platformConfig != "" {
		// The backends' helpers take a testing.TB; the suite is one that outlives a test
		// and stops them on Close.
		suite := testbackends.NewSuite("localcluster")
		defer suite.Close()
		if err := startPlatform(ctx, env, suite, opts); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil // interrupted while starting
	}

	data, err := os.ReadFile(env.Kubeconfig)
	if err != nil {
		return err
	}
	if err := os.WriteFile(opts.kubeconfig, data, 0o600); err != nil {
		return err
	}
	fmt.Printf("kubeconfig %s\n", opts.kubeconfig)
	<-ctx.Done()
	return nil
}

// startPlatform starts the backends, writes the platform config and its env file, and
// runs the stand-in for the Altinity operator when its CRD is installed.
func startPlatform(ctx context.Context, env *testenv.Env, suite *testbackends.Suite, opts options) error {
	example := opts.example
	if example == "" {
		example = filepath.Join(env.Root, "config", "platform.yaml")
	}
	// Read first: a bad example fails before servers start.
	cfg, err := config.Load(example)
	if err != nil {
		return err
	}
	var p *testplatform.Platform
	if err := suite.Do(func(tb testing.TB) { p = testplatform.Start(tb, true) }); err != nil {
		return fmt.Errorf("starting the backends: %w", err)
	}
	p.Configure(cfg)
	// Metrics and health endpoints off, so the operator needs no free ports.
	cfg.Operator.MetricsAddr, cfg.Operator.HealthAddr = "0", "0"
	if err := writePlatformConfig(opts.platformConfig, cfg); err != nil {
		return err
	}
	vars := backendVars(p, cfg)
	if err := writeEnvFile(opts.platformConfig+".env", vars); err != nil {
		return err
	}
	printBackends(os.Stdout, p, cfg)
	fmt.Printf("platform config %s; backend addresses %s.env\n", opts.platformConfig, opts.platformConfig)

	err = env.RunInstallationStandIn(ctx, p.ClickHouse.Addr, p.ClickHouse.UsersDir)
	switch {
	case errors.Is(err, testenv.ErrNoInstallationCRD):
		fmt.Println("no ClickHouseInstallation CRD: Dedicated tenants get no ClickHouse here")
	case err != nil:
		return err
	default:
		fmt.Printf("ClickHouseInstallations are served by the ClickHouse at %s\n", p.ClickHouse.Addr)
	}
	return nil
}

// writePlatformConfig writes cfg as YAML and checks the file loads as the operator will
// load it.
func writePlatformConfig(path string, cfg *config.Platform) error {
	// Defaulting copied the plans' prices into billing.prices, which a document must not
	// set: they come from the plans again on load.
	cfg.Billing.Prices = nil
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encoding the platform config: %w", err)
	}
	header := "# Written by shoal-localcluster: the example platform config pointed at the local backends.\n"
	// It holds the local backends' credentials.
	if err := os.WriteFile(path, append([]byte(header), data...), 0o600); err != nil {
		return err
	}
	if _, err := config.Load(path); err != nil {
		return fmt.Errorf("the written platform config does not load: %w", err)
	}
	return nil
}

// backendVars are the backends' addresses and credentials, as shell variables.
func backendVars(p *testplatform.Platform, cfg *config.Platform) map[string]string {
	vars := map[string]string{
		"SHOAL_KAFKA_BROKERS":        strings.Join(p.Kafka.Brokers, ","),
		"SHOAL_CLICKHOUSE_ADDR":      p.ClickHouse.Addr,
		"SHOAL_CLICKHOUSE_USER":      p.ClickHouse.User,
		"SHOAL_CLICKHOUSE_PASSWORD":  p.ClickHouse.Password,
		"SHOAL_CLICKHOUSE_USERS_DIR": p.ClickHouse.UsersDir,
		"SHOAL_METASTORE_DSN":        p.MetastoreDSN,
		"SHOAL_S3_ENDPOINT":          p.S3.Endpoint,
		"SHOAL_S3_REGION":            p.S3.Region,
		"SHOAL_S3_ACCESS_KEY":        p.S3.AccessKey,
		"SHOAL_S3_SECRET_KEY":        p.S3.SecretKey,
		"SHOAL_LAKE_BUCKET":          cfg.Lake.Bucket,
	}
	if p.Stripe != nil {
		vars["SHOAL_STRIPE_URL"] = p.Stripe.URL
	}
	return vars
}

// writeEnvFile writes vars as NAME='value' lines, sorted, for `source`.
func writeEnvFile(path string, vars map[string]string) error {
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("# The local backends started by shoal-localcluster; source this file.\n")
	for _, name := range names {
		fmt.Fprintf(&b, "%s=%s\n", name, shellQuote(vars[name]))
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// shellQuote single-quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func printBackends(w io.Writer, p *testplatform.Platform, cfg *config.Platform) {
	_, _ = fmt.Fprintf(w, "kafka       brokers %s\n", strings.Join(p.Kafka.Brokers, ","))
	_, _ = fmt.Fprintf(w, "clickhouse  native %s (user %s), users.d %s\n", p.ClickHouse.Addr, p.ClickHouse.User, p.ClickHouse.UsersDir)
	_, _ = fmt.Fprintf(w, "postgresql  %s\n", p.MetastoreDSN)
	_, _ = fmt.Fprintf(w, "s3          %s (region %s, bucket %s)\n", p.S3.Endpoint, p.S3.Region, cfg.Lake.Bucket)
	if p.Stripe != nil {
		_, _ = fmt.Fprintf(w, "stripe-mock %s\n", p.Stripe.URL)
	}
}
