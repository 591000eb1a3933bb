package config

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/billing"
	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/kafka"
	"github.com/shoal-dev/shoal/internal/lake"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/sealing"
)

const header = "apiVersion: config.shoal.dev/v1alpha1\nkind: PlatformConfig\n"

// backends are the required backend sections, at their smallest.
const backends = `
kafka: {brokers: ["kafka:9092"]}
clickhouse: {addr: "clickhouse:9000"}
lake: {bucket: shoal-lake}
metastore: {dsn: "postgres://shoal@db:5432/shoal"}
`

func TestParseValid(t *testing.T) {
	cfg, err := Parse([]byte(header + backends + `
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
		{"resync interval", header + "operator: {resyncInterval: 100ms}\nplans: [{name: free}]\n", []string{"operator.resyncInterval: Invalid value: \"100ms\""}},
		{"burst below rate", header + "operator: {kubeAPIQPS: 500, kubeAPIBurst: 100}\nplans: [{name: free}]\n", []string{"operator.kubeAPIBurst: Invalid value: 100: must be at least kubeAPIQPS"}},
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
	// Billing is off in the example, and its prices still come from the plans.
	if cfg.Billing.SecretKey != "" || cfg.Billing.SecretKeyFile != "" {
		t.Errorf("example turns billing on: %+v", cfg.Billing)
	}
	if len(cfg.Billing.Prices) != len(cfg.Plans) {
		t.Errorf("billing prices %v, want one per plan of %v", cfg.Billing.Prices, cfg.PlanNames())
	}
	// Credentials are files, not values in the config.
	if cfg.ClickHouse.Password != "" || cfg.ClickHouse.PasswordFile == "" || cfg.Metastore.DSN != "" || cfg.Metastore.DSNFile == "" {
		t.Errorf("example credentials: clickhouse %v, metastore dsnFile %q; want files", cfg.ClickHouse, cfg.Metastore.DSNFile)
	}
}

func TestPlanLimits(t *testing.T) {
	cfg, err := Parse([]byte(header + backends + `
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
	cfg, err := Parse([]byte(header + backends + "plans: [{name: free}]\nruntime:\n  image: shoal:1.2.3\n  query:\n    resources:\n      requests: {cpu: \"2\"}\n"))
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

// Each required backend section, left out, is reported by its own required field.
func TestBackendsRequired(t *testing.T) {
	sections := map[string]string{
		"kafka":      `kafka: {brokers: ["kafka:9092"]}`,
		"clickhouse": `clickhouse: {addr: "clickhouse:9000"}`,
		"lake":       `lake: {bucket: shoal-lake}`,
		"metastore":  `metastore: {dsnFile: /etc/shoal/secrets/metastore-dsn}`,
	}
	doc := func(without string) string {
		d := header + "plans: [{name: free}]\n"
		for _, name := range []string{"kafka", "clickhouse", "lake", "metastore"} {
			if name != without {
				d += sections[name] + "\n"
			}
		}
		return d
	}
	if _, err := Parse([]byte(doc(""))); err != nil {
		t.Fatalf("every section present: %v", err)
	}
	for _, tc := range []struct {
		without string
		want    string
	}{
		{"kafka", "kafka.brokers: Required value"},
		{"clickhouse", "clickhouse.addr: Required value"},
		{"lake", "lake.bucket: Required value"},
		{"metastore", "metastore.dsn: Required value"},
	} {
		t.Run(tc.without, func(t *testing.T) {
			_, err := Parse([]byte(doc(tc.without)))
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("error %v is not a ValidationError", err)
			}
			if len(verr.Errors) != 1 || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want only %q", err, tc.want)
			}
		})
	}
}

func TestBackendDefaults(t *testing.T) {
	cfg, err := Parse([]byte(header + backends + "plans: [{name: free}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.Mode != kafka.ModeDirect || cfg.Kafka.ReplicationFactor != kafka.DefaultReplicationFactor {
		t.Errorf("kafka = %+v, want its defaults", cfg.Kafka)
	}
	if cfg.ClickHouse.User != clickhouse.DefaultUser || cfg.ClickHouse.UserManagement != clickhouse.UserManagementAuto {
		t.Errorf("clickhouse = %v, want its defaults", cfg.ClickHouse)
	}
	if cfg.Lake.Region != lake.DefaultRegion || len(cfg.Lake.Classes) != len(lake.Classes()) {
		t.Errorf("lake = %+v, want its defaults", cfg.Lake)
	}
	if cfg.Metastore.MaxConns != metastore.DefaultMaxConns {
		t.Errorf("metastore = %+v, want its defaults", cfg.Metastore)
	}
	if r := cfg.Billing.MaxNetworkRetries; r == nil || *r != billing.DefaultMaxNetworkRetries {
		t.Errorf("billing.maxNetworkRetries = %v, want the default", r)
	}
}

// The backends' own checks are reported under their section.
func TestBackendsInvalid(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"kafka: {mode: strimzi}\nclickhouse: {addr: \"ch:9000\"}\nlake: {bucket: b-1}\nmetastore: {dsn: \"postgres://db/x\"}\n", "kafka.strimzi.namespace: Required value"},
		{"kafka: {brokers: [kafka]}\nclickhouse: {addr: \"ch:9000\"}\nlake: {bucket: b-1}\nmetastore: {dsn: \"postgres://db/x\"}\n", `kafka.brokers[0]: Invalid value: "kafka": must be host:port`},
		{"kafka: {brokers: [\"k:9092\"]}\nclickhouse: {addr: \"ch:9000\", password: x, passwordFile: /p}\nlake: {bucket: b-1}\nmetastore: {dsn: \"postgres://db/x\"}\n", "clickhouse.password: Forbidden"},
		{"kafka: {brokers: [\"k:9092\"]}\nclickhouse: {addr: \"ch:9000\"}\nlake: {bucket: Bad_Bucket}\nmetastore: {dsn: \"postgres://db/x\"}\n", `lake.bucket: Invalid value: "Bad_Bucket"`},
		{"kafka: {brokers: [\"k:9092\"]}\nclickhouse: {addr: \"ch:9000\"}\nlake: {bucket: b-1}\nmetastore: {dsn: \"postgres://db/x\", dsnFile: /f}\n", "metastore.dsnFile: Forbidden"},
		{backends + "billing: {secretKey: sk, secretKeyFile: /f}\n", "billing.secretKeyFile: Forbidden"},
	} {
		_, err := Parse([]byte(header + "plans: [{name: free, stripePriceID: price_free}]\n" + tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q\n%s", err, tc.want, tc.doc)
		}
	}
}

// Stripe prices are written on the plans only; billing.prices is filled from them.
func TestBillingPrices(t *testing.T) {
	const priced = "plans:\n  - {name: free, stripePriceID: price_free}\n  - {name: team, stripePriceID: price_team}\n"
	for _, tc := range []struct {
		name       string
		doc        string
		wantErr    []string
		notErr     []string
		wantPrices map[string]string
	}{
		{
			name:       "billing off, prices from the plans that have one",
			doc:        "plans:\n  - {name: free}\n  - {name: team, stripePriceID: price_team}\n",
			wantPrices: map[string]string{"team": "price_team"},
		},
		{
			name: "billing off, no prices",
			doc:  "plans: [{name: free}]\n",
		},
		{
			name:       "billing on with a price on every plan",
			doc:        priced + "billing: {secretKeyFile: /etc/shoal/secrets/stripe-secret-key}\n",
			wantPrices: map[string]string{"free": "price_free", "team": "price_team"},
		},
		{
			name:    "prices in the file",
			doc:     priced + "billing: {prices: {free: price_other}}\n",
			wantErr: []string{"billing.prices: Forbidden: prices come from the plan catalog: set plans[].stripePriceID instead"},
		},
		{
			name:    "empty prices in the file",
			doc:     priced + "billing: {prices: {}}\n",
			wantErr: []string{"billing.prices: Forbidden"},
		},
		{
			name:    "billing on, a plan without a price",
			doc:     "plans:\n  - {name: free, stripePriceID: price_free}\n  - {name: team}\n  - {name: pro, stripePriceID: \" \"}\nbilling: {secretKey: sk_test_123}\n",
			wantErr: []string{"plans[1].stripePriceID: Required value: billing is on", "plans[2].stripePriceID: Required value"},
			notErr:  []string{"plans[0]", "billing.prices"},
		},
		{
			name:    "billing on, no plan with a price",
			doc:     "plans: [{name: free}]\nbilling: {secretKeyFile: /k}\n",
			wantErr: []string{"plans[0].stripePriceID: Required value: billing is on"},
			notErr:  []string{"billing.prices"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(header + backends + tc.doc))
			if len(tc.wantErr) > 0 {
				var verr *ValidationError
				if !errors.As(err, &verr) {
					t.Fatalf("error %v, want a ValidationError", err)
				}
				for _, want := range tc.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q lacks %q", err, want)
					}
				}
				for _, not := range tc.notErr {
					if strings.Contains(err.Error(), not) {
						t.Errorf("error %q mentions %q", err, not)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(cfg.Billing.Prices, tc.wantPrices) || (tc.wantPrices == nil) != (cfg.Billing.Prices == nil) {
				t.Errorf("billing prices %v, want %v", cfg.Billing.Prices, tc.wantPrices)
			}
			// A parsed config stays valid: validating it again finds nothing.
			if err := cfg.Validate(); err != nil {
				t.Errorf("validating the parsed config again: %v", err)
			}
		})
	}
}

// A config built in Go gets its prices from Default; prices set by hand are refused.
func TestBillingPricesInGo(t *testing.T) {
	p := Platform{
		APIVersion: APIVersion,
		Kind:       Kind,
		Plans:      []Plan{{Name: "free", StripePriceID: "price_free"}, {Name: "team"}},
		Kafka:      kafka.Config{Brokers: []string{"kafka:9092"}},
		ClickHouse: clickhouse.Config{Addr: "clickhouse:9000"},
		Lake:       lake.Config{Bucket: "shoal-lake"},
		Metastore:  metastore.Config{DSN: "postgres://db/shoal"},
		Billing:    billing.Config{Prices: map[string]string{"team": "price_team"}},
	}
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "billing.prices: Forbidden") {
		t.Errorf("hand-set prices: error %v, want billing.prices forbidden", err)
	}
	p.Default()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"free": "price_free"}; !maps.Equal(p.Billing.Prices, want) {
		t.Errorf("billing prices %v, want %v", p.Billing.Prices, want)
	}

	// BillingConfig gives the plans' prices whether Default ran or not.
	fresh := Platform{Plans: p.Plans}
	if got, want := fresh.BillingConfig().Prices, (map[string]string{"free": "price_free"}); !maps.Equal(got, want) {
		t.Errorf("BillingConfig().Prices = %v, want %v", got, want)
	}

	p.Billing.SecretKey = "sk_test_123"
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "plans[1].stripePriceID: Required value") {
		t.Errorf("billing on: error %v, want plans[1].stripePriceID required", err)
	}
	p.Plans[1].StripePriceID = "price_team"
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "billing.prices: Forbidden") {
		t.Errorf("a plan's price changed after Default: error %v, want billing.prices forbidden until Default runs again", err)
	}
	p.Default()
	if err := p.Validate(); err != nil {
		t.Errorf("after Default again: %v", err)
	}
}

// The runtime's document is a valid platform config that keeps what the runtime reads and
// leaves out what only the operator may hold.
func TestRuntimeDocument(t *testing.T) {
	cfg, err := Parse([]byte(header + `
kafka: {brokers: ["kafka:9092"]}
clickhouse: {addr: "clickhouse:9000", user: admin, password: admin-secret}
lake: {bucket: shoal-lake}
metastore: {dsn: "postgres://shoal@db:5432/shoal"}
billing: {secretKey: sk_test_secret}
plans: [{name: free, stripePriceID: price_free}]
runtime: {credentialsSecret: shoal-backends}
`))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := cfg.RuntimeDocument()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"admin-secret", "sk_test_secret"} {
		if strings.Contains(string(doc), secret) {
			t.Errorf("runtime document holds %q:\n%s", secret, doc)
		}
	}
	rt, err := Parse(doc)
	if err != nil {
		t.Fatalf("runtime document does not parse: %v\n%s", err, doc)
	}
	if rt.Kafka.Brokers[0] != "kafka:9092" || rt.Lake.Bucket != "shoal-lake" || rt.Metastore.DSN != cfg.Metastore.DSN ||
		rt.ClickHouse.Addr != "clickhouse:9000" || rt.Runtime.CredentialsDir != DefaultCredentialsDir || len(rt.Plans) != 1 {
		t.Errorf("runtime document lost settings: %+v", rt)
	}
	if rt.Billing.SecretKey != "" || rt.Billing.SecretKeyFile != "" {
		t.Error("billing is on in the runtime document")
	}
	if cfg.ClickHouse.Password != "admin-secret" {
		t.Error("RuntimeDocument changed the operator's own config")
	}
}

func TestSealing(t *testing.T) {
	key, err := sealing.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte(header + backends + "plans: [{name: free}]\nsealing:\n  keys: [{id: k1, value: " + key + "}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sealing.CurrentKeyID != "k1" {
		t.Errorf("current key %q, want the only key k1", cfg.Sealing.CurrentKeyID)
	}
	if _, err := Parse([]byte(header + backends + "plans: [{name: free}]\n")); err != nil {
		t.Errorf("sealing is optional: %v", err)
	}
	_, err = Parse([]byte(header + backends + "plans: [{name: free}]\nsealing:\n  currentKeyID: k2\n  keys: [{id: k1, value: " + key + "}]\n"))
	if err == nil || !strings.Contains(err.Error(), "sealing.currentKeyID") {
		t.Errorf("error %v, want one naming sealing.currentKeyID", err)
	}
}

func TestAllowPrivateWebhookTargets(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       bool
	}{
		{"off by default", "", false},
		{"off by default with an alerts section", "query:\n  alerts: {evaluationInterval: 30s}\n", false},
		{"on", "query:\n  alerts: {allowPrivateWebhookTargets: true}\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(header + backends + "plans: [{name: free}]\n" + tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Query.Alerts.AllowPrivateWebhookTargets; got != tc.want {
				t.Errorf("allowPrivateWebhookTargets = %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := Parse([]byte(header + backends + "plans: [{name: free}]\nquery:\n  alerts: {allowPrivateWebhookTargets: yes-please}\n")); err == nil {
		t.Error("a non-boolean allowPrivateWebhookTargets is accepted")
	}
}
