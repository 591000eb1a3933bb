package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/shoal-dev/shoal/internal/bench"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/runtime/process"
)

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the operator and the data path",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newBenchTenantsCommand(), newBenchIngestCommand(), newBenchProcessCommand(), newBenchFreshnessCommand(), newBenchQueryCommand())
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

The cluster needs every backend the config names; hack/bench.sh tenants starts a local
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
	if err := writeReport(cmd, report, opts.json); err != nil {
		return err
	}
	if report.TimedOut {
		return fmt.Errorf("%d of %d tenants Ready after %s; the tenants are left in place (label %s=%s)",
			report.Ready, report.Tenants, opts.Timeout, bench.RunLabel, opts.Prefix)
	}
	return nil
}

// textReport is a report that can be written for people.
type textReport interface{ WriteText(io.Writer) error }

// writeReport writes the report to stdout, as indented JSON or as text.
func writeReport(cmd *cobra.Command, report textReport, asJSON bool) error {
	out := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	return report.WriteText(out)
}

// runPlatformBench loads the platform config, runs a benchmark against its backends with
// progress on stderr, and writes the report: also the part a run that failed afterwards
// measured.
func runPlatformBench[R interface {
	*T
	textReport
}, T any](cmd *cobra.Command, configPath string, asJSON bool, run func(*config.Platform, io.Writer) (R, error)) error {
	platform, err := config.Load(configPath)
	if err != nil {
		return err
	}
	report, err := run(platform, cmd.ErrOrStderr())
	if report != nil {
		if werr := writeReport(cmd, report, asJSON); werr != nil {
			return errors.Join(err, werr)
		}
	}
	return err
}

// loadBenchPlatform loads --config when given.
func loadBenchPlatform(path string) (*config.Platform, error) {
	if path == "" {
		return nil, nil
	}
	return config.Load(path)
}

type benchIngestOptions struct {
	bench.IngestOptions
	configPath string
	json       bool
}

func newBenchIngestCommand() *cobra.Command {
	var opts benchIngestOptions
	cmd := &cobra.Command{
		Use:   "ingest [--config FILE]",
		Short: "Compare the ingest API's events/s with a raw franz-go producer's",
		Long: `Compare the ingest API with a raw franz-go producer, in one run.

Both write the same events (about 300 bytes on the wire, 8 properties) to one topic of
the same broker with the same client options (ingest.ClientOptions: acks=all, the
idempotent producer), the same records per produce call and the same number of calls in
flight. The ingest side is the real ingest server on a loopback port, posted JSON arrays
of --events-per-request events: authentication (a cached key lookup), decoding,
validation, rate limiting, encoding, producing and waiting for every ack are all in it.
The raw side produces the events already encoded. A third side, the HTTP floor, is a
server posted the same requests that only reads each body and produces the raw side's
records: the most any HTTP ingest could reach. The sides alternate for --rounds rounds
of --phase each, after a --warmup of each; the report gives the rates, ingest's ratio to
raw (target at least 0.8), the floor's, ingest's to the floor, and what the batching was.

The broker is the one of --config (kafka.brokers) or, without --config, a kfake broker
started in this process; the report says which.`,
		Example: `  shoal bench ingest
  shoal bench ingest --config platform.yaml --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			platform, err := loadBenchPlatform(opts.configPath)
			if err != nil {
				return err
			}
			if platform != nil {
				opts.Kafka = &platform.Kafka
			}
			opts.Progress = cmd.ErrOrStderr()
			report, err := bench.RunIngest(cmd.Context(), opts.IngestOptions)
			if err != nil {
				return err
			}
			return writeReport(cmd, report, opts.json)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.configPath, "config", "", "platform config whose Kafka to use (default: a kfake broker in this process)")
	f.Int32Var(&opts.Partitions, "partitions", 3, "partitions of the benchmark topic")
	f.IntVar(&opts.EventsPerRequest, "events-per-request", 100, "events per request and per raw produce call")
	f.IntVar(&opts.Concurrency, "concurrency", 0, "requests / produce calls in flight (default 4 per CPU)")
	f.DurationVar(&opts.Phase, "phase", 5*time.Second, "how long each side runs per round")
	f.IntVar(&opts.Rounds, "rounds", 2, "rounds, each running both sides")
	f.DurationVar(&opts.Warmup, "warmup", time.Second, "uncounted run of each side first")
	f.BoolVar(&opts.json, "json", false, "print the report as JSON")
	return cmd
}

type benchProcessOptions struct {
	bench.ProcessOptions
	configPath string
	json       bool
}

func newBenchProcessCommand() *cobra.Command {
	var opts benchProcessOptions
	cmd := &cobra.Command{
		Use:   "process --config FILE",
		Short: "Compare the processor's rows/s with a direct batched clickhouse-go insert",
		Long: `Compare the stream processor with a direct batched clickhouse-go insert, in one run.

It creates two throwaway tenant databases with the events table on the ClickHouse of
--config. First it inserts --rows events (about 300 bytes, 8 properties) into one with
plain clickhouse-go batch inserts of --batch-max-records rows, column by column, as many
at a time as the processor writes partition batches. Then a processor for the other
tenant (in this process, in a group of its own, writing to ClickHouse and to the lake of
--config and committing offsets) writes a warm-up of 1000 events a partition and stops,
so its group's commits say what is stored, as a running processor's do. The same events
as the direct side's are produced to the topic of --partitions partitions (not timed),
and a processor in the same group is timed from the moment it holds its partitions until
the last offset is committed. The events' ids are ingest's, which the processor does not
look up then; with --client-ids they are the clients', and every one is looked up. The report gives both rates and their ratio (target at least 0.5).
The tenants' databases, topic and lake objects are removed afterwards.

Kafka is the one of --config unless --in-process-kafka.`,
		Example: `  shoal bench process --config platform.yaml
  shoal bench process --config platform.yaml --rows 500000 --batch-max-records 20000 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPlatformBench(cmd, opts.configPath, opts.json, func(p *config.Platform, progress io.Writer) (*bench.ProcessReport, error) {
				opts.Platform, opts.Progress = p, progress
				return bench.RunProcess(cmd.Context(), opts.ProcessOptions)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.configPath, "config", "", "platform config with ClickHouse, the lake and Kafka (required)")
	f.BoolVar(&opts.InProcessKafka, "in-process-kafka", false, "use a kfake broker in this process instead of the config's Kafka")
	f.IntVar(&opts.Rows, "rows", 200_000, "events through each side")
	f.Int32Var(&opts.Partitions, "partitions", 3, "partitions of the processor's topic")
	f.IntVar(&opts.BatchMaxRecords, "batch-max-records", process.DefaultBatchMaxRecords, "processor batch records, and the direct insert's batch size")
	f.IntVar(&opts.BatchMaxBytes, "batch-max-bytes", process.DefaultBatchMaxBytes, "processor batch bytes")
	f.DurationVar(&opts.BatchMaxWait, "batch-max-wait", process.DefaultBatchMaxWait, "processor batch wait")
	f.BoolVar(&opts.ClientIDs, "client-ids", false, "events carry their clients' ids, so the processor looks every one up (the worst case)")
	f.BoolVar(&opts.json, "json", false, "print the report as JSON")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

type benchFreshnessOptions struct {
	bench.FreshnessOptions
	configPath string
	json       bool
}

func newBenchFreshnessCommand() *cobra.Command {
	var opts benchFreshnessOptions
	cmd := &cobra.Command{
		Use:   "freshness --config FILE",
		Short: "Measure the time from ingest acknowledgement to visible in ClickHouse",
		Long: `Measure freshness: from the moment the ingest API acknowledged an event to the moment a
ClickHouse query returns it.

It runs the ingest server and a processor for a throwaway tenant in this process, against
the Kafka, ClickHouse and lake of --config, and sends --rate events per second, in
requests of --events-per-request, on a fixed schedule for --duration (a request whose
time comes while every sender is busy is counted late). Every request's events carry a
session id of their own; a query every --poll-interval counts the recent events per
session, and an event is visible at the end of the first query that returned it. Once
sending stopped it waits up to --drain for the rest. The report gives the p50, p99 and
max of ack-to-visible over every acknowledged event (target p99 at most 2 s), and of
the requests' own latency.

Each --batch-max-wait given (a list) is one measurement with a new tenant and
processor, so the processor's default batching can be chosen from one run.`,
		Example: `  shoal bench freshness --config platform.yaml
  shoal bench freshness --config platform.yaml --batch-max-wait 100ms,250ms,500ms,1s --duration 30s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPlatformBench(cmd, opts.configPath, opts.json, func(p *config.Platform, progress io.Writer) (*bench.FreshnessReport, error) {
				opts.Platform, opts.Progress = p, progress
				return bench.RunFreshness(cmd.Context(), opts.FreshnessOptions)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.configPath, "config", "", "platform config with ClickHouse, the lake and Kafka (required)")
	f.BoolVar(&opts.InProcessKafka, "in-process-kafka", false, "use a kfake broker in this process instead of the config's Kafka")
	f.IntVar(&opts.Rate, "rate", 10_000, "events per second sent")
	f.IntVar(&opts.EventsPerRequest, "events-per-request", 100, "events per request")
	f.DurationVar(&opts.Duration, "duration", 30*time.Second, "how long events are sent")
	f.Int32Var(&opts.Partitions, "partitions", 3, "partitions of the tenant's topic")
	f.IntVar(&opts.BatchMaxRecords, "batch-max-records", process.DefaultBatchMaxRecords, "processor batch records")
	f.IntVar(&opts.BatchMaxBytes, "batch-max-bytes", process.DefaultBatchMaxBytes, "processor batch bytes")
	f.DurationSliceVar(&opts.BatchMaxWaits, "batch-max-wait", []time.Duration{process.DefaultBatchMaxWait}, "processor batch wait; several (comma-separated) measure one after the other")
	f.DurationVar(&opts.PollInterval, "poll-interval", 50*time.Millisecond, "pause between the queries looking for the events")
	f.DurationVar(&opts.Drain, "drain", 30*time.Second, "how long to wait for the last events once sending stopped")
	f.BoolVar(&opts.json, "json", false, "print the report as JSON")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

type benchQueryOptions struct {
	bench.QueryOptions
	configPath string
	json       bool
}

func newBenchQueryCommand() *cobra.Command {
	var opts benchQueryOptions
	cmd := &cobra.Command{
		Use:   "query --config FILE",
		Short: "Compare the query API's latency with the same SQL sent straight to ClickHouse, and a rollup with the raw events",
		Long: `Measure the query API against the SQL it runs, and a rollup against the raw events.

It creates a throwaway tenant in the metastore of --config (an owner and a personal
token) and its database on the ClickHouse of --config, loads --events events (about 300
bytes, 8 properties, spread over the 30 days before the last UTC midnight, four event
types, plan and country properties) with batched inserts, and builds a pipeline's rollup
over them as the Pipeline controller does (table and view with a cutoff after the load,
then every backfill chunk), publishing the pipeline record the API reads.

It then serves the query API in this process on a loopback port and sends a fixed mix of
queries (a daily series over the 30 days, the top 10 countries by day, a total over the
last 7 whole days by plan, an hourly series over the last 2 days) --queries times each,
round-robin, through HTTP with the token; right after each, in alternating order, the
very statements the engine sent for it (recorded on its connection, and checked to be
the same on every call) go straight through clickhouse-go and are scanned. The report
gives p50 and p99 of each side per query and overall, and their ratios (target p99 at
most 1.1x).

Last, each query is answered by the engine from the rollup and from the raw events
(answers checked equal first), --raw-queries times each, alternating; the report gives
the medians and the speedup. The tenant's database and metastore rows are removed at
the end, also when the run fails.`,
		Example: `  shoal bench query --config platform.yaml
  shoal bench query --config platform.yaml --events 10000000 --queries 200 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPlatformBench(cmd, opts.configPath, opts.json, func(p *config.Platform, progress io.Writer) (*bench.QueryReport, error) {
				opts.Platform, opts.Progress = p, progress
				return bench.RunQuery(cmd.Context(), opts.QueryOptions)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.configPath, "config", "", "platform config with ClickHouse and the metastore (required)")
	f.IntVar(&opts.Events, "events", bench.DefaultQueryEvents, "events loaded")
	f.IntVar(&opts.Repeats, "queries", bench.DefaultQueryRepeats, "times each query is sent through the API and straight")
	f.IntVar(&opts.RawRepeats, "raw-queries", bench.DefaultQueryRawRepeats, "times each query is answered from the rollup and from the raw events")
	f.BoolVar(&opts.json, "json", false, "print the report as JSON")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
