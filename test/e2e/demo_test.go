package e2e_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemo runs the README's first command the way make demo does, stopping by itself once
// the sample tenants are Ready, so the demo cannot rot unnoticed.
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
	cmd.Env = append(os.Environ(), "SHOAL_DEMO_ONESHOT=1", "SHOAL_BIN="+env.Bin, "HOME="+kubectlHome, "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"tenant.analytics.shoal.dev/acme condition met",
		"tenant.analytics.shoal.dev/globex condition met",
		"pipeline.analytics.shoal.dev/checkout-revenue created",
		"Shoal is running",
		"demo: stopping",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
