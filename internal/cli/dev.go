package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/internal/auth"
	"github.com/shoal-dev/shoal/internal/auth/devissuer"
	"github.com/shoal-dev/shoal/runtime/ingest"
	"github.com/shoal-dev/shoal/runtime/process"
)

// devIngestShutdownTimeout is what shoal ingest's --shutdown-timeout defaults to.
const devIngestShutdownTimeout = 30 * time.Second

// devAudience is the audience of the tokens shoal dev's issuer signs.
const devAudience = "shoal-dev"

// devTokenTTL is how long a token printed by shoal dev is valid: a working day.
const devTokenTTL = 12 * time.Hour

type devOptions struct {
	configPath    string
	listen        string
	processListen string
	queryListen   string
	issuerListen  string
	signIn        []string
}

func newDevCommand() *cobra.Command {
	var opts devOptions
	cmd := &cobra.Command{
		Use:   "dev --config FILE [--listen ADDR] [--process-listen ADDR] [--query-listen ADDR] [--sign-in TENANT=EMAIL]...",
		Short: "Run ingest, process and the query API in one process, for a laptop",
		Long: `Run the shared data path in one process: the ingest API (as shoal ingest), the
stream processor for every Shared tenant (as shoal process) and the query API (as
shoal query), all with their defaults.

Events POSTed to --listen go to the tenants' Kafka topics and from there into their
ClickHouse events tables and lake prefixes. --listen serves the ingest API, /healthz,
/readyz and /metrics; --process-listen serves the processor's /healthz, /readyz and
/metrics. On SIGTERM they stop together: the ingest service finishes its requests and
flushes its producer, the processor writes and commits what it holds, the query API
finishes its requests. When one stops on its own, the others are stopped too.

The query API (--query-listen; "0" leaves it out) signs users in with a local OIDC
issuer started for the purpose, in place of the platform config's query.oidc. For each
--sign-in TENANT=EMAIL it prints a token of that user, valid for 12 hours, to send as
"Authorization: Bearer <token>"; the email must be a user of the tenant (a Tenant's
spec.owners are). The issuer signs only for this process: nothing else can obtain its
tokens. A personal API token made with POST /api/v1/tokens outlives the process.`,
		Example: `  shoal dev --config platform.yaml --sign-in acme=owner@acme.example
  shoal dev --config platform.yaml --listen 127.0.0.1:9000 --process-listen 127.0.0.1:9001 --query-listen 127.0.0.1:9002`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.configPath, "config", "", "platform config file (required)")
	f.StringVar(&opts.listen, "listen", ":8080", "address to serve the ingest API on")
	f.StringVar(&opts.processListen, "process-listen", ":8081", `address to serve the processor's health and metrics on; "0" serves nothing`)
	f.StringVar(&opts.queryListen, "query-listen", ":8082", `address to serve the query API on; "0" runs without it`)
	f.StringVar(&opts.issuerListen, "issuer-listen", "127.0.0.1:0", "address of the local OIDC issuer the query API signs users in with")
	f.StringArrayVar(&opts.signIn, "sign-in", nil, "TENANT=EMAIL: print a token of this user at start (repeatable)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// runDev runs runIngest, runProcess and runQuery side by side under one context, so a
// signal (or any one failing) stops them all.
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
	if opts.queryListen != "0" {
		run, closeIssuer, err := devQuery(cmd, opts)
		if err != nil {
			return err
		}
		defer closeIssuer()
		runs = append(runs, run)
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

// devQuery prepares the query API of shoal dev with a local issuer, and prints the
// tokens --sign-in asks for once the API listens.
func devQuery(cmd *cobra.Command, opts devOptions) (run func(*cobra.Command) error, closeIssuer func(), err error) {
	type signIn struct{ tenant, email string }
	var users []signIn
	for _, s := range opts.signIn {
		tenant, email, ok := strings.Cut(s, "=")
		if !ok || tenant == "" || !strings.Contains(email, "@") {
			return nil, nil, fmt.Errorf("--sign-in %q: want TENANT=EMAIL", s)
		}
		users = append(users, signIn{tenant, email})
	}
	issuer, err := devissuer.Start(opts.issuerListen)
	if err != nil {
		return nil, nil, err
	}
	out := cmd.OutOrStdout()
	queryOpts := queryOptions{
		configPath:      opts.configPath,
		listen:          opts.queryListen,
		shutdownTimeout: devIngestShutdownTimeout,
		openEngine:      openClickHouseEngine,
		oidc:            &auth.OIDCConfig{IssuerURL: issuer.URL(), Audience: devAudience, AllowInsecureHTTP: true},
		ready: func(addr string) {
			_, _ = fmt.Fprintf(out, "query API on http://%s/api/v1 (sign-in issuer %s)\n", addr, issuer.URL())
			if len(users) == 0 {
				_, _ = fmt.Fprintln(out, "  restart with --sign-in TENANT=EMAIL to get a token of a tenant's user")
			}
			for _, u := range users {
				token, err := issuer.Token(u.tenant, u.email, devAudience, devTokenTTL)
				if err != nil {
					_, _ = fmt.Fprintf(out, "  no token for %s in %s: %v\n", u.email, u.tenant, err)
					continue
				}
				_, _ = fmt.Fprintf(out, "  token of %s in %s (12h):\n  curl -H 'Authorization: Bearer %s' http://%s/api/v1/dashboards\n", u.email, u.tenant, token, addr)
			}
		},
	}
	run = func(c *cobra.Command) error { return runQuery(c, queryOpts) }
	return run, func() { _ = issuer.Close() }, nil
}
