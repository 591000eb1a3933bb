package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/api/v1alpha1"
)

func TestPercentile(t *testing.T) {
	ten := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value is every percentile", []time.Duration{7}, 1, 7},
		{"one value p100", []time.Duration{7}, 100, 7},
		{"p50 of ten is the fifth", ten, 50, 5},
		{"p90 of ten is the ninth", ten, 90, 9},
		{"p99 of ten is the tenth", ten, 99, 10},
		{"p100 is the max", ten, 100, 10},
		{"p0 is the min", ten, 0, 1},
		{"p50 of two is the lower", []time.Duration{1, 2}, 50, 1},
		{"p51 of two is the upper", []time.Duration{1, 2}, 51, 2},
		{"p99 of a hundred is the 99th", hundred, 99, 99 * time.Millisecond},
		{"p99.5 of a hundred rounds up", hundred, 99.5, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

func TestLatencyOf(t *testing.T) {
	for _, tc := range []struct {
		name      string
		latencies []time.Duration
		want      Latency
	}{
		{"none", nil, Latency{}},
		{"unsorted input", []time.Duration{3 * time.Second, time.Second, 2 * time.Second},
			Latency{P50: 2, P90: 3, P99: 3, Max: 3}},
		{"a slow tail shows in p99 and max only",
			append(repeat(time.Second, 98), 5*time.Second, 60*time.Second),
			Latency{P50: 1, P90: 1, P99: 5, Max: 60}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := LatencyOf(tc.latencies); got != tc.want {
				t.Errorf("LatencyOf = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestWriteText(t *testing.T) {
	deleted := 4.25
	for _, tc := range []struct {
		name   string
		report Report
		want   string
	}{
		{
			name: "every tenant ready, then deleted",
			report: Report{
				Tenants: 100, Ready: 100, Concurrency: 4, CPUs: 2,
				CreateSeconds: 0.8, ReadySeconds: 12.5, TenantsPerSecond: 8,
				Latency:            Latency{P50: 5.1, P90: 9.25, P99: 11.999, Max: 12.4},
				OperatorPeakRSSMiB: 71.44, DeleteSeconds: &deleted, Timeout: 600,
				OperatorLog: "/work/operator.log",
			},
			want: `tenants            100
ready              100/100
concurrency        4
cpus               2
created all in     0.80s
all ready in       12.50s
tenants/s          8.00
create-to-ready    p50 5.10s  p90 9.25s  p99 12.00s  max 12.40s
operator peak RSS  71.4 MiB
deleted all in     4.25s
operator log       /work/operator.log
`,
		},
		{
			name: "timed out, tenants kept",
			report: Report{
				Tenants: 10, Ready: 8, Concurrency: 1, CPUs: 2,
				CreateSeconds: 0.1, ReadySeconds: 60, TenantsPerSecond: 8.0 / 60,
				Latency:            Latency{P50: 2, P90: 3, P99: 3, Max: 3},
				OperatorPeakRSSMiB: 50, TimedOut: true, Timeout: 60,
				NotReady: []NotReady{
					{Name: "bench-00009", Reason: "PhaseNotReady", Message: "TopicReady: kafka unreachable"},
					{Name: "bench-00010", Message: "no Ready condition yet"},
				},
				OperatorLog: "op.log",
			},
			want: `tenants            10
ready              8/10
concurrency        1
cpus               2
created all in     0.10s
all ready in       timed out after 60.00s
tenants/s          0.13
create-to-ready    p50 2.00s  p90 3.00s  p99 3.00s  max 3.00s
operator peak RSS  50.0 MiB
operator log       op.log
not ready (2 of 10; the first 2):
  bench-00009  PhaseNotReady: TopicReady: kafka unreachable
  bench-00010  no Ready condition yet
`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := tc.report.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("WriteText:\n%s\nwant:\n%s", b.String(), tc.want)
			}
		})
	}
}

// A real status of a running process, shortened.
const procStatus = `Name:	shoal
Umask:	0022
State:	S (sleeping)
Tgid:	4242
Pid:	4242
VmPeak:	 1292224 kB
VmSize:	 1292224 kB
VmLck:	       0 kB
VmHWM:	   88120 kB
VmRSS:	   61440 kB
RssAnon:	   30000 kB
Threads:	12
`

func TestParseProcStatus(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  string
		want    ProcMemory
		wantErr string
	}{
		{"running process", procStatus, ProcMemory{RSS: 61440 << 10, HWM: 88120 << 10}, ""},
		{"no VmHWM", "Name:\tx\nVmRSS:\t 4 kB\n", ProcMemory{RSS: 4096}, ""},
		{"exited, not reaped", "Name:\tshoal\nState:\tZ (zombie)\nThreads:\t1\n", ProcMemory{}, "no VmRSS"},
		{"unexpected unit", "VmRSS:\t 4 MB\n", ProcMemory{}, "VmRSS: unexpected value"},
		{"not a number", "VmHWM:\t x kB\nVmRSS:\t 4 kB\n", ProcMemory{}, "VmHWM: unexpected value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseProcStatus([]byte(tc.status))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseProcStatus error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ParseProcStatus = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// The sampler reads this very process, whose status has both figures.
func TestRSSSamplerReadsThisProcess(t *testing.T) {
	s := &rssSampler{pid: os.Getpid()}
	if peak := s.peakMiB(); peak <= 0 {
		t.Errorf("peak RSS of the test process = %v MiB, want more than 0", peak)
	}
}

func TestIsReady(t *testing.T) {
	tenant := func(generation, observed, condObserved int64, status metav1.ConditionStatus) *v1alpha1.Tenant {
		t := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "a", Generation: generation}}
		t.Status.ObservedGeneration = observed
		if status != "" {
			t.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: status, ObservedGeneration: condObserved}}
		}
		return t
	}
	for _, tc := range []struct {
		name   string
		tenant *v1alpha1.Tenant
		want   bool
	}{
		{"ready for the current generation", tenant(2, 2, 2, metav1.ConditionTrue), true},
		{"no conditions yet", tenant(1, 0, 0, ""), false},
		{"not ready", tenant(1, 1, 1, metav1.ConditionFalse), false},
		{"status of an older generation", tenant(2, 1, 1, metav1.ConditionTrue), false},
		{"condition of an older generation", tenant(2, 2, 1, metav1.ConditionTrue), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isReady(tc.tenant); got != tc.want {
				t.Errorf("isReady = %v, want %v", got, tc.want)
			}
		})
	}
}

// A minimal valid platform config with billing on, so that the prices Load copies from
// the plans into billing.prices must not be written back.
const platformDoc = `apiVersion: config.shoal.dev/v1alpha1
kind: PlatformConfig
operator:
  metricsAddr: ":8080"
  healthAddr: ":8081"
  maxConcurrentReconciles: 4
plans:
  - name: free
    stripePriceID: price_free
  - name: team
    stripePriceID: price_team
kafka: {brokers: ["127.0.0.1:9092"]}
clickhouse: {addr: "127.0.0.1:9000", password: secret}
lake: {bucket: shoal-lake, endpoint: "http://127.0.0.1:7070", accessKeyID: a, secretAccessKey: b}
metastore: {dsn: "postgres://shoal@127.0.0.1:5432/shoal"}
billing: {secretKey: sk_test_123, apiBase: "http://127.0.0.1:12111"}
`

func TestOperatorConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "platform.yaml")
	if err := os.WriteFile(path, []byte(platformDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		concurrency int
		want        int
		wantErr     string
	}{
		{"the config's concurrency", 0, 4, ""},
		{"overridden", 16, 16, ""},
		{"out of range, named", 65, 0, "operator.maxConcurrentReconciles"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			platform, doc, err := OperatorConfig(path, tc.concurrency)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("OperatorConfig error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			op := platform.Operator
			if op.MaxConcurrentReconciles != tc.want || op.MetricsAddr != "0" || op.HealthAddr != "0" {
				t.Errorf("operator section %+v, want %d reconciles and both endpoints off", op, tc.want)
			}
			// What the operator is given must load the same way.
			written := filepath.Join(t.TempDir(), "platform.yaml")
			if err := os.WriteFile(written, doc, 0o600); err != nil {
				t.Fatal(err)
			}
			again, _, err := OperatorConfig(written, 0)
			if err != nil {
				t.Fatalf("the written config does not load: %v\n%s", err, doc)
			}
			if again.Operator.MaxConcurrentReconciles != tc.want || again.Billing.Prices["team"] != "price_team" ||
				again.ClickHouse.Password != "secret" || again.Plans[0].Name != "free" {
				t.Errorf("the written config lost settings:\n%s", doc)
			}
		})
	}
}
