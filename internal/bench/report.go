package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
	"time"
)

// Report is what one run of the tenant provisioning benchmark measured. Times are in
// seconds, memory in MiB, so the JSON form can be compared across runs without parsing.
type Report struct {
	// Tenants is how many tenants were created.
	Tenants int `json:"tenants"`
	// Ready is how many reached Ready=True for their current generation.
	Ready int `json:"ready"`
	// Concurrency is the operator's maxConcurrentReconciles.
	Concurrency int `json:"concurrency"`
	// CPUs is the number of CPUs of the machine the benchmark ran on.
	CPUs int `json:"cpus"`
	// CreateSeconds is from the first create request to the last one's answer.
	CreateSeconds float64 `json:"createSeconds"`
	// ReadySeconds is from the first create request to the last tenant seen Ready; when
	// the run timed out, to the timeout.
	ReadySeconds float64 `json:"readySeconds"`
	// TenantsPerSecond is Ready divided by ReadySeconds.
	TenantsPerSecond float64 `json:"tenantsPerSecond"`
	// Latency is the spread of create-to-Ready times of the tenants that got Ready.
	Latency Latency `json:"latencySeconds"`
	// OperatorPeakRSSMiB is the operator's peak resident memory over the whole run.
	OperatorPeakRSSMiB float64 `json:"operatorPeakRSSMiB"`
	// DeleteSeconds is from the first delete request until every tenant was gone; nil
	// when the tenants were kept.
	DeleteSeconds *float64 `json:"deleteSeconds,omitempty"`
	// TimedOut is true when not every tenant got Ready within the timeout.
	TimedOut bool `json:"timedOut"`
	// Timeout is the timeout the run had, in seconds.
	Timeout float64 `json:"timeoutSeconds"`
	// NotReady are a few of the tenants that did not get Ready, when the run timed out.
	NotReady []NotReady `json:"notReady,omitempty"`
	// OperatorLog is the file the operator's output went to.
	OperatorLog string `json:"operatorLog"`
}

// Latency are percentiles of create-to-Ready times, in seconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// NotReady is a tenant that did not get Ready, with what its Ready condition said.
type NotReady struct {
	Name    string `json:"name"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message"`
}

// LatencyOf returns the percentiles of latencies (in any order; an empty list gives zeros).
func LatencyOf(latencies []time.Duration) Latency {
	sorted := slices.Clone(latencies)
	slices.Sort(sorted)
	return Latency{
		P50: Percentile(sorted, 50).Seconds(),
		P90: Percentile(sorted, 90).Seconds(),
		P99: Percentile(sorted, 99).Seconds(),
		Max: Percentile(sorted, 100).Seconds(),
	}
}

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the nearest-rank
// method: the smallest value that at least p percent of the values are at or below. It is
// always one of the measured values, so a p99 of 100 tenants is the 99th slowest, not an
// interpolation. Zero for an empty list.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// WriteText writes the report for people: one figure a line, then what went wrong.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(name, format string, args ...any) {
		_, _ = fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{name}, args...)...)
	}
	line("tenants", "%d", r.Tenants)
	line("ready", "%d/%d", r.Ready, r.Tenants)
	line("concurrency", "%d", r.Concurrency)
	line("cpus", "%d", r.CPUs)
	line("created all in", "%s", seconds(r.CreateSeconds))
	if r.TimedOut {
		line("all ready in", "timed out after %s", seconds(r.Timeout))
	} else {
		line("all ready in", "%s", seconds(r.ReadySeconds))
	}
	line("tenants/s", "%.2f", r.TenantsPerSecond)
	line("create-to-ready", "p50 %s  p90 %s  p99 %s  max %s",
		seconds(r.Latency.P50), seconds(r.Latency.P90), seconds(r.Latency.P99), seconds(r.Latency.Max))
	line("operator peak RSS", "%.1f MiB", r.OperatorPeakRSSMiB)
	if r.DeleteSeconds != nil {
		line("deleted all in", "%s", seconds(*r.DeleteSeconds))
	}
	line("operator log", "%s", r.OperatorLog)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.NotReady) == 0 {
		return nil
	}
	if _, err := fmt.Fprintf(w, "not ready (%d of %d; the first %d):\n", r.Tenants-r.Ready, r.Tenants, len(r.NotReady)); err != nil {
		return err
	}
	for _, t := range r.NotReady {
		msg := t.Message
		if t.Reason != "" {
			msg = t.Reason + ": " + msg
		}
		if _, err := fmt.Fprintf(w, "  %s  %s\n", t.Name, msg); err != nil {
			return err
		}
	}
	return nil
}

func seconds(s float64) string { return fmt.Sprintf("%.2fs", s) }
