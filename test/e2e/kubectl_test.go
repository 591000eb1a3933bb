// Package e2e_test drives Shoal the way a platform engineer does: with kubectl against a
// real kube-apiserver, the operator running in-process with the example platform config.
// It checks what kubectl shows (printer columns, short names, explain), that the samples
// apply, that an invalid Tenant is refused with a readable message, and that deleting a
// Tenant removes its namespace.
package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/shoal-dev/shoal/internal/cli"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/testbackends"
	"github.com/shoal-dev/shoal/internal/testenv"
	"github.com/shoal-dev/shoal/internal/testplatform"
)

var (
	// env is the API server the operator and kubectl talk to.
	env *testenv.Env
	// kubectlHome is $HOME for kubectl, so its cache stays out of the user's home.
	kubectlHome string
	// operatorLog collects the operator's log, printed when a test fails.
	operatorLog lockedBuffer
)

// kubectlTimeout bounds one kubectl run; the waits inside it use 60s.
const kubectlTimeout = 90 * time.Second

const (
	sharedSample    = "config/samples/analytics_v1alpha1_tenant_shared.yaml"
	dedicatedSample = "config/samples/analytics_v1alpha1_tenant_dedicated.yaml"
	samplesDir      = "config/samples"
	acmeNamespace   = "tenant-acme"
)

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.WriteTo(&operatorLog), zap.UseDevMode(true)))
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e tests:", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping test API server:", err)
		}
	}()
	kubectlHome, err = os.MkdirTemp("", "shoal-e2e-home-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(kubectlHome) }()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := env.RunNamespaceController(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "starting the namespace controller:", err)
		return 1
	}
	platform, err := config.Load(filepath.Join(env.Root, "config", "platform.yaml"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	platform.Operator.MetricsAddr = "0"
	platform.Operator.HealthAddr = "0"
	// Links the operator writes (a Dashboard's status.url) are built on it.
	platform.Query.PublicURL = "http://shoal.test"
	suite := testbackends.NewSuite("e2e")
	defer suite.Close()
	var servers *testplatform.Platform
	if err := suite.Do(func(tb testing.TB) { servers = testplatform.Start(tb, false) }); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	servers.Configure(platform)
	dataPathPlatform = platform
	backends = servers
	// Stand-ins for the Altinity operator and the deployment controller, so the Dedicated
	// sample can become Ready.
	if err := env.RunInstallationStandIn(ctx, servers.ClickHouse.Addr, servers.ClickHouse.UsersDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := env.RunDeploymentStandIn(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mgr, closeBackends, err := cli.NewManager(ctx, env.Config, platform)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer closeBackends()
	stopped := make(chan error, 1)
	go func() { stopped <- mgr.Start(ctx) }()

	code := m.Run()

	cancel()
	select {
	case err := <-stopped:
		if err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "operator:", err)
			code = 1
		}
	case <-time.After(30 * time.Second):
		fmt.Fprintln(os.Stderr, "operator did not stop within 30s")
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- operator log (last 80 lines):\n%s\n", lastLines(operatorLog.String(), 80))
	}
	return code
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// result is one kubectl run.
type result struct {
	cmd            string
	stdout, stderr string
	err            error
}

func (r result) String() string {
	return fmt.Sprintf("%s\nerror: %v\nstdout:\n%s\nstderr:\n%s", r.cmd, r.err, r.stdout, r.stderr)
}

// kubectl runs the built kubectl against the test API server from the repository root,
// within kubectlTimeout.
func kubectl(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	full := append([]string{"--kubeconfig", env.Kubeconfig}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(env.Bin, "kubectl"), full...)
	cmd.Dir = env.Root
	cmd.Env = append(os.Environ(), "HOME="+kubectlHome, "KUBECONFIG=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %s: %w", kubectlTimeout, err)
	}
	quoted := make([]string, len(full))
	for i, a := range full {
		quoted[i] = a
		if a == "" || strings.ContainsAny(a, " \t\"'*{}[]$") {
			quoted[i] = strconv.Quote(a)
		}
	}
	return result{
		cmd:    "kubectl " + strings.Join(quoted, " "),
		stdout: stdout.String(),
		stderr: stderr.String(),
		err:    err,
	}
}

// mustKubectl runs kubectl and fails the test unless it succeeds; it returns stdout.
func mustKubectl(t *testing.T, args ...string) string {
	t.Helper()
	r := kubectl(t, args...)
	if r.err != nil {
		t.Fatalf("kubectl failed:\n%s", r)
	}
	return r.stdout
}

// table is one table kubectl printed: its column names and rows.
type table struct {
	header []string
	rows   []map[string]string
}

// parseTables splits kubectl's output into its tables (one per kind, separated by blank
// lines) and cuts each row at the columns of its header, so empty cells stay empty.
func parseTables(out string) []table {
	var tables []table
	for _, block := range regexp.MustCompile(`\n\s*\n`).Split(strings.TrimSpace(out), -1) {
		lines := strings.Split(block, "\n")
		head := lines[0]
		var starts []int
		for i := 0; i < len(head); i++ {
			if head[i] != ' ' && (i == 0 || (i >= 2 && head[i-1] == ' ' && head[i-2] == ' ')) {
				starts = append(starts, i)
			}
		}
		cell := func(line string, k int) string {
			from := starts[k]
			if from >= len(line) {
				return ""
			}
			to := len(line)
			if k+1 < len(starts) && starts[k+1] < to {
				to = starts[k+1]
			}
			return strings.TrimSpace(line[from:to])
		}
		var tb table
		for k := range starts {
			tb.header = append(tb.header, cell(head, k))
		}
		for _, line := range lines[1:] {
			row := map[string]string{}
			for k, name := range tb.header {
				row[name] = cell(line, k)
			}
			tb.rows = append(tb.rows, row)
		}
		tables = append(tables, tb)
	}
	return tables
}

func singleTable(t *testing.T, out string) table {
	t.Helper()
	tables := parseTables(out)
	if len(tables) != 1 {
		t.Fatalf("want one table, got %d:\n%s", len(tables), out)
	}
	return tables[0]
}

func assertHeader(t *testing.T, tb table, want ...string) {
	t.Helper()
	if strings.Join(tb.header, "|") != strings.Join(want, "|") {
		t.Errorf("columns %q, want %q", tb.header, want)
	}
}

// assertRow checks the table has a row named name whose cells include want.
func assertRow(t *testing.T, tb table, name string, want map[string]string) {
	t.Helper()
	for _, row := range tb.rows {
		if row["NAME"] != name {
			continue
		}
		for col, v := range want {
			if row[col] != v {
				t.Errorf("row %s: %s = %q, want %q (row %v)", name, col, row[col], v, row)
			}
		}
		return
	}
	t.Errorf("no row named %s in %v", name, tb.rows)
}

// squash collapses whitespace runs, so text kubectl wrapped can be matched.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// TestKubectl walks through the life of two tenants and a tenant's objects with kubectl.
// Its steps build on each other, so the first failing step ends it.
func TestKubectl(t *testing.T) {
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("apply the tenant samples", func(t *testing.T) {
		out := mustKubectl(t, "apply", "-f", sharedSample, "-f", dedicatedSample)
		for _, want := range []string{"tenant.analytics.shoal.dev/acme created", "tenant.analytics.shoal.dev/globex created"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	step("wait for Ready", func(t *testing.T) {
		out := mustKubectl(t, "wait", "--for=condition=Ready", "tenant/acme", "tenant/globex", "--timeout=60s")
		if n := strings.Count(out, "condition met"); n != 2 {
			t.Errorf("%d tenants met the condition, want 2:\n%s", n, out)
		}
	})

	step("get tenants", func(t *testing.T) {
		tb := singleTable(t, mustKubectl(t, "get", "tenants"))
		assertHeader(t, tb, "NAME", "PLAN", "ISOLATION", "READY", "AGE")
		assertRow(t, tb, "acme", map[string]string{"PLAN": "team", "ISOLATION": "Shared", "READY": "True"})
		assertRow(t, tb, "globex", map[string]string{"PLAN": "enterprise", "ISOLATION": "Dedicated", "READY": "True"})
		for _, row := range tb.rows {
			if row["AGE"] == "" || row["AGE"] == "<unknown>" {
				t.Errorf("row %s has no age: %v", row["NAME"], row)
			}
		}
	})

	step("get tenants -o wide", func(t *testing.T) {
		tb := singleTable(t, mustKubectl(t, "get", "tenants", "-o", "wide"))
		assertHeader(t, tb, "NAME", "PLAN", "ISOLATION", "READY", "SUSPENDED", "REASON", "NAMESPACE", "AGE")
		assertRow(t, tb, "acme", map[string]string{"READY": "True", "SUSPENDED": "False", "REASON": "Provisioned", "NAMESPACE": "tenant-acme"})
		assertRow(t, tb, "globex", map[string]string{"READY": "True", "SUSPENDED": "False", "REASON": "Provisioned", "NAMESPACE": "tenant-globex"})
	})

	// The samples' own comments tell users to apply them one by one with -f; kubectl -f
	// reads YAML differently from kustomize (-k), so each file is tried alone.
	t.Run("each sample applies alone with -f (server dry run)", func(t *testing.T) {
		files, err := filepath.Glob(filepath.Join(env.Root, samplesDir, "*.yaml"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no samples: %v", err)
		}
		for _, f := range files {
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			rel := filepath.Join(samplesDir, filepath.Base(f))
			if r := kubectl(t, "apply", "--dry-run=server", "-f", rel); r.err != nil {
				t.Errorf("sample %s is refused:\n%s", rel, r)
			}
		}
	})

	step("apply -k config/samples", func(t *testing.T) {
		out := mustKubectl(t, "apply", "-k", samplesDir)
		for _, want := range []string{
			"tenant.analytics.shoal.dev/acme unchanged",
			"tenant.analytics.shoal.dev/globex unchanged",
			"pipeline.analytics.shoal.dev/checkout-revenue created",
			"dashboard.analytics.shoal.dev/revenue created",
			"datasource.analytics.shoal.dev/shop-orders created",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	step("get pipelines,dashboards,datasources", func(t *testing.T) {
		out := mustKubectl(t, "get", "pipelines,dashboards,datasources", "-n", acmeNamespace)
		tables := parseTables(out)
		if len(tables) != 3 {
			t.Fatalf("want 3 tables, got %d:\n%s", len(tables), out)
		}
		assertHeader(t, tables[0], "NAME", "EVENT TYPES", "READY", "TABLE", "AGE")
		assertRow(t, tables[0], "pipeline.analytics.shoal.dev/checkout-revenue", map[string]string{"EVENT TYPES": `["checkout_completed"]`})
		assertHeader(t, tables[1], "NAME", "TITLE", "PUBLIC", "READY", "AGE")
		assertRow(t, tables[1], "dashboard.analytics.shoal.dev/revenue", map[string]string{"TITLE": "Revenue", "PUBLIC": "false"})
		assertHeader(t, tables[2], "NAME", "TYPE", "SCHEDULE", "READY", "AGE")
		assertRow(t, tables[2], "datasource.analytics.shoal.dev/shop-orders", map[string]string{"TYPE": "postgres", "SCHEDULE": "*/5 * * * *"})
	})

	step("short names and the shoal category", func(t *testing.T) {
		tb := singleTable(t, mustKubectl(t, "get", "tnt"))
		assertRow(t, tb, "acme", map[string]string{"PLAN": "team"})
		assertRow(t, tb, "globex", map[string]string{"PLAN": "enterprise"})

		tb = singleTable(t, mustKubectl(t, "get", "pipe", "-n", acmeNamespace))
		assertHeader(t, tb, "NAME", "EVENT TYPES", "READY", "TABLE", "AGE")
		assertRow(t, tb, "checkout-revenue", nil)

		tb = singleTable(t, mustKubectl(t, "get", "dash", "-n", acmeNamespace))
		assertRow(t, tb, "revenue", map[string]string{"TITLE": "Revenue"})

		tb = singleTable(t, mustKubectl(t, "get", "dsrc", "-n", acmeNamespace))
		assertRow(t, tb, "shop-orders", map[string]string{"TYPE": "postgres"})

		out := mustKubectl(t, "get", "shoal", "-n", acmeNamespace, "-o", "name")
		for _, want := range []string{
			"tenant.analytics.shoal.dev/acme",
			"tenant.analytics.shoal.dev/globex",
			"pipeline.analytics.shoal.dev/checkout-revenue",
			"dashboard.analytics.shoal.dev/revenue",
			"datasource.analytics.shoal.dev/shop-orders",
		} {
			if !strings.Contains(out, want+"\n") {
				t.Errorf("get shoal lacks %s:\n%s", want, out)
			}
		}
	})

	step("explain", func(t *testing.T) {
		out := squash(mustKubectl(t, "explain", "tenant.spec.isolation"))
		for _, want := range []string{"KIND: Tenant", "FIELD: isolation <string>", "ENUM: Shared Dedicated", "cannot be changed after creation"} {
			if !strings.Contains(out, want) {
				t.Errorf("explain tenant.spec.isolation lacks %q:\n%s", want, out)
			}
		}
		out = squash(mustKubectl(t, "explain", "pipeline.spec.metrics.type"))
		for _, want := range []string{"KIND: Pipeline", "FIELD: type <string>", "ENUM: count sum avg min max uniq quantile", "Type is the aggregation"} {
			if !strings.Contains(out, want) {
				t.Errorf("explain pipeline.spec.metrics.type lacks %q:\n%s", want, out)
			}
		}
	})

	step("an invalid tenant is refused with the rule's message", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "initech.yaml")
		manifest := `apiVersion: analytics.shoal.dev/v1alpha1
kind: Tenant
metadata:
  name: initech
spec:
  displayName: Initech
  plan: free
  isolation: Shared
  owners: [it@initech.example]
  dedicated:
    clickhouse:
      storage: 10Gi
`
		if err := os.WriteFile(file, []byte(manifest), 0o600); err != nil {
			t.Fatal(err)
		}
		r := kubectl(t, "apply", "-f", file)
		if r.err == nil {
			t.Fatalf("the invalid tenant was accepted:\n%s", r)
		}
		for _, want := range []string{`The Tenant "initech" is invalid`, "spec.dedicated is only allowed with isolation: Dedicated"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, r)
			}
		}
		if r := kubectl(t, "get", "tenant", "initech"); r.err == nil || !strings.Contains(r.stderr, "NotFound") {
			t.Errorf("tenant initech exists after the refusal:\n%s", r)
		}

		r = kubectl(t, "patch", "tenant", "globex", "--type=merge", "-p", `{"spec":{"isolation":"Shared","dedicated":null}}`)
		if r.err == nil {
			t.Fatalf("changing globex's isolation was accepted:\n%s", r)
		}
		if want := "isolation cannot be changed after creation; moving a tenant between Shared and Dedicated is a promotion"; !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r)
		}
	})

	step("describe tenant globex", func(t *testing.T) {
		// Events are written asynchronously, so wait for them to show up.
		var out string
		testenv.Eventually(t, 30*time.Second, func() error {
			out = mustKubectl(t, "describe", "tenant", "globex")
			for _, re := range []string{
				`(?m)^Events:\n`,
				// The age may read "35s (x2 over 35s)" when an event repeats.
				`Normal\s+NamespaceCreated\s+\S+( \(x\d+ over \S+\))?\s+shoal-operator\s+NamespaceReady=True: namespace tenant-globex exists`,
				`Normal\s+Provisioned\s+\S+( \(x\d+ over \S+\))?\s+shoal-operator\s+Ready=True: every provisioning phase is ready`,
			} {
				if !regexp.MustCompile(re).MatchString(out) {
					return fmt.Errorf("describe does not match %s:\n%s", re, out)
				}
			}
			return nil
		})
		if strings.Contains(out, " over ") {
			t.Logf("note: a condition transition of globex was recorded more than once:\n%s", out[strings.Index(out, "Events:"):])
		}
		for _, re := range []string{
			`(?m)^Status:\n\s+Conditions:`,
			`Reason:\s+NamespaceCreated\n\s+Status:\s+True\n\s+Type:\s+NamespaceReady`,
			`Reason:\s+Provisioned\n\s+Status:\s+True\n\s+Type:\s+Ready`,
			`(?m)^\s+Namespace:\s+tenant-globex$`,
			`Isolation:\s+Dedicated`,
		} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("describe does not match %s:\n%s", re, out)
			}
		}
	})

	step("delete tenant acme", func(t *testing.T) {
		out := mustKubectl(t, "delete", "tenant", "acme", "--wait", "--timeout=60s")
		if !strings.Contains(out, `tenant.analytics.shoal.dev "acme" deleted`) {
			t.Errorf("unexpected output: %s", out)
		}
		if r := kubectl(t, "get", "namespace", acmeNamespace); r.err == nil || !strings.Contains(r.stderr, `namespaces "tenant-acme" not found`) {
			t.Errorf("namespace %s is still there after its tenant was deleted:\n%s", acmeNamespace, r)
		}
		if r := kubectl(t, "get", "tenant", "acme"); r.err == nil || !strings.Contains(r.stderr, "NotFound") {
			t.Errorf("tenant acme is still there:\n%s", r)
		}
		if r := kubectl(t, "get", "pipelines,dashboards,datasources", "-n", acmeNamespace, "-o", "name"); r.err != nil || strings.TrimSpace(r.stdout) != "" {
			t.Errorf("objects of tenant acme are left:\n%s", r)
		}
		// The other tenant is untouched.
		tb := singleTable(t, mustKubectl(t, "get", "tenants", "-o", "wide"))
		if len(tb.rows) != 1 {
			t.Errorf("want only globex left, got %v", tb.rows)
		}
		assertRow(t, tb, "globex", map[string]string{"READY": "True", "NAMESPACE": "tenant-globex"})
		mustKubectl(t, "get", "namespace", "tenant-globex")

		testenv.Eventually(t, 30*time.Second, func() error {
			out := mustKubectl(t, "get", "events", "-n", "default", "--field-selector", "involvedObject.name=acme,reason=Deleting")
			if !strings.Contains(out, "cleanup finished; namespace tenant-acme removed") {
				return fmt.Errorf("no Deleting event for acme:\n%s", out)
			}
			return nil
		})
	})
}
