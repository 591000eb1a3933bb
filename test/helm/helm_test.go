// Package helm_test renders the Helm chart in charts/shoal with the helm binary built from
// hack/tools and checks what it produces: the objects and their names, the CRDs (the same
// bytes as config/crd/bases), the platform configuration (valid for the operator), the
// Deployment, the RBAC wiring, and `helm lint`.
package helm_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/shoal-dev/shoal/internal/config"
)

const (
	modulePath  = "github.com/shoal-dev/shoal"
	releaseName = "shoal"
	namespace   = "shoal-system"
	// fullname is the objects' base name: the release name, which contains the chart name.
	fullname = "shoal"

	configDir  = "/etc/shoal"
	configKey  = "platform.yaml"
	configFile = configDir + "/" + configKey
	// secretsDir is where backendSecret is mounted, for the platform config's *File keys.
	secretsDir = configDir + "/secrets"
)

// repoRoot walks up from the working directory to the go.mod declaring the Shoal module.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && moduleOf(data) == modulePath {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod declaring module %s above the working directory", modulePath)
		}
		dir = parent
	}
}

func moduleOf(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], "\"`")
		}
	}
	return ""
}

// helmBin is $SHOAL_BIN/helm, or bin/helm in the repository.
func helmBin(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SHOAL_BIN")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "bin")
	}
	bin := filepath.Join(dir, "helm")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no helm binary at %s (%v): run `make bin/helm` (or `make tools`) first, or set SHOAL_BIN to the directory holding helm", bin, err)
	}
	return bin
}

func chartDir(t *testing.T) string { return filepath.Join(repoRoot(t), "charts", "shoal") }

// runHelm runs helm with its config, cache and data directories in a temporary directory,
// so the user's repositories and plugins play no part.
func runHelm(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helmBin(t), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// section is the output of one chart file in `helm template`: its "# Source:" path and
// what follows, up to the next section.
type section struct {
	Source  string
	Content string
}

// object is one decoded document of the rendered release.
type object struct {
	Source string
	YAML   []byte
	U      *unstructured.Unstructured
}

func (o object) key() string { return o.U.GetKind() + "/" + o.U.GetName() }

type release struct {
	Sections []section
	Objects  []object
}

var sourceHeader = regexp.MustCompile(`(?m)^---\n# Source: (.+)\n`)
var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// render runs `helm template` on the chart with the given extra arguments and values
// files (written to a temporary directory) and decodes every document.
func render(t *testing.T, args []string, valuesFiles ...string) *release {
	t.Helper()
	stdout, stderr, err := runHelm(t, renderArgs(t, args, valuesFiles...)...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, stderr)
	}
	return parseRelease(t, stdout)
}

func renderArgs(t *testing.T, args []string, valuesFiles ...string) []string {
	t.Helper()
	all := []string{"template", releaseName, chartDir(t), "--namespace", namespace}
	// Not t.TempDir: its path holds the test name, and helm splits --values on commas.
	dir, err := os.MkdirTemp("", "shoal-helm-values-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	for i, v := range valuesFiles {
		f := filepath.Join(dir, fmt.Sprintf("values-%d.yaml", i))
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		all = append(all, "--values", f)
	}
	return append(all, args...)
}

func parseRelease(t *testing.T, out string) *release {
	t.Helper()
	r := &release{}
	locs := sourceHeader.FindAllStringSubmatchIndex(out, -1)
	if len(locs) == 0 {
		t.Fatalf("helm template printed no \"# Source:\" section:\n%s", out)
	}
	if lead := strings.TrimSpace(out[:locs[0][0]]); lead != "" {
		t.Fatalf("helm template printed something before the first section: %q", lead)
	}
	for i, loc := range locs {
		end := len(out)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		// Each section is printed as "---\n# Source: <path>\n<content>\n". The documents
		// are decoded from the whole stream, as kubectl or helm install would: a block
		// scalar at the end of a document keeps its final line break.
		body := out[loc[1]:end]
		s := section{Source: out[loc[2]:loc[3]], Content: strings.TrimSuffix(body, "\n")}
		r.Sections = append(r.Sections, s)
		for _, doc := range docSeparator.Split(body, -1) {
			if isBlank(doc) {
				continue
			}
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
				t.Fatalf("%s: not YAML: %v\n%s", s.Source, err, doc)
			}
			if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
				t.Fatalf("%s: document without apiVersion, kind or name:\n%s", s.Source, doc)
			}
			r.Objects = append(r.Objects, object{Source: s.Source, YAML: []byte(doc), U: u})
		}
	}
	return r
}

// isBlank reports whether a YAML document holds only comments and blank lines.
func isBlank(doc string) bool {
	for _, line := range strings.Split(doc, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// keys lists the kind/name of every object that is not a CRD, sorted.
func (r *release) keys() []string {
	var keys []string
	for _, o := range r.Objects {
		if o.U.GetKind() != "CustomResourceDefinition" {
			keys = append(keys, o.key())
		}
	}
	sort.Strings(keys)
	return keys
}

func (r *release) find(kind, name string) (object, bool) {
	for _, o := range r.Objects {
		if o.U.GetKind() == kind && o.U.GetName() == name {
			return o, true
		}
	}
	return object{}, false
}

// get decodes the object of the given kind and name into a typed object, strictly: a field
// the Kubernetes type does not have (a misspelt key in a template) is an error.
func get(t *testing.T, r *release, kind, name string, into any) {
	t.Helper()
	o, ok := r.find(kind, name)
	if !ok {
		t.Fatalf("no %s %q rendered; have %v", kind, name, r.keys())
	}
	if err := yaml.UnmarshalStrict(o.YAML, into); err != nil {
		t.Fatalf("%s %s (%s): %v", kind, name, o.Source, err)
	}
}

// expectation is what one rendering of the chart must produce.
type expectation struct {
	image          string
	pullPolicy     corev1.PullPolicy
	replicas       int32
	serviceAccount string
	createSA       bool
	leaderElection bool
	leNamespace    string // namespace of the lease and the leader election Role
	metricsPort    int32  // 0: metrics off
	healthPort     int32
	plans          []config.Plan
	maxConcurrent  int
	backendSecret  string // name of the Secret mounted at secretsDir; "" for none
	sharedRuntime  bool   // the shoal-ingest and shoal-process Deployments and the ingest Service
	// Backend settings the rendered platform config must carry.
	kafkaBrokers   []string
	clickhouseAddr string
	passwordFile   string
	billingKeyFile string
	prices         map[string]string // billing.prices as the operator fills it from the plans
}

func defaults(t *testing.T) expectation {
	return expectation{
		image:          "shoal:" + chartAppVersion(t),
		pullPolicy:     corev1.PullIfNotPresent,
		replicas:       1,
		serviceAccount: fullname,
		createSA:       true,
		metricsPort:    8080,
		healthPort:     8081,
		plans:          valuesPlans(t),
		maxConcurrent:  4,
		sharedRuntime:  true,
		kafkaBrokers:   []string{"kafka-bootstrap.kafka:9092"},
		clickhouseAddr: "clickhouse.clickhouse:9000",
		passwordFile:   secretsDir + "/clickhouse-password",
		prices:         map[string]string{"free": "price_shoal_free", "team": "price_shoal_team", "enterprise": "price_shoal_enterprise"},
	}
}

func chartAppVersion(t *testing.T) string {
	t.Helper()
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	readYAML(t, filepath.Join(chartDir(t), "Chart.yaml"), &chart)
	if chart.AppVersion == "" {
		t.Fatal("Chart.yaml has no appVersion")
	}
	return chart.AppVersion
}

// valuesPlans is the plan catalog of the chart's values.yaml, defaulted as the operator
// defaults it.
func valuesPlans(t *testing.T) []config.Plan {
	t.Helper()
	var values struct {
		Platform struct {
			Plans []config.Plan `json:"plans"`
		} `json:"platform"`
	}
	readYAML(t, filepath.Join(chartDir(t), "values.yaml"), &values)
	plans := values.Platform.Plans
	if len(plans) == 0 {
		t.Fatal("values.yaml has no platform.plans")
	}
	for i := range plans {
		if plans[i].DisplayName == "" {
			plans[i].DisplayName = plans[i].Name
		}
	}
	return plans
}

func readYAML(t *testing.T, file string, into any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func TestTemplate(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		values string
		want   func(*expectation)
	}{
		{
			name: "defaults",
			want: func(*expectation) {},
		},
		{
			name: "two replicas turn leader election on",
			args: []string{"--set", "replicas=2"},
			want: func(e *expectation) {
				e.replicas = 2
				e.leaderElection = true
				e.leNamespace = namespace
			},
		},
		{
			name: "leader election asked for with one replica and the lease elsewhere",
			values: `
platform:
  operator:
    leaderElection: true
    leaderElectionNamespace: shoal-leases
`,
			want: func(e *expectation) {
				e.leaderElection = true
				e.leNamespace = "shoal-leases"
			},
		},
		{
			name: "custom image",
			args: []string{"--set", "image.repository=acme/shoal", "--set-string", "image.tag=v1.2.3", "--set", "image.pullPolicy=Always"},
			want: func(e *expectation) {
				e.image = "acme/shoal:v1.2.3"
				e.pullPolicy = corev1.PullAlways
			},
		},
		{
			name: "existing service account",
			args: []string{"--set", "serviceAccount.create=false", "--set", "serviceAccount.name=platform-operator"},
			want: func(e *expectation) {
				e.createSA = false
				e.serviceAccount = "platform-operator"
			},
		},
		{
			name: "created service account with a given name",
			args: []string{"--set", "serviceAccount.name=shoal-operator"},
			want: func(e *expectation) { e.serviceAccount = "shoal-operator" },
		},
		{
			name: "custom platform configuration",
			values: `
platform:
  operator:
    metricsAddr: ":9090"
    healthAddr: "0.0.0.0:9091"
    maxConcurrentReconciles: 8
  plans:
    - name: gold
      displayName: Gold
    - name: silver
`,
			want: func(e *expectation) {
				e.metricsPort = 9090
				e.healthPort = 9091
				e.maxConcurrent = 8
				e.plans = []config.Plan{{Name: "gold", DisplayName: "Gold"}, {Name: "silver", DisplayName: "silver"}}
				e.prices = nil
			},
		},
		{
			name: "backends and billing on with the credentials Secret",
			values: `
backendSecret:
  name: shoal-backends
platform:
  kafka:
    brokers: ["kafka-0.kafka:9092", "kafka-1.kafka:9092"]
  clickhouse:
    addr: ch.analytics:9000
    passwordFile: /etc/shoal/secrets/ch
  billing:
    secretKeyFile: /etc/shoal/secrets/stripe
  plans:
    - name: gold
      stripePriceID: price_gold
`,
			want: func(e *expectation) {
				e.backendSecret = "shoal-backends"
				e.kafkaBrokers = []string{"kafka-0.kafka:9092", "kafka-1.kafka:9092"}
				e.clickhouseAddr = "ch.analytics:9000"
				e.passwordFile = secretsDir + "/ch"
				e.billingKeyFile = secretsDir + "/stripe"
				e.plans = []config.Plan{{Name: "gold", DisplayName: "gold", StripePriceID: "price_gold"}}
				e.prices = map[string]string{"gold": "price_gold"}
			},
		},
		{
			name: "shared runtime off",
			args: []string{"--set", "sharedRuntime.enabled=false"},
			want: func(e *expectation) { e.sharedRuntime = false },
		},
		{
			name:   "metrics off",
			values: "platform:\n  operator:\n    metricsAddr: \"0\"\n",
			want:   func(e *expectation) { e.metricsPort = 0 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := defaults(t)
			tt.want(&want)
			var values []string
			if tt.values != "" {
				values = append(values, tt.values)
			}
			r := render(t, tt.args, values...)
			checkObjects(t, r, want)
			cm := checkConfigMap(t, r, want)
			checkDeployment(t, r, want, cm)
			checkRBAC(t, r, want)
			checkService(t, r, want)
			checkSharedRuntime(t, r, want)
		})
	}
}

// checkSharedRuntime: each role runs `shoal <role> --config /etc/shoal/platform.yaml`
// with the operator's config and credentials, under a name the tenants' status endpoints
// resolve, and pods the operator's selectors do not match.
func checkSharedRuntime(t *testing.T, r *release, want expectation) {
	t.Helper()
	if !want.sharedRuntime {
		return
	}
	operator := &appsv1.Deployment{}
	get(t, r, "Deployment", fullname, operator)
	opSelector := labels.SelectorFromSet(operator.Spec.Selector.MatchLabels)
	for role, port := range map[string]int32{"ingest": 8080, "process": 8081} {
		d := &appsv1.Deployment{}
		get(t, r, "Deployment", "shoal-"+role, d)
		if opSelector.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("shoal-%s pods %v match the operator's selector %v", role, d.Spec.Template.Labels, opSelector)
		}
		if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("shoal-%s selector does not match its own pods", role)
		}
		c := d.Spec.Template.Spec.Containers[0]
		wantArgs := []string{role, "--config", "/etc/shoal/platform.yaml", "--listen", fmt.Sprintf(":%d", port)}
		if !slices.Equal(c.Args, wantArgs) {
			t.Errorf("shoal-%s args %v, want %v", role, c.Args, wantArgs)
		}
		if c.Image != want.image {
			t.Errorf("shoal-%s image %q, want %q", role, c.Image, want.image)
		}
		if len(c.Ports) != 1 || c.Ports[0].ContainerPort != port || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("shoal-%s ports %v, readiness %+v", role, c.Ports, c.ReadinessProbe)
		}
		if d.Spec.Template.Spec.AutomountServiceAccountToken == nil || *d.Spec.Template.Spec.AutomountServiceAccountToken {
			t.Errorf("shoal-%s mounts a service account token it never uses", role)
		}
		checkSecretsMount(t, d.Spec.Template.Spec, c, want)
	}
	svc := &corev1.Service{}
	get(t, r, "Service", "shoal-ingest", svc)
	ingest := &appsv1.Deployment{}
	get(t, r, "Deployment", "shoal-ingest", ingest)
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(ingest.Spec.Template.Labels)) {
		t.Errorf("Service shoal-ingest selector %v does not select the ingest pods %v", svc.Spec.Selector, ingest.Spec.Template.Labels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("Service shoal-ingest ports %+v", svc.Spec.Ports)
	}
}

// checkObjects: exactly the expected objects, namespaced ones in the release namespace
// (the leader election Role and RoleBinding in the lease namespace), all labelled.
func checkObjects(t *testing.T, r *release, want expectation) {
	expected := []string{
		"ClusterRole/" + fullname,
		"ClusterRoleBinding/" + fullname,
		"ConfigMap/" + fullname + "-config",
		"Deployment/" + fullname,
	}
	if want.createSA {
		expected = append(expected, "ServiceAccount/"+want.serviceAccount)
	}
	if want.metricsPort != 0 {
		expected = append(expected, "Service/"+fullname+"-metrics")
	}
	if want.leaderElection {
		expected = append(expected, "Role/"+fullname+"-leader-election", "RoleBinding/"+fullname+"-leader-election")
	}
	if want.sharedRuntime {
		expected = append(expected, "Deployment/shoal-ingest", "Deployment/shoal-process", "Service/shoal-ingest")
	}
	sort.Strings(expected)
	if got := r.keys(); !slices.Equal(got, expected) {
		t.Errorf("rendered objects:\n got  %v\n want %v", got, expected)
	}
	for _, o := range r.Objects {
		switch o.U.GetKind() {
		case "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition":
			if ns := o.U.GetNamespace(); ns != "" {
				t.Errorf("%s: cluster-scoped but has namespace %q", o.key(), ns)
			}
			continue
		case "Role", "RoleBinding":
			if ns := o.U.GetNamespace(); ns != want.leNamespace {
				t.Errorf("%s: namespace %q, want the lease namespace %q", o.key(), ns, want.leNamespace)
			}
		default:
			if ns := o.U.GetNamespace(); ns != namespace {
				t.Errorf("%s: namespace %q, want %q", o.key(), ns, namespace)
			}
		}
		labels := o.U.GetLabels()
		for _, l := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
			if labels[l] == "" {
				t.Errorf("%s: no label %s", o.key(), l)
			}
		}
	}
}

// checkConfigMap: platform.yaml is a PlatformConfig the operator accepts, carrying the
// values' plans and operator settings. It returns the ConfigMap.
func checkConfigMap(t *testing.T, r *release, want expectation) *corev1.ConfigMap {
	var cm corev1.ConfigMap
	get(t, r, "ConfigMap", fullname+"-config", &cm)
	if len(cm.Data) != 1 {
		t.Errorf("ConfigMap keys %v, want only %s", slices.Sorted(maps.Keys(cm.Data)), configKey)
	}
	doc, ok := cm.Data[configKey]
	if !ok {
		t.Fatalf("ConfigMap has no %s", configKey)
	}
	cfg, err := config.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("the operator would reject the chart's platform config: %v\n%s", err, doc)
	}
	// The operator fills in plan defaults; compare with the same defaults applied.
	wantPlans := make([]config.Plan, len(want.plans))
	for i, p := range want.plans {
		p.Default()
		wantPlans[i] = p
	}
	if !equality.Semantic.DeepEqual(cfg.Plans, wantPlans) {
		t.Errorf("plans %+v, want %+v", cfg.Plans, wantPlans)
	}
	o := cfg.Operator
	if o.LeaderElection != want.leaderElection {
		t.Errorf("operator.leaderElection %v, want %v", o.LeaderElection, want.leaderElection)
	}
	if want.leaderElection && o.LeaderElectionNamespace != want.leNamespace {
		t.Errorf("operator.leaderElectionNamespace %q, want %q", o.LeaderElectionNamespace, want.leNamespace)
	}
	if o.MaxConcurrentReconciles != want.maxConcurrent {
		t.Errorf("operator.maxConcurrentReconciles %d, want %d", o.MaxConcurrentReconciles, want.maxConcurrent)
	}
	if got := addrPort(t, o.HealthAddr); got != want.healthPort {
		t.Errorf("operator.healthAddr %q, want port %d", o.HealthAddr, want.healthPort)
	}
	if want.metricsPort == 0 {
		if o.MetricsAddr != "0" {
			t.Errorf("operator.metricsAddr %q, want \"0\" (off)", o.MetricsAddr)
		}
	} else if got := addrPort(t, o.MetricsAddr); got != want.metricsPort {
		t.Errorf("operator.metricsAddr %q, want port %d", o.MetricsAddr, want.metricsPort)
	}
	if !slices.Equal(cfg.Kafka.Brokers, want.kafkaBrokers) {
		t.Errorf("kafka.brokers %v, want %v", cfg.Kafka.Brokers, want.kafkaBrokers)
	}
	if cfg.ClickHouse.Addr != want.clickhouseAddr || cfg.ClickHouse.PasswordFile != want.passwordFile {
		t.Errorf("clickhouse %v, want addr %q and passwordFile %q", cfg.ClickHouse, want.clickhouseAddr, want.passwordFile)
	}
	// Dedicated tenants' runtime pods get a copy of the same credentials Secret.
	if cfg.Runtime.CredentialsSecret != want.backendSecret || cfg.Runtime.CredentialsDir != secretsDir {
		t.Errorf("runtime.credentialsSecret %q in %q, want %q in %q", cfg.Runtime.CredentialsSecret, cfg.Runtime.CredentialsDir, want.backendSecret, secretsDir)
	}
	if cfg.Billing.SecretKeyFile != want.billingKeyFile {
		t.Errorf("billing.secretKeyFile %q, want %q", cfg.Billing.SecretKeyFile, want.billingKeyFile)
	}
	if !maps.Equal(cfg.Billing.Prices, want.prices) {
		t.Errorf("billing prices %v, want %v from the plans", cfg.Billing.Prices, want.prices)
	}
	return &cm
}

func addrPort(t *testing.T, addr string) int32 {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	port, err := strconv.ParseInt(addr[i+1:], 10, 32)
	if i < 0 || err != nil {
		t.Errorf("address %q has no port", addr)
		return -1
	}
	return int32(port)
}

// checkDeployment: image, args, ports, probes, security contexts, ServiceAccount, the
// config mount and the checksum of the config.
func checkDeployment(t *testing.T, r *release, want expectation, cm *corev1.ConfigMap) {
	var d appsv1.Deployment
	get(t, r, "Deployment", fullname, &d)

	if d.Spec.Replicas == nil || *d.Spec.Replicas != want.replicas {
		t.Errorf("replicas %v, want %d", d.Spec.Replicas, want.replicas)
	}
	wantStrategy := appsv1.RecreateDeploymentStrategyType
	if want.leaderElection {
		wantStrategy = appsv1.RollingUpdateDeploymentStrategyType
	}
	if d.Spec.Strategy.Type != wantStrategy {
		t.Errorf("strategy %q, want %q", d.Spec.Strategy.Type, wantStrategy)
	}
	pod := d.Spec.Template
	if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels) == 0 {
		t.Fatal("Deployment has no selector")
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if pod.Labels[k] != v {
			t.Errorf("pod label %s=%q, selector wants %q", k, pod.Labels[k], v)
		}
	}

	// A config change must roll the pods: the annotation is the hash of platform.yaml.
	sum := sha256.Sum256([]byte(cm.Data[configKey]))
	if got, wantSum := pod.Annotations["checksum/config"], hex.EncodeToString(sum[:]); got != wantSum {
		t.Errorf("checksum/config annotation %q, want sha256 of the ConfigMap's %s %q", got, configKey, wantSum)
	}

	spec := pod.Spec
	if spec.ServiceAccountName != want.serviceAccount {
		t.Errorf("serviceAccountName %q, want %q", spec.ServiceAccountName, want.serviceAccount)
	}
	if spec.AutomountServiceAccountToken != nil && !*spec.AutomountServiceAccountToken {
		t.Error("the pod does not mount its ServiceAccount token; the operator needs it")
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod securityContext.seccompProfile is not RuntimeDefault")
	}

	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if c.Image != want.image {
		t.Errorf("image %q, want %q", c.Image, want.image)
	}
	if c.ImagePullPolicy != want.pullPolicy {
		t.Errorf("imagePullPolicy %q, want %q", c.ImagePullPolicy, want.pullPolicy)
	}
	if wantArgs := []string{"operator", "--config", configFile}; !slices.Equal(c.Args, wantArgs) || len(c.Command) != 0 {
		t.Errorf("command %q args %q, want the image's entrypoint with args %q", c.Command, c.Args, wantArgs)
	}

	ports := map[string]corev1.ContainerPort{}
	for _, p := range c.Ports {
		ports[p.Name] = p
	}
	wantPorts := map[string]int32{"health": want.healthPort}
	if want.metricsPort != 0 {
		wantPorts["metrics"] = want.metricsPort
	}
	if len(ports) != len(wantPorts) {
		t.Errorf("container ports %+v, want %v", c.Ports, wantPorts)
	}
	for name, port := range wantPorts {
		if p, ok := ports[name]; !ok || p.ContainerPort != port || p.Protocol != corev1.ProtocolTCP {
			t.Errorf("container port %s: %+v, want %d/TCP", name, p, port)
		}
	}
	for _, probe := range []struct {
		name string
		p    *corev1.Probe
		path string
	}{
		{"liveness", c.LivenessProbe, "/healthz"},
		{"readiness", c.ReadinessProbe, "/readyz"},
	} {
		if probe.p == nil || probe.p.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", probe.name)
			continue
		}
		g := probe.p.HTTPGet
		if g.Path != probe.path {
			t.Errorf("%s probe path %q, want %q", probe.name, g.Path, probe.path)
		}
		if port := resolvePort(g.Port, ports); port != want.healthPort {
			t.Errorf("%s probe port %s (%d), want the health port %d", probe.name, g.Port.String(), port, want.healthPort)
		}
	}

	sc := c.SecurityContext
	switch sc {
	case nil:
		t.Error("container has no securityContext")
	default:
		if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Error("container securityContext.runAsNonRoot is not true")
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Error("container securityContext.readOnlyRootFilesystem is not true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Error("container securityContext.allowPrivilegeEscalation is not false")
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Error("container is privileged")
		}
		if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
			t.Errorf("container capabilities %+v, want drop [ALL] and nothing added", sc.Capabilities)
		}
		if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Error("container securityContext.seccompProfile is not RuntimeDefault")
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want CPU and memory requests and a memory limit", c.Resources)
	}

	// The config file the args name is the ConfigMap's key, mounted read-only.
	var mounted bool
	for _, m := range c.VolumeMounts {
		if m.MountPath != configDir {
			continue
		}
		mounted = true
		if !m.ReadOnly {
			t.Errorf("%s is mounted read-write", configDir)
		}
		if m.SubPath != "" {
			t.Errorf("%s is mounted with subPath %q, which the kubelet never updates", configDir, m.SubPath)
		}
		i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 {
			t.Errorf("volume %q mounted at %s does not exist", m.Name, configDir)
			continue
		}
		v := spec.Volumes[i]
		if v.ConfigMap == nil || v.ConfigMap.Name != cm.Name {
			t.Errorf("volume %q mounted at %s is %+v, want ConfigMap %s", v.Name, configDir, v.VolumeSource, cm.Name)
			continue
		}
		for _, item := range v.ConfigMap.Items {
			if item.Key == configKey && item.Path != configKey {
				t.Errorf("ConfigMap key %s is mounted as %s", configKey, item.Path)
			}
		}
		if len(v.ConfigMap.Items) > 0 && !slices.ContainsFunc(v.ConfigMap.Items, func(k corev1.KeyToPath) bool { return k.Key == configKey }) {
			t.Errorf("ConfigMap volume items %+v leave out %s", v.ConfigMap.Items, configKey)
		}
	}
	if !mounted {
		t.Errorf("nothing is mounted at %s, where the args point the operator at its config", configDir)
	}
	checkSecretsMount(t, spec, c, want)
}

// checkSecretsMount: backendSecret, when named, is mounted read-only at secretsDir, whole
// (every key a file); otherwise nothing is.
func checkSecretsMount(t *testing.T, spec corev1.PodSpec, c corev1.Container, want expectation) {
	i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == secretsDir })
	if want.backendSecret == "" {
		if i >= 0 {
			t.Errorf("%s is mounted (%+v) though backendSecret.name is empty", secretsDir, c.VolumeMounts[i])
		}
		for _, v := range spec.Volumes {
			if v.Secret != nil {
				t.Errorf("Secret volume %+v though backendSecret.name is empty", v)
			}
		}
		return
	}
	if i < 0 {
		t.Fatalf("backendSecret %s is not mounted at %s; mounts %+v", want.backendSecret, secretsDir, c.VolumeMounts)
	}
	m := c.VolumeMounts[i]
	if !m.ReadOnly || m.SubPath != "" {
		t.Errorf("%s mount %+v, want read-only without subPath", secretsDir, m)
	}
	j := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
	if j < 0 {
		t.Fatalf("volume %q mounted at %s does not exist", m.Name, secretsDir)
	}
	v := spec.Volumes[j]
	if v.Secret == nil || v.Secret.SecretName != want.backendSecret || len(v.Secret.Items) != 0 {
		t.Errorf("volume %q mounted at %s is %+v, want all of Secret %s", v.Name, secretsDir, v.VolumeSource, want.backendSecret)
	}
}

func resolvePort(p intstr.IntOrString, named map[string]corev1.ContainerPort) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	if cp, ok := named[p.StrVal]; ok {
		return cp.ContainerPort
	}
	return -1
}

// checkRBAC: the ServiceAccount, the ClusterRoleBinding of the ClusterRole to it, the
// ClusterRole's rules (controller-gen's) and the leader election Role.
func checkRBAC(t *testing.T, r *release, want expectation) {
	if want.createSA {
		var sa corev1.ServiceAccount
		get(t, r, "ServiceAccount", want.serviceAccount, &sa)
	}

	var role rbacv1.ClusterRole
	get(t, r, "ClusterRole", fullname, &role)
	checkClusterRoleRules(t, role.Rules)

	var crb rbacv1.ClusterRoleBinding
	get(t, r, "ClusterRoleBinding", fullname, &crb)
	wantRef := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name}
	if crb.RoleRef != wantRef {
		t.Errorf("ClusterRoleBinding roleRef %+v, want %+v", crb.RoleRef, wantRef)
	}
	wantSubjects := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: want.serviceAccount, Namespace: namespace}}
	if !reflect.DeepEqual(crb.Subjects, wantSubjects) {
		t.Errorf("ClusterRoleBinding subjects %+v, want %+v", crb.Subjects, wantSubjects)
	}

	if !want.leaderElection {
		return
	}
	var le rbacv1.Role
	get(t, r, "Role", fullname+"-leader-election", &le)
	for _, need := range []struct{ group, resource, verb string }{
		{"coordination.k8s.io", "leases", "get"},
		{"coordination.k8s.io", "leases", "create"},
		{"coordination.k8s.io", "leases", "update"},
		{"", "events", "create"},
		{"", "events", "patch"},
	} {
		if !allows(le.Rules, need.group, need.resource, need.verb) {
			t.Errorf("leader election Role does not allow %s on %s.%s", need.verb, need.resource, need.group)
		}
	}
	var rb rbacv1.RoleBinding
	get(t, r, "RoleBinding", fullname+"-leader-election", &rb)
	if leRef := (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: le.Name}); rb.RoleRef != leRef {
		t.Errorf("leader election RoleBinding roleRef %+v, want %+v", rb.RoleRef, leRef)
	}
	if !reflect.DeepEqual(rb.Subjects, wantSubjects) {
		t.Errorf("leader election RoleBinding subjects %+v, want %+v", rb.Subjects, wantSubjects)
	}
}

// checkClusterRoleRules: the rules are those controller-gen wrote to config/rbac/role.yaml
// when it exists, and in any case let the operator reconcile Tenants (the kind with a
// controller, see PROJECT).
func checkClusterRoleRules(t *testing.T, rules []rbacv1.PolicyRule) {
	roleFile := filepath.Join(repoRoot(t), "config", "rbac", "role.yaml")
	if data, err := os.ReadFile(roleFile); err == nil {
		var generated rbacv1.ClusterRole
		if err := yaml.UnmarshalStrict(data, &generated); err != nil {
			t.Fatalf("%s: %v", roleFile, err)
		}
		if !reflect.DeepEqual(rules, generated.Rules) {
			t.Errorf("the chart's ClusterRole rules differ from config/rbac/role.yaml: run `make manifests`\n chart %+v\n  role %+v", rules, generated.Rules)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	const group = "analytics.shoal.dev"
	for _, need := range []struct{ resource, verb string }{
		{"tenants", "get"},
		{"tenants", "list"},
		{"tenants", "watch"},
		{"tenants", "update"},
		{"tenants/status", "update"},
		{"tenants/finalizers", "update"},
	} {
		if !allows(rules, group, need.resource, need.verb) {
			t.Errorf("ClusterRole does not allow %s on %s.%s", need.verb, need.resource, group)
		}
	}
}

func allows(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	match := func(list []string, s string) bool { return slices.Contains(list, s) || slices.Contains(list, "*") }
	for _, r := range rules {
		if match(r.APIGroups, group) && match(r.Resources, resource) && match(r.Verbs, verb) {
			return true
		}
	}
	return false
}

// checkService: the metrics Service selects the operator pods and targets the metrics port.
func checkService(t *testing.T, r *release, want expectation) {
	if want.metricsPort == 0 {
		return
	}
	var svc corev1.Service
	get(t, r, "Service", fullname+"-metrics", &svc)
	var d appsv1.Deployment
	get(t, r, "Deployment", fullname, &d)
	if d.Spec.Selector == nil {
		t.Fatal("Deployment has no selector")
	}
	if len(svc.Spec.Selector) == 0 || !reflect.DeepEqual(svc.Spec.Selector, d.Spec.Selector.MatchLabels) {
		t.Errorf("Service selector %v, want the Deployment's %v", svc.Spec.Selector, d.Spec.Selector.MatchLabels)
	}
	if len(svc.Spec.Ports) != 1 {
		t.Fatalf("Service ports %+v, want one", svc.Spec.Ports)
	}
	p := svc.Spec.Ports[0]
	if p.Name != "metrics" || p.Port != want.metricsPort || p.TargetPort != intstr.FromString("metrics") {
		t.Errorf("Service port %+v, want metrics %d -> container port metrics", p, want.metricsPort)
	}
}

type crdFile struct {
	name string
	data []byte
}

// crdFiles reads config/crd/bases, controller-gen's output.
func crdFiles(t *testing.T) []crdFile {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "config", "crd", "bases")
	names, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatalf("no CRDs in %s", dir)
	}
	var files []crdFile
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, crdFile{name: filepath.Base(n), data: data})
	}
	return files
}

// TestCRDs: the chart's CRDs are controller-gen's, byte for byte, in the chart directory
// and as helm renders them, and none is a template.
func TestCRDs(t *testing.T) {
	want := crdFiles(t)

	chartCRDs, err := os.ReadDir(filepath.Join(chartDir(t), "crds"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range chartCRDs {
		names = append(names, e.Name())
	}
	var wantNames []string
	for _, f := range want {
		wantNames = append(wantNames, f.name)
	}
	if !slices.Equal(names, wantNames) {
		t.Errorf("charts/shoal/crds holds %v, config/crd/bases %v: run `make manifests`", names, wantNames)
	}

	r := render(t, []string{"--include-crds"})
	rendered := map[string]string{}
	for _, s := range r.Sections {
		if strings.HasPrefix(s.Source, "shoal/crds/") {
			rendered[strings.TrimPrefix(s.Source, "shoal/crds/")] = s.Content
		}
	}
	if got := slices.Sorted(maps.Keys(rendered)); !slices.Equal(got, wantNames) {
		t.Errorf("helm rendered the CRDs %v, want %v", got, wantNames)
	}
	for _, f := range want {
		got, ok := rendered[f.name]
		if !ok {
			continue
		}
		if got != string(f.data) {
			t.Errorf("CRD %s as helm renders it differs from config/crd/bases/%s: run `make manifests`", f.name, f.name)
		}
	}

	var crds []string
	for _, o := range r.Objects {
		if o.U.GetKind() != "CustomResourceDefinition" {
			continue
		}
		crds = append(crds, o.U.GetName())
		if !strings.HasPrefix(o.Source, "shoal/crds/") {
			t.Errorf("CRD %s comes from %s, not from crds/ (Helm would delete it with the release)", o.U.GetName(), o.Source)
		}
	}
	sort.Strings(crds)
	wantCRDs := []string{"dashboards.analytics.shoal.dev", "datasources.analytics.shoal.dev", "pipelines.analytics.shoal.dev", "tenants.analytics.shoal.dev"}
	if !slices.Equal(crds, wantCRDs) {
		t.Errorf("CRDs %v, want %v", crds, wantCRDs)
	}

	if plain := render(t, nil); slices.ContainsFunc(plain.Objects, func(o object) bool { return o.U.GetKind() == "CustomResourceDefinition" }) {
		t.Error("helm template without --include-crds renders CRDs: they must live in crds/ only")
	}
}

// TestDefaultPlatformConfig: with default values the chart configures the operator as
// config/platform.yaml does.
func TestDefaultPlatformConfig(t *testing.T) {
	want, err := config.Load(filepath.Join(repoRoot(t), "config", "platform.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	get(t, render(t, nil), "ConfigMap", fullname+"-config", &cm)
	got, err := config.Parse([]byte(cm.Data[configKey]))
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("the chart's default platform config differs from config/platform.yaml:\n chart %+v\n  file %+v", got, want)
	}
}

// TestConfigChecksum: a config change changes the pods' checksum annotation (rolling them);
// a change elsewhere does not.
func TestConfigChecksum(t *testing.T) {
	checksum := func(args []string, values ...string) string {
		t.Helper()
		var d appsv1.Deployment
		get(t, render(t, args, values...), "Deployment", fullname, &d)
		sum := d.Spec.Template.Annotations["checksum/config"]
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(sum) {
			t.Fatalf("checksum/config %q is not a SHA-256", sum)
		}
		return sum
	}
	base := checksum(nil)
	if got := checksum([]string{"--set-string", "image.tag=other"}); got != base {
		t.Errorf("checksum changed with the image tag only: %s -> %s", base, got)
	}
	if got := checksum(nil, "platform:\n  plans:\n    - name: only\n"); got == base {
		t.Error("checksum unchanged by a new plan catalog")
	}
	if got := checksum([]string{"--set", "platform.operator.deletionTimeout=10m"}); got == base {
		t.Error("checksum unchanged by operator.deletionTimeout")
	}
	if got := checksum([]string{"--set", "platform.clickhouse.addr=ch:9000"}); got == base {
		t.Error("checksum unchanged by clickhouse.addr")
	}
}

// TestInvalidValues: values the chart cannot turn into a working operator fail rendering.
func TestInvalidValues(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"health address without port", []string{"--set", "platform.operator.healthAddr=localhost"}, `address "localhost" has no port`},
		{"metrics address without port", []string{"--set", "platform.operator.metricsAddr=metrics"}, `address "metrics" has no port`},
		{"stripe prices in the billing section", []string{"--set", "platform.billing.prices.free=price_x"}, "set platform.plans[].stripePriceID instead"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, err := runHelm(t, renderArgs(t, tt.args)...)
			if err == nil {
				t.Fatal("helm template succeeded")
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("helm template failed with %q, want an error containing %q", stderr, tt.wantErr)
			}
		})
	}
}

func TestLint(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"defaults", nil},
		{"leader election", []string{"--set", "replicas=3"}},
		{"existing service account", []string{"--set", "serviceAccount.create=false", "--set", "serviceAccount.name=x"}},
		{"backend secret", []string{"--set", "backendSecret.name=shoal-backends"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, err := runHelm(t, append([]string{"lint", "--strict", chartDir(t)}, tt.args...)...)
			if err != nil {
				t.Fatalf("helm lint --strict: %v\n%s%s", err, out, stderr)
			}
			if !strings.Contains(out, "0 chart(s) failed") {
				t.Errorf("helm lint output does not report success:\n%s", out)
			}
		})
	}
}

// TestQueryConfigRendered: the query API's section of the values reaches the platform
// config the pods read.
func TestQueryConfigRendered(t *testing.T) {
	values := `platform:
  query:
    publicURL: https://analytics.example.com
    alerts:
      allowPrivateWebhookTargets: true
`
	var cm corev1.ConfigMap
	get(t, render(t, nil, values), "ConfigMap", fullname+"-config", &cm)
	got, err := config.Parse([]byte(cm.Data[configKey]))
	if err != nil {
		t.Fatal(err)
	}
	if got.Query.PublicURL != "https://analytics.example.com" || !got.Query.Alerts.AllowPrivateWebhookTargets {
		t.Errorf("rendered query section %+v, want the values' publicURL and allowPrivateWebhookTargets", got.Query)
	}
}
