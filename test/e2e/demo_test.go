package e2e_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/metastore"
)

// TestDemo runs the README's first command the way make demo does, stopping by itself once
// the sample tenants are Ready and what they got is shown, so the demo cannot rot
// unnoticed.
func TestDemo(t *testing.T) {
	for _, name := range []string{"shoal", "shoal-localcluster"} {
		if _, err := os.Stat(filepath.Join(env.Bin, name)); err != nil {
			t.Fatalf("%s is not built: run `make build localcluster` (make test does)", name)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(env.Root, "hack", "demo.sh"))
	// SIGTERM lets the script's trap stop what it started; a kill would orphan them.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Dir = env.Root
	cmd.Env = append(os.Environ(), "SHOAL_DEMO_ONESHOT=1", "SHOAL_BIN="+env.Bin, "HOME="+kubectlHome, "TMPDIR="+demoTempDir(t))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	// The write key itself follows the Secret's command.
	if key := strings.TrimSpace(lineAfter(string(out), "acme-ingest-key -o jsonpath")); !strings.HasPrefix(key, metastore.KeyPrefix) {
		t.Errorf("demo output shows %q after the Secret's command, want an ingest key:\n%s", key, out)
	}
	// The sample events sent through shoal dev: all accepted, then counted in ClickHouse.
	if !regexp.MustCompile(`(?m)^\s+\{"accepted":20,`).Match(out) {
		t.Errorf("demo output lacks the ingest response accepting the 20 sample events:\n%s", out)
	}
	if _, err := exec.LookPath("clickhouse-client"); err == nil {
		if n := strings.TrimSpace(lineAfter(string(out), "SELECT count() FROM tenant_acme.events FINAL")); n != "20" {
			t.Errorf("demo output shows %q after the ClickHouse count, want 20:\n%s", n, out)
		}
	}
	// What the backends hold, where the demo has the client to look.
	for _, look := range []struct {
		tool string
		want *regexp.Regexp
	}{
		{"clickhouse-client", regexp.MustCompile(`(?m)^\s+events$`)},
		{"psql", regexp.MustCompile(`acme\s*\|\s*team\s*\|\s*Shared`)},
		{"curl", regexp.MustCompile(`<Key>standard/tenant=acme/`)},
		{"curl", regexp.MustCompile(`<Key>standard/tenant=acme/dt=[^<]+\.ndjson\.gz</Key>`)},
	} {
		if _, err := exec.LookPath(look.tool); err != nil {
			continue
		}
		if !look.want.Match(out) {
			t.Errorf("demo output lacks what %s shows, %s:\n%s", look.tool, look.want, out)
		}
	}
	for _, want := range []string{
		"tenant.analytics.shoal.dev/acme condition met",
		"tenant.analytics.shoal.dev/globex condition met",
		"pipeline.analytics.shoal.dev/checkout-revenue created",
		// What the Shared tenant got, read back from its status and the backends.
		`"name":"shoal-events-acme"`,
		`"name":"tenant_acme"`,
		"kubectl get secret -n tenant-acme acme-ingest-key",
		"SHOW TABLES FROM tenant_acme",
		"SELECT count() FROM tenant_acme.events FINAL",
		"/api/v1/events/ingest -H \"Authorization: Bearer $SHOAL_KEY\"",
		// The sample Pipeline built and serving, and the query API reading it.
		"pipeline.analytics.shoal.dev/checkout-revenue condition met",
		`"source":"rollup"`,
		`"revenue":`,
		`"title":"Revenue"`,
		"Shoal is running",
		"demo: stopping",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

// demoTempDir is TMPDIR for the demo. The backends it starts as root run PostgreSQL as an
// unprivileged user, which must be able to traverse it; t.TempDir is root's alone.
func demoTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "shoal-demo-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	return dir
}

// lineAfter returns the line following the first line containing marker, or "".
func lineAfter(out, marker string) string {
	lines := strings.Split(out, "\n")
	for i, line := range lines {
		if strings.Contains(line, marker) && i+1 < len(lines) {
			return lines[i+1]
		}
	}
	return ""
}
