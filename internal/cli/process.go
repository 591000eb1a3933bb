package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoal-dev/shoal/controllers/objects"
	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/lake"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/runtime/process"
)

type processOptions struct {
	configPath      string
	tenant          string
	group           string
	credentialsDir  string
	listen          string
	shutdownTimeout time.Duration
	batchMaxRecords int
	batchMaxBytes   int
	batchMaxWait    time.Duration
	sessionTimeout  time.Duration
}

func newProcessCommand() *cobra.Command {
	var opts processOptions
	cmd := &cobra.Command{
		Use:   "process --config FILE [--tenant NAME]",
		Short: "Run the stream processor: tenant topics into ClickHouse and the lake",
		Long: `Run the Shoal stream processor.

It consumes every tenant topic (or, with --tenant, only that tenant's: a Dedicated
tenant's processor) in a Kafka consumer group and writes each partition's records in
batches: events into the tenant's ClickHouse events table, records that are no event
into its quarantine table with the reason, and the events as gzipped NDJSON into the
tenant's lake prefix under <class>/tenant=<name>/dt=YYYY-MM-DD/hr=HH/, one object per
batch named by its offset range. Offsets are committed only once both are written; a
failure is retried with backoff and never skipped, and what is delivered again after a
crash collapses by event_id in ClickHouse and overwrites the same lake objects.

A Dedicated tenant's processor (--tenant) consumes in a group of its own and writes to
the tenant's ClickHouse installation when --clickhouse-credentials names the directory
where the tenant's ClickHouse Secret is mounted (keys address, user and password); the
shared processor leaves Dedicated tenants' topics alone.

The --listen address serves /healthz, /readyz and /metrics. On SIGTERM the processor
writes and commits what it holds, within --shutdown-timeout, and leaves the group.`,
		Example: `  shoal process --config /etc/shoal/platform.yaml
  shoal process --config platform.yaml --tenant acme`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runProcess(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.configPath, "config", "", "platform config file (required)")
	f.StringVar(&opts.tenant, "tenant", "", "consume only this tenant's topic")
	f.StringVar(&opts.group, "group", "", `Kafka consumer group (default "`+process.DefaultGroup+`", or "`+process.DefaultGroup+`-<tenant>" with --tenant)`)
	f.StringVar(&opts.credentialsDir, "clickhouse-credentials", "", "directory holding the tenant's ClickHouse Secret (address, user, password) to use instead of the platform's ClickHouse")
	f.StringVar(&opts.listen, "listen", ":8081", `address to serve health and metrics on; "0" serves nothing`)
	f.DurationVar(&opts.shutdownTimeout, "shutdown-timeout", process.DefaultShutdownTimeout, "how long a shutdown may take writing and committing what is held")
	f.IntVar(&opts.batchMaxRecords, "batch-max-records", process.DefaultBatchMaxRecords, "records of a partition batch")
	f.IntVar(&opts.batchMaxBytes, "batch-max-bytes", process.DefaultBatchMaxBytes, "bytes of a partition batch")
	f.DurationVar(&opts.batchMaxWait, "batch-max-wait", process.DefaultBatchMaxWait, "how long a record may wait for its batch to fill")
	f.DurationVar(&opts.sessionTimeout, "session-timeout", process.DefaultSessionTimeout, "how long the consumer group waits for a processor that stopped answering before giving its partitions to the others")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func runProcess(cmd *cobra.Command, opts processOptions) error {
	ctx := cmd.Context()
	logger := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))

	platform, err := config.Load(opts.configPath)
	if err != nil {
		return err
	}
	if len(platform.Kafka.Brokers) == 0 {
		return errors.New("platform config: kafka.brokers is empty: the processor consumes through them")
	}
	if opts.credentialsDir != "" {
		if err := useClickHouseCredentials(&platform.ClickHouse, opts.credentialsDir); err != nil {
			return err
		}
	}
	warehouse, err := process.OpenClickHouse(ctx, platform.ClickHouse)
	if err != nil {
		return err
	}
	defer func() { _ = warehouse.Close() }()
	objects, err := lake.New(ctx, platform.Lake)
	if err != nil {
		return err
	}
	store, err := metastore.Open(ctx, platform.Metastore)
	if err != nil {
		return err
	}
	defer store.Close()

	registry := newRuntimeRegistry()
	proc, err := process.New(process.Options{
		Brokers:         platform.Kafka.Brokers,
		Group:           opts.group,
		Tenant:          opts.tenant,
		BatchMaxRecords: opts.batchMaxRecords,
		BatchMaxBytes:   opts.batchMaxBytes,
		BatchMaxWait:    opts.batchMaxWait,
		SessionTimeout:  opts.sessionTimeout,
		Warehouse:       warehouse,
		Lake:            objects,
		Tenants:         process.NewTenantCache(store, 0),
		Registerer:      registry,
		Logger:          logger,
		ShutdownTimeout: opts.shutdownTimeout,
		KafkaOptions:    []kgo.Opt{kgo.DialTimeout(platform.Kafka.DialTimeout.Duration)},
	})
	if err != nil {
		return err
	}

	stopServing, err := serveProcessStatus(ctx, opts.listen, proc, registry, logger)
	if err != nil {
		return err
	}
	defer stopServing()
	return proc.Run(ctx)
}

// useClickHouseCredentials points cfg at the ClickHouse of a tenant's mounted Secret.
func useClickHouseCredentials(cfg *clickhouse.Config, dir string) error {
	read := func(key string) (string, error) {
		data, err := os.ReadFile(filepath.Join(dir, key))
		if err != nil {
			return "", fmt.Errorf("reading the tenant's ClickHouse credentials: %w", err)
		}
		return strings.TrimRight(string(data), "\r\n"), nil
	}
	var err error
	if cfg.Addr, err = read(objects.ClickHouseSecretAddress); err != nil {
		return err
	}
	if cfg.User, err = read(objects.ClickHouseSecretUser); err != nil {
		return err
	}
	// Read from the file when connecting, like the platform's passwordFile.
	cfg.Password, cfg.PasswordFile = "", filepath.Join(dir, objects.ClickHouseSecretPassword)
	return nil
}

// serveProcessStatus serves health and metrics until the returned func is called.
func serveProcessStatus(ctx context.Context, addr string, proc *process.Processor, registry *prometheus.Registry, logger *slog.Logger) (func(), error) {
	if addr == "0" {
		return func() {}, nil
	}
	health := func(w http.ResponseWriter, _ *http.Request) {
		if err := proc.Healthy(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", health)
	mux.HandleFunc("GET /readyz", health)
	mux.Handle("GET /metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{Registry: registry}))
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	server := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	go func() {
		if err := server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("serving health and metrics", "err", err)
		}
	}()
	logger.Info("serving health and metrics", "addr", listener.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(sctx)
	}, nil
}
