package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/internal/auth"
	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/sealing"
	"github.com/shoal-dev/shoal/runtime/query"
	"github.com/shoal-dev/shoal/runtime/query/engine"
	"github.com/shoal-dev/shoal/runtime/query/metricquery"
	"github.com/shoal-dev/shoal/runtime/query/notify"
)

// engineOpener builds the metrics engine the query API answers through, on the
// ClickHouse cfg names (the platform's, or a Dedicated tenant's), for every tenant or
// only tenant. close releases it.
type engineOpener func(ctx context.Context, cfg clickhouse.Config, tenant string, store *metastore.Store) (engine metricquery.Engine, close func(), err error)

type queryOptions struct {
	configPath      string
	listen          string
	tenant          string
	credentialsDir  string
	shutdownTimeout time.Duration
	openEngine      engineOpener
	// oidc, when set, replaces the platform config's query.oidc: shoal dev's own issuer.
	oidc *auth.OIDCConfig
	// ready, when set, is told the address once the API listens.
	ready func(addr string)
}

func newQueryCommand() *cobra.Command {
	opts := queryOptions{openEngine: openClickHouseEngine}
	cmd := &cobra.Command{
		Use:   "query --config FILE [--listen ADDR] [--tenant NAME]",
		Short: "Run the query API: metrics, dashboards, data sources, users, tokens and alerts",
		Long: `Run the Shoal query API, the web API tenants' users and scripts call
(docs/query-api.md; GET /api/v1/openapi.json describes every endpoint).

Requests authenticate with an OIDC token from the issuer of the platform config's
query.oidc, or a personal API token, as "Authorization: Bearer <token>"; the tenant
always comes from the credentials. Each tenant's requests share a token bucket
(query.rateLimit). Metrics are answered from the tenant's ClickHouse database; the
dashboards, users, tokens, data sources and alert rules live in the metadata store.

The same process evaluates the enabled alert rules every query.alerts.evaluationInterval
and notifies by signed webhook and by email through SendGrid when configured.

A Dedicated tenant's query API (--tenant) serves only that tenant's users and reads the
tenant's ClickHouse installation when --clickhouse-credentials names the directory where
the tenant's ClickHouse Secret is mounted (keys address, user and password).

The --listen address also serves /healthz, /readyz (metadata store reachable) and
/metrics. On SIGTERM the API finishes its requests within --shutdown-timeout.`,
		Example: `  shoal query --config /etc/shoal/platform.yaml
  shoal query --config platform.yaml --tenant acme --clickhouse-credentials /etc/shoal/clickhouse`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runQuery(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.configPath, "config", "", "platform config file (required)")
	f.StringVar(&opts.listen, "listen", ":8080", "address to serve HTTP on")
	f.StringVar(&opts.tenant, "tenant", "", "serve only this tenant (a Dedicated tenant's query API)")
	f.StringVar(&opts.credentialsDir, "clickhouse-credentials", "", "directory holding the tenant's ClickHouse Secret (address, user, password) to use instead of the platform's ClickHouse")
	f.DurationVar(&opts.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a shutdown waits for requests in flight")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// engineConns bounds the query API's connections to ClickHouse: dashboards query up to
// query.DefaultWidgetParallelism widgets at once per request.
const engineConns = 32

// openClickHouseEngine is the query command's engine: SQL over the tenants' ClickHouse
// databases, from their rollups when a query fits one.
func openClickHouseEngine(ctx context.Context, cfg clickhouse.Config, tenant string, store *metastore.Store) (metricquery.Engine, func(), error) {
	conn, err := clickhouse.Dial(cfg, engineConns)
	if err != nil {
		return nil, nil, err
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("connecting to ClickHouse at %s as %s: %w", cfg.Addr, cfg.User, err)
	}
	eng, err := engine.New(ctx, engine.Options{Conn: conn, Catalog: store, Tenant: tenant})
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return eng, func() { _ = conn.Close() }, nil
}

func runQuery(cmd *cobra.Command, opts queryOptions) error {
	ctx := cmd.Context()
	logger := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))

	platform, err := config.Load(opts.configPath)
	if err != nil {
		return err
	}
	if opts.oidc != nil {
		platform.Query.OIDC = opts.oidc
	}
	if opts.credentialsDir != "" {
		if opts.tenant == "" {
			return errors.New("--clickhouse-credentials needs --tenant: they are one Dedicated tenant's")
		}
		if err := useClickHouseCredentials(&platform.ClickHouse, opts.credentialsDir); err != nil {
			return err
		}
	}
	store, err := metastore.Open(ctx, platform.Metastore)
	if err != nil {
		return err
	}
	defer store.Close()

	var keyring *sealing.Keyring
	if len(platform.Sealing.Keys) > 0 {
		if keyring, err = sealing.Load(platform.Sealing); err != nil {
			return err
		}
	}
	var verifier *auth.OIDCVerifier
	if platform.Query.OIDC != nil {
		if verifier, err = auth.NewOIDCVerifier(*platform.Query.OIDC); err != nil {
			return err
		}
	} else {
		logger.Warn("query.oidc is not configured: only personal API tokens sign in")
	}
	eng, closeEngine, err := opts.openEngine(ctx, platform.ClickHouse, opts.tenant, store)
	if err != nil {
		return fmt.Errorf("opening the metrics engine: %w", err)
	}
	defer closeEngine()
	usage, _ := eng.(query.UsageCounter)

	webhook, email, err := alertNotifiers(platform.Query.Alerts)
	if err != nil {
		return err
	}
	registry := newRuntimeRegistry()
	server, err := query.New(query.Options{
		Platform:        platform,
		Store:           store,
		Keyring:         keyring,
		Authenticator:   auth.NewAuthenticator(store, verifier, logger),
		Engine:          eng,
		Usage:           usage,
		Tenant:          opts.tenant,
		WebhooksEnabled: webhook != nil,
		EmailEnabled:    email != nil,
		Registry:        registry,
		Logger:          logger,
	})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	evalDone := make(chan error, 1)
	if interval := platform.Query.Alerts.Interval(); interval > 0 {
		ev, err := query.NewEvaluator(query.EvaluatorOptions{
			Store: store, Engine: eng, Webhook: webhook, Email: email, Tenant: opts.tenant,
			Interval: interval, QueryTimeout: platform.Query.QueryTimeout.Duration, Logger: logger,
			Registry: registry, DrainTimeout: opts.shutdownTimeout,
		})
		if err != nil {
			return err
		}
		go func() { evalDone <- ev.Run(ctx) }()
	} else {
		evalDone <- nil
	}

	listener, err := net.Listen("tcp", opts.listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", opts.listen, err)
	}
	httpServer := &http.Server{
		Handler:           server,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute + platform.Query.QueryTimeout.Duration,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.Serve(listener) }()
	logger.Info("query API serving", "addr", listener.Addr().String(), "tenant", opts.tenant)
	if opts.ready != nil {
		opts.ready(listener.Addr().String())
	}

	select {
	case err := <-serveErr:
		cancel()
		return errors.Join(fmt.Errorf("serving HTTP: %w", err), <-evalDone)
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing requests in flight")
	shutdownCtx, cancelShutdown := context.WithTimeout(context.WithoutCancel(ctx), opts.shutdownTimeout)
	defer cancelShutdown()
	var errs []error
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		errs = append(errs, fmt.Errorf("shutting the HTTP server down: %w", err))
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("serving HTTP: %w", err))
	}
	if err := <-evalDone; err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// alertNotifiers builds the notification channels the config turns on; nil for each one
// it does not.
func alertNotifiers(cfg config.QueryAlerts) (*notify.Webhook, *notify.SendGrid, error) {
	var (
		webhook *notify.Webhook
		email   *notify.SendGrid
	)
	if cfg.WebhookSigningSecretFile != "" {
		secret, err := readSecretFile(cfg.WebhookSigningSecretFile)
		if err != nil {
			return nil, nil, fmt.Errorf("query.alerts.webhookSigningSecretFile: %w", err)
		}
		if webhook, err = notify.NewWebhook([]byte(secret), notify.WebhookOptions{AllowPrivateTargets: cfg.AllowPrivateWebhookTargets}); err != nil {
			return nil, nil, fmt.Errorf("query.alerts.webhookSigningSecretFile: %w", err)
		}
	}
	if cfg.SendGrid.APIKeyFile != "" {
		key, err := readSecretFile(cfg.SendGrid.APIKeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("query.alerts.sendgrid.apiKeyFile: %w", err)
		}
		if email, err = notify.NewSendGrid(cfg.SendGrid.Endpoint, key, cfg.SendGrid.From, nil); err != nil {
			return nil, nil, fmt.Errorf("query.alerts.sendgrid: %w", err)
		}
	}
	return webhook, email, nil
}

func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}
