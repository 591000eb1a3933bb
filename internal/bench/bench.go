// Package bench measures Shoal. Run measures how fast the operator provisions tenants: it
// runs the operator as a child process, creates many Shared tenants at once, and reports
// how long they took to get Ready, their latency spread and the operator's memory.
// RunIngest, RunProcess and RunFreshness measure the data path against the plainest client
// doing the same work (see docs/benchmarks.md). They report figures and the targets; the
// figures are not judged beyond that.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/kubescheme"
	"github.com/shoal-dev/shoal/internal/naming"
)

// RunLabel marks the benchmark's tenants; its value is the run's name prefix. The
// benchmark watches only tenants with it, and refuses to start while any are left over.
const RunLabel = naming.Domain + "/bench"

// Options configure a benchmark run.
type Options struct {
	// Tenants is how many tenants to create.
	Tenants int
	// Kubeconfig is the cluster's kubeconfig; the operator is given the same.
	Kubeconfig string
	// PlatformConfig is the operator's platform config. Tenants get its first plan.
	PlatformConfig string
	// OperatorBin is the shoal binary run as `OperatorBin operator ...`.
	OperatorBin string
	// Concurrency overrides the config's maxConcurrentReconciles when above zero.
	Concurrency int
	// Timeout bounds waiting for every tenant to be Ready, and again for every tenant to
	// be gone.
	Timeout time.Duration
	// Prefix names the tenants <prefix>-00001, <prefix>-00002, ...
	Prefix string
	// Keep leaves the tenants in place instead of deleting them.
	Keep bool
	// WorkDir receives the operator's config and log; a new temporary directory when empty.
	WorkDir string
	// Progress receives a progress line every few seconds, and where the log is.
	Progress io.Writer
}

// Tuning of a run. The creators keep a few requests in flight, enough to keep the API
// server busy without measuring its queueing; the waits are long enough for a slow first
// start of the operator and short enough not to hide a hang.
const (
	creators         = 4
	progressEvery    = 3 * time.Second
	rssEvery         = 200 * time.Millisecond
	operatorStart    = 2 * time.Minute
	operatorStopWait = 30 * time.Second
	notReadyShown    = 5
)

func (o *Options) validate() error {
	if o.Tenants < 1 {
		return fmt.Errorf("the number of tenants must be at least 1, not %d", o.Tenants)
	}
	if o.Kubeconfig == "" || o.PlatformConfig == "" || o.OperatorBin == "" {
		return errors.New("a kubeconfig, a platform config and the operator binary are required")
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("the timeout must be positive, not %s", o.Timeout)
	}
	if o.Concurrency < 0 {
		return fmt.Errorf("the concurrency must not be negative, not %d", o.Concurrency)
	}
	last := tenantName(o.Prefix, o.Tenants-1)
	// Tenant names become namespaces tenant-<name>; the CRD allows 56 characters.
	if msgs := validation.IsDNS1123Label(last); len(msgs) > 0 || len(last) > 56 {
		return fmt.Errorf("prefix %q gives tenant names like %q, which are not DNS labels of at most 56 characters", o.Prefix, last)
	}
	if msgs := validation.IsValidLabelValue(o.Prefix); len(msgs) > 0 {
		return fmt.Errorf("prefix %q is not a label value: %v", o.Prefix, msgs)
	}
	return nil
}

func tenantName(prefix string, i int) string { return fmt.Sprintf("%s-%05d", prefix, i+1) }

// Run runs the benchmark. A run in which not every tenant got Ready in time returns a
// report with TimedOut set and no error; its tenants are left in place for inspection.
// Errors are for runs that could not measure at all.
func Run(ctx context.Context, opts Options) (_ *Report, err error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", opts.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", opts.Kubeconfig, err)
	}
	// No client-side rate limit: the API server is what is to set the pace.
	restConfig.QPS, restConfig.Burst = -1, 0
	scheme, err := kubescheme.New()
	if err != nil {
		return nil, err
	}
	c, err := client.New(restConfig, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	if err := checkNoLeftovers(ctx, c, opts.Prefix); err != nil {
		return nil, err
	}

	platform, doc, err := OperatorConfig(opts.PlatformConfig, opts.Concurrency)
	if err != nil {
		return nil, err
	}
	workDir := opts.WorkDir
	if workDir == "" {
		if workDir, err = os.MkdirTemp("", "shoal-bench-"); err != nil {
			return nil, err
		}
	}
	configPath := filepath.Join(workDir, "platform.yaml")
	if err := os.WriteFile(configPath, doc, 0o600); err != nil {
		return nil, fmt.Errorf("writing the operator's platform config: %w", err)
	}

	names := make([]string, opts.Tenants)
	for i := range names {
		names[i] = tenantName(opts.Prefix, i)
	}
	track := newTracker(names, time.Now)
	stopWatch, err := watchTenants(ctx, restConfig, scheme, opts.Prefix, track)
	if err != nil {
		return nil, err
	}
	defer stopWatch()

	logPath := filepath.Join(workDir, "operator.log")
	_, _ = fmt.Fprintf(progress, "operator log: %s\n", logPath)
	op, err := startOperator(opts.OperatorBin, configPath, opts.Kubeconfig, logPath)
	if err != nil {
		return nil, err
	}
	defer func() {
		if stopErr := op.stop(operatorStopWait); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
	}()
	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	rss := &rssSampler{pid: op.pid()}
	go rss.run(sampleCtx, rssEvery)
	if err := op.waitStarted(ctx, operatorStart); err != nil {
		return nil, err
	}

	report := &Report{
		Tenants:     opts.Tenants,
		Concurrency: platform.Operator.MaxConcurrentReconciles,
		CPUs:        runtime.NumCPU(),
		Timeout:     opts.Timeout.Seconds(),
		OperatorLog: logPath,
	}
	plan := platform.Plans[0].Name
	start := time.Now()
	createdAt, err := forEach(ctx, names, func(ctx context.Context, name string) error {
		return c.Create(ctx, benchTenant(name, opts.Prefix, plan))
	})
	if err != nil {
		return nil, fmt.Errorf("creating tenants (%d tenants labelled %s=%s may be left): %w", len(createdAt), RunLabel, opts.Prefix, err)
	}
	report.CreateSeconds = time.Since(start).Seconds()
	_, _ = fmt.Fprintf(progress, "created %d tenants in %.1fs\n", opts.Tenants, report.CreateSeconds)

	allReady := func() (bool, string) {
		ready, _ := track.counts()
		return ready == opts.Tenants, fmt.Sprintf("ready %d/%d", ready, opts.Tenants)
	}
	inTime, err := wait(ctx, op, start, opts.Timeout, progress, allReady)
	if err != nil {
		return nil, err
	}
	fillReadiness(report, track, createdAt, start, opts.Timeout)
	if !inTime {
		report.TimedOut = true
		report.NotReady = track.notReady(notReadyShown)
		report.OperatorPeakRSSMiB = rss.peakMiB()
		return report, nil
	}

	if !opts.Keep {
		deleteStart := time.Now()
		if _, err := forEach(ctx, names, func(ctx context.Context, name string) error {
			return client.IgnoreNotFound(c.Delete(ctx, &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: name}}))
		}); err != nil {
			return nil, fmt.Errorf("deleting tenants: %w", err)
		}
		allGone := func() (bool, string) {
			_, gone := track.counts()
			return gone == opts.Tenants, fmt.Sprintf("gone %d/%d", gone, opts.Tenants)
		}
		inTime, err := wait(ctx, op, deleteStart, opts.Timeout, progress, allGone)
		if err == nil && !inTime {
			err = fmt.Errorf("not every tenant was gone %s after the deletes; see %s", opts.Timeout, logPath)
		}
		if err != nil {
			return nil, fmt.Errorf("deleting tenants: %w", err)
		}
		deleted := time.Since(deleteStart).Seconds()
		report.DeleteSeconds = &deleted
	}
	report.OperatorPeakRSSMiB = rss.peakMiB()
	return report, nil
}

// checkNoLeftovers refuses to run while tenants of an earlier run with the same prefix
// exist: their names would clash and their reconciles would be measured.
func checkNoLeftovers(ctx context.Context, c client.Client, prefix string) error {
	var list v1alpha1.TenantList
	if err := c.List(ctx, &list, client.MatchingLabels{RunLabel: prefix}, client.Limit(1)); err != nil {
		return fmt.Errorf("listing tenants of earlier runs: %w", err)
	}
	if len(list.Items) > 0 {
		return fmt.Errorf("tenants of an earlier run with prefix %q exist (%s); delete them with `kubectl delete tenants -l %s=%s` or choose another --prefix",
			prefix, list.Items[0].Name, RunLabel, prefix)
	}
	return nil
}

// watchTenants starts an informer on the run's tenants feeding track, and waits for its
// first list. The returned func stops it.
func watchTenants(ctx context.Context, restConfig *rest.Config, scheme *k8sruntime.Scheme, prefix string, track *tracker) (func(), error) {
	informers, err := cache.New(restConfig, cache.Options{
		Scheme:               scheme,
		DefaultLabelSelector: labels.SelectorFromSet(labels.Set{RunLabel: prefix}),
	})
	if err != nil {
		return nil, fmt.Errorf("creating the tenant informer: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	var startErr error // read once stopped is closed
	go func() {
		defer close(stopped)
		if startErr = informers.Start(ctx); startErr != nil {
			cancel() // so that waiting for the first list ends
		}
	}()
	informer, err := informers.GetInformer(ctx, &v1alpha1.Tenant{})
	if err == nil {
		_, err = informer.AddEventHandler(track.handler())
	}
	if err == nil && !informers.WaitForCacheSync(ctx) {
		err = errors.New("the tenant informer did not sync")
	}
	if err != nil {
		cancel()
		<-stopped
		return nil, fmt.Errorf("watching tenants: %w", errors.Join(err, startErr))
	}
	return func() { cancel(); <-stopped }, nil
}

// benchTenant is the tenant the benchmark creates: the smallest Shared tenant that goes
// through every provisioning phase, and whose deletion drops everything it made.
func benchTenant(name, prefix, plan string) *v1alpha1.Tenant {
	return &v1alpha1.Tenant{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{RunLabel: prefix}},
		Spec: v1alpha1.TenantSpec{
			DisplayName:    "Benchmark tenant " + name,
			Plan:           plan,
			Isolation:      v1alpha1.IsolationShared,
			Owners:         []string{"owner@" + name + ".example"},
			DeletionPolicy: v1alpha1.DeletionDelete,
		},
	}
}

// forEach calls fn for every name from a few goroutines, and returns when each request
// was sent, by name, up to the first error.
func forEach(ctx context.Context, names []string, fn func(context.Context, string) error) (map[string]time.Time, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		sent  = make(map[string]time.Time, len(names))
		first error
		next  atomic.Int64
		wg    sync.WaitGroup
	)
	for range min(creators, len(names)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(names) || ctx.Err() != nil {
					return
				}
				at := time.Now()
				err := fn(ctx, names[i])
				mu.Lock()
				if err != nil && first == nil {
					first = fmt.Errorf("%s: %w", names[i], err)
					cancel()
				}
				if err == nil {
					sent[names[i]] = at
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return sent, first
}

// wait polls done until it holds, printing its status every few seconds, and reports
// whether it held before timeout passed since start. It fails when the operator exits or
// ctx ends. done reads state an informer keeps, so polling it costs the API server nothing.
func wait(ctx context.Context, op *operatorProcess, start time.Time, timeout time.Duration, progress io.Writer, done func() (bool, string)) (bool, error) {
	deadline := time.NewTimer(time.Until(start.Add(timeout)))
	defer deadline.Stop()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	report := time.NewTicker(progressEvery)
	defer report.Stop()
	for {
		ok, status := done()
		if ok {
			_, _ = fmt.Fprintf(progress, "%s after %.1fs\n", status, time.Since(start).Seconds())
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-op.exited:
			return false, op.exitError()
		case <-deadline.C:
			_, _ = fmt.Fprintf(progress, "%s after %.1fs: timed out\n", status, time.Since(start).Seconds())
			return false, nil
		case <-report.C:
			_, _ = fmt.Fprintf(progress, "%s after %.1fs\n", status, time.Since(start).Seconds())
		case <-poll.C:
		}
	}
}

// fillReadiness puts the readiness figures into report: how many got Ready, when the
// last did, and the latencies from each one's create request.
func fillReadiness(report *Report, track *tracker, createdAt map[string]time.Time, start time.Time, timeout time.Duration) {
	readyAt := track.readyTimes()
	latencies := make([]time.Duration, 0, len(readyAt))
	var last time.Time
	for name, at := range readyAt {
		latencies = append(latencies, at.Sub(createdAt[name]))
		if at.After(last) {
			last = at
		}
	}
	report.Ready = len(readyAt)
	report.Latency = LatencyOf(latencies)
	report.ReadySeconds = last.Sub(start).Seconds()
	if report.Ready < report.Tenants {
		report.ReadySeconds = timeout.Seconds()
	}
	if report.ReadySeconds > 0 {
		report.TenantsPerSecond = float64(report.Ready) / report.ReadySeconds
	}
}
