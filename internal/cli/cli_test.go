package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/internal/version"
)

func run(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Main(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := run("version")
	if code != 0 || out != "shoal "+version.Version+"\n" {
		t.Errorf("version: code %d, output %q", code, out)
	}
}

func TestHelpDescribesEachCommand(t *testing.T) {
	code, out, _ := run("--help")
	if code != 0 {
		t.Fatalf("--help exited %d", code)
	}
	for _, want := range []string{"operator", "version", "Run the control plane"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
	_, out, _ = run("operator", "--help")
	for _, want := range []string{"--config", "--kubeconfig", "tenant-<name>", "plan catalog"} {
		if !strings.Contains(out, want) {
			t.Errorf("operator --help lacks %q:\n%s", want, out)
		}
	}
}

func TestOperatorConfigErrors(t *testing.T) {
	code, _, stderr := run("operator")
	if code == 0 || !strings.Contains(stderr, `required flag(s) "config" not set`) {
		t.Errorf("without --config: code %d, stderr %q", code, stderr)
	}

	path := filepath.Join(t.TempDir(), "platform.yaml")
	doc := "apiVersion: config.shoal.dev/v1alpha1\nkind: PlatformConfig\nplans: [{name: Bad Name}]\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = run("operator", "--config", path)
	if code == 0 || !strings.Contains(stderr, "plans[0].name") {
		t.Errorf("invalid config: code %d, stderr %q; want the field named", code, stderr)
	}
}

func TestUnknownCommand(t *testing.T) {
	code, _, stderr := run("frobnicate")
	if code == 0 || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("code %d, stderr %q", code, stderr)
	}
}
