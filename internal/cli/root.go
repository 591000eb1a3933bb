// Package cli holds the shoal command line: one subcommand per role of the binary.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/internal/version"
)

// Main runs the shoal command with args and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		_, _ = fmt.Fprintln(stderr, "Error:", err)
		return 1
	}
	return 0
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "shoal",
		Short: "Shoal runs a multi-tenant analytics platform on Kubernetes",
		Long: `Shoal runs a multi-tenant analytics platform on Kubernetes.

One binary serves every role. The operator turns Tenant, Pipeline, Dashboard and
DataSource objects (group analytics.shoal.dev) into Kafka topics, ClickHouse databases,
S3 lake prefixes, metadata and runtime pods.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newOperatorCommand(), newIngestCommand(), newProcessCommand(), newQueryCommand(), newDevCommand(), newBenchCommand(), newVersionCommand())
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the build version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "shoal %s\n", version.Version)
			return err
		},
	}
}
