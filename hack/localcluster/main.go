// Command localcluster runs a local Kubernetes control plane for the demo and for
// developers: kube-apiserver and etcd from bin/, Shoal's CRDs (and the upstream Strimzi
// and Altinity CRDs when they are beside the repository) installed, and a stand-in for the
// namespace controller so deleted namespaces go away. It writes an admin kubeconfig and
// runs until interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/shoal-dev/shoal/internal/testenv"
)

func main() {
	// An own flag set: a dependency registers --kubeconfig on the global one.
	flags := flag.NewFlagSet("localcluster", flag.ExitOnError)
	kubeconfig := flags.String("kubeconfig", "", "where to write the admin kubeconfig (required)")
	_ = flags.Parse(os.Args[1:])
	if err := run(*kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

func run(kubeconfig string) (err error) {
	if kubeconfig == "" {
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
	data, err := os.ReadFile(env.Kubeconfig)
	if err != nil {
		return err
	}
	if err := os.WriteFile(kubeconfig, data, 0o600); err != nil {
		return err
	}
	fmt.Printf("control plane ready at %s; kubeconfig %s\n", env.Config.Host, kubeconfig)
	if len(env.UpstreamCRDs) > 0 {
		fmt.Printf("upstream CRDs installed from %v\n", env.UpstreamCRDs)
	}
	<-ctx.Done()
	return nil
}
