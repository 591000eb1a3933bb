package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/runtime/ingest"
)

type ingestOptions struct {
	configPath      string
	listen          string
	shutdownTimeout time.Duration
	ackTimeout      time.Duration
	keyCacheTTL     time.Duration
}

func newIngestCommand() *cobra.Command {
	var opts ingestOptions
	cmd := &cobra.Command{
		Use:   "ingest --config FILE [--listen ADDR]",
		Short: "Run the ingest API: events in over HTTP, out to each tenant's Kafka topic",
		Long: `Run the Shoal ingest service.

Tenant apps POST events (a JSON object, an array, or NDJSON; optionally gzip) to
/api/v1/events/ingest with their ingest key as "Authorization: Bearer <key>" or
"X-Shoal-Key". Each valid event is written to the tenant's Kafka topic, and the request
is answered only once Kafka acknowledged every one (acks=all); when it does not within
--ack-timeout the answer is 503 with Retry-After and nothing is reported accepted.
Size and rate limits come from the tenant's plan in the platform config (--config);
keys are checked against the metadata store and cached for --key-cache-ttl.

The same address serves /healthz, /readyz (Kafka reachable) and /metrics. On SIGTERM
the service stops accepting connections, finishes the requests in flight and flushes
the producer, within --shutdown-timeout.`,
		Example: `  shoal ingest --config /etc/shoal/platform.yaml
  shoal ingest --config platform.yaml --listen :9000 --ack-timeout 5s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runIngest(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.configPath, "config", "", "platform config file (required)")
	f.StringVar(&opts.listen, "listen", ":8080", "address to serve HTTP on")
	f.DurationVar(&opts.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a shutdown waits for requests in flight and the producer")
	f.DurationVar(&opts.ackTimeout, "ack-timeout", ingest.DefaultAckTimeout, "how long a request waits for Kafka's acknowledgements before it is answered 503")
	f.DurationVar(&opts.keyCacheTTL, "key-cache-ttl", ingest.DefaultKeyCacheTTL, "how long a key lookup is reused; a revoked key or a suspension takes effect within it")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func runIngest(cmd *cobra.Command, opts ingestOptions) error {
	ctx := cmd.Context()
	logger := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))

	platform, err := config.Load(opts.configPath)
	if err != nil {
		return err
	}
	store, err := metastore.Open(ctx, platform.Metastore)
	if err != nil {
		return err
	}
	defer store.Close()
	producer, err := ingest.NewKafkaProducer(platform.Kafka)
	if err != nil {
		return err
	}
	defer producer.Close()

	registry := newRuntimeRegistry()
	handler, err := ingest.New(ingest.Options{
		Platform:    platform,
		Keys:        store,
		Producer:    producer,
		Registry:    registry,
		Logger:      logger,
		AckTimeout:  opts.ackTimeout,
		KeyCacheTTL: opts.keyCacheTTL,
	})
	if err != nil {
		return err
	}

	listener, err := net.Listen("tcp", opts.listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", opts.listen, err)
	}
	server := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		// A request may wait AckTimeout for Kafka after its body is read.
		ReadTimeout:  time.Minute,
		WriteTimeout: time.Minute + opts.ackTimeout,
		IdleTimeout:  2 * time.Minute,
		BaseContext:  func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- server.Serve(listener) }()
	logger.Info("ingest serving", "addr", listener.Addr().String(), "brokers", platform.Kafka.Brokers)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing requests in flight")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.shutdownTimeout)
	defer cancel()
	var errs []error
	if err := server.Shutdown(shutdownCtx); err != nil {
		errs = append(errs, fmt.Errorf("shutting the HTTP server down: %w", err))
	}
	if err := producer.Flush(shutdownCtx); err != nil {
		errs = append(errs, err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("serving HTTP: %w", err))
	}
	return errors.Join(errs...)
}
