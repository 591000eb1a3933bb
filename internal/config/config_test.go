package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const header = "apiVersion: config.shoal.dev/v1alpha1\nkind: PlatformConfig\n"

func TestParseValid(t *testing.T) {
	cfg, err := Parse([]byte(header + `
operator:
  maxConcurrentReconciles: 8
  deletionTimeout: 90s
plans:
  - name: free
  - name: team
    displayName: Team plan
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Operator.MaxConcurrentReconciles != 8 || cfg.Operator.DeletionTimeout.Duration != 90*time.Second {
		t.Errorf("operator = %+v", cfg.Operator)
	}
	if cfg.Operator.MetricsAddr != DefaultMetricsAddr || cfg.Operator.HealthAddr != DefaultHealthAddr {
		t.Errorf("defaults not applied: %+v", cfg.Operator)
	}
	if p, ok := cfg.Plan("free"); !ok || p.DisplayName != "free" {
		t.Errorf("plan free = %+v, %v; want display name defaulted to the name", p, ok)
	}
	if p, ok := cfg.Plan("team"); !ok || p.DisplayName != "Team plan" {
		t.Errorf("plan team = %+v, %v", p, ok)
	}
	if _, ok := cfg.Plan("gold"); ok {
		t.Error("found a plan that is not in the catalog")
	}
	if got := strings.Join(cfg.PlanNames(), ","); got != "free,team" {
		t.Errorf("PlanNames = %s", got)
	}
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []string
	}{
		{"wrong kind", "apiVersion: config.shoal.dev/v1alpha1\nkind: Config\nplans: [{name: free}]\n", []string{`kind: Unsupported value: "Config"`}},
		{"wrong apiVersion", "apiVersion: v1\nkind: PlatformConfig\nplans: [{name: free}]\n", []string{`apiVersion: Unsupported value: "v1"`}},
		{"no plans", header, []string{"plans: Required value: at least one plan"}},
		{"bad plan name", header + "plans: [{name: Gold_Plan}]\n", []string{`plans[0].name: Invalid value: "Gold_Plan": must be a DNS label`}},
		{"empty plan name", header + "plans: [{displayName: X}]\n", []string{"plans[0].name: Required value"}},
		{"duplicate plan", header + "plans: [{name: free}, {name: team}, {name: free}]\n", []string{`plans[2].name: Duplicate value: "free"`}},
		{"concurrency", header + "operator: {maxConcurrentReconciles: 100}\nplans: [{name: free}]\n", []string{"operator.maxConcurrentReconciles: Invalid value: 100: must be between 1 and 64"}},
		{"deletion timeout", header + "operator: {deletionTimeout: 1ms}\nplans: [{name: free}]\n", []string{"operator.deletionTimeout: Invalid value: \"1ms\""}},
		{"every error at once", "apiVersion: x\nkind: y\n", []string{"apiVersion:", "kind:", "plans:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("error %v is not a ValidationError", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestParseRejectsUnknownFields(t *testing.T) {
	_, err := Parse([]byte(header + "plans: [{name: free, price: 10}]\n"))
	if err == nil || !strings.Contains(err.Error(), `unknown field "plans[0].price"`) && !strings.Contains(err.Error(), `unknown field "price"`) {
		t.Fatalf("error = %v, want an unknown field error naming price", err)
	}
	var verr *ValidationError
	if errors.As(err, &verr) {
		t.Error("a decoding error is reported as a validation error")
	}
}

func TestLoad(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "reading platform config") {
		t.Errorf("missing file: %v", err)
	}
	path := filepath.Join(t.TempDir(), "platform.yaml")
	if err := os.WriteFile(path, []byte(header+"plans: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("invalid file: error %v should name the file", err)
	}
}

// The documented example must stay loadable.
func TestExampleConfig(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "..", "config", "platform.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Plans) == 0 {
		t.Error("example has no plans")
	}
}

func TestPlanLimits(t *testing.T) {
	cfg, err := Parse([]byte(header + `
plans:
  - name: free
  - name: team
    quota: {cpu: "16", memory: 32Gi, pods: 50}
    ingest: {eventsPerSecond: 5000, maxEventBytes: 65536}
    stripePriceID: price_team
`))
	if err != nil {
		t.Fatal(err)
	}
	free, _ := cfg.Plan("free")
	if free.Quota.CPU.String() != "4" || free.Quota.Memory.String() != "8Gi" || free.Quota.Pods != 20 {
		t.Errorf("free quota defaults = %+v", free.Quota)
	}
	if free.Ingest.EventsPerSecond != 1000 || free.Ingest.Burst != 2000 || free.Ingest.MaxRequestBytes != 5<<20 {
		t.Errorf("free ingest defaults = %+v", free.Ingest)
	}
	team, _ := cfg.Plan("team")
	if team.Quota.CPU.String() != "16" || team.Quota.Pods != 50 || team.Ingest.Burst != 10000 || team.StripePriceID != "price_team" {
		t.Errorf("team = %+v", team)
	}

	for _, tc := range []struct{ plan, want string }{
		{"{name: x, quota: {cpu: \"-1\"}}", `plans[0].quota.cpu: Invalid value: "-1": must be greater than zero`},
		{"{name: x, quota: {pods: 100000}}", "plans[0].quota.pods: Invalid value: 100000: must be between 1 and 10000"},
		{"{name: x, ingest: {eventsPerSecond: -5}}", "plans[0].ingest.eventsPerSecond: Invalid value: -5"},
		{"{name: x, ingest: {maxEventBytes: 65536, maxRequestBytes: 2048}}", "plans[0].ingest.maxEventBytes: Invalid value: 65536: must not exceed maxRequestBytes"},
	} {
		_, err := Parse([]byte(header + "plans: [" + tc.plan + "]\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("plan %s: error %v, want %q", tc.plan, err, tc.want)
		}
	}
}

func TestRuntime(t *testing.T) {
	cfg, err := Parse([]byte(header + "plans: [{name: free}]\nruntime:\n  image: shoal:1.2.3\n  query:\n    resources:\n      requests: {cpu: \"2\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Runtime.Image != "shoal:1.2.3" || cfg.Runtime.ImagePullPolicy != "IfNotPresent" {
		t.Errorf("runtime = %+v", cfg.Runtime)
	}
	if cpu := cfg.Runtime.Query.Resources.Requests.Cpu(); cpu.String() != "2" {
		t.Errorf("query cpu = %s, want the configured 2", cpu.String())
	}
	if cpu := cfg.Runtime.Ingest.Resources.Requests.Cpu(); cpu.String() != "250m" {
		t.Errorf("ingest cpu = %s, want the default 250m", cpu.String())
	}

	_, err = Parse([]byte(header + "plans: [{name: free}]\nruntime: {imagePullPolicy: Sometimes, process: {resources: {requests: {memory: 1Gi}}}}\n"))
	for _, want := range []string{`runtime.imagePullPolicy: Unsupported value: "Sometimes"`, "runtime.process.resources.requests.cpu: Required value"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
