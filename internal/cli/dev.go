package cli

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/runtime/ingest"
	"github.com/shoal-dev/shoal/runtime/process"
)

// devIngestShutdownTimeout is what shoal ingest's --shutdown-timeout defaults to.
const devIngestShutdownTimeout = 30 * time.Second

type devOptions struct {
	configPath    string
	listen        string
	processListen string
}

func newDevCommand() *cobra.Command {
	var opts devOptions
	cmd := &cobra.Command{
		Use:   "dev --config FILE [--listen ADDR] [--process-listen ADDR]",
		Short: "Run ingest and process in one process, for a laptop",
		Long: `Run the shared data path in one process: the ingest API (as shoal ingest) and the
stream processor for every Shared tenant (as shoal process), both with their defaults.

Events POSTed to --listen go to the tenants' Kafka topics and from there into their
ClickHouse events tables and lake prefixes. --listen serves the ingest API, /healthz,
/readyz and /metrics; --process-listen serves the processor's /healthz, /readyz and
/metrics. On SIGTERM both stop together: the ingest service finishes its requests and
flushes its producer, the processor writes and commits what it holds. When either stops
on its own, the other is stopped too.`,
		Example: `  shoal dev --config platform.yaml
  shoal dev --config platform.yaml --listen 127.0.0.1:9000 --process-listen 127.0.0.1:9001`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.configPath, "config", "", "platform config file (required)")
	f.StringVar(&opts.listen, "listen", ":8080", "address to serve the ingest API on")
	f.StringVar(&opts.processListen, "process-listen", ":8081", `address to serve the processor's health and metrics on; "0" serves nothing`)
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// runDev runs runIngest and runProcess side by side under one context, so a signal (or
// either one failing) stops both.
func runDev(cmd *cobra.Command, opts devOptions) error {
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()

	ingestOpts := ingestOptions{
		configPath:      opts.configPath,
		listen:          opts.listen,
		shutdownTimeout: devIngestShutdownTimeout,
		ackTimeout:      ingest.DefaultAckTimeout,
		keyCacheTTL:     ingest.DefaultKeyCacheTTL,
	}
	processOpts := processOptions{
		configPath:      opts.configPath,
		listen:          opts.processListen,
		shutdownTimeout: process.DefaultShutdownTimeout,
		batchMaxRecords: process.DefaultBatchMaxRecords,
		batchMaxBytes:   process.DefaultBatchMaxBytes,
		batchMaxWait:    process.DefaultBatchMaxWait,
	}
	runs := []func(*cobra.Command) error{
		func(c *cobra.Command) error { return runIngest(c, ingestOpts) },
		func(c *cobra.Command) error { return runProcess(c, processOpts) },
	}
	done := make(chan error, len(runs))
	for _, run := range runs {
		go func() {
			// Each runs on a command of its own that carries the shared context.
			sub := &cobra.Command{}
			sub.SetContext(ctx)
			sub.SetOut(cmd.OutOrStdout())
			sub.SetErr(cmd.ErrOrStderr())
			err := run(sub)
			cancel()
			done <- err
		}()
	}
	var errs []error
	for range runs {
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
