// Package crd_test checks the CRDs in config/crd/bases against a real kube-apiserver: every
// invalid spec a user is likely to write is refused with a message that says what is wrong,
// and every sample in config/samples is accepted as written, with the schema defaults
// filled in. No controller runs here: what is tested is the API server's own validation
// (OpenAPI schema and CEL rules) of what kubectl or a client sends.
package crd_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/testenv"
)

// env is the API server every test of the package talks to.
var env *testenv.Env

const (
	// invalidNamespace holds the namespaced objects of the refusal table.
	invalidNamespace = "crd-validation"
	// samplesNamespace is where the samples put Pipelines, Dashboards and DataSources; the
	// operator would create it for Tenant acme, but none runs here.
	samplesNamespace = "tenant-acme"
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "crd tests:", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping test API server:", err)
		}
	}()
	return m.Run()
}

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(ctxFor(t), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
}

// obj is a JSON object as the API server sees it.
type obj = map[string]any

// newObject builds an unstructured Shoal object of kind with the given spec. Namespaced
// kinds go to namespace; Tenants are cluster-scoped and ignore it.
func newObject(kind, namespace, name string, spec obj) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: obj{"spec": spec}}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind(kind))
	u.SetName(name)
	if kind != "Tenant" {
		u.SetNamespace(namespace)
	}
	u.Object = normalize(u.Object).(obj)
	return u
}

// normalize passes a value through JSON, so Go literals (int, []string, ...) compare
// equal to what the API server returns and are safe for unstructured's deep copies.
func normalize(v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		panic(err)
	}
	return out
}

// Valid base specs. Each case of the refusal table starts from one of these, which the API
// server is shown to accept, and breaks one thing.

func baseSpec(kind string) obj {
	switch kind {
	case "Tenant":
		return obj{
			"displayName": "Validation Test",
			"plan":        "team",
			"owners":      []any{"ops@example.com"},
		}
	case "Pipeline":
		return obj{
			"source":  obj{"eventTypes": []any{"signup"}},
			"metrics": []any{obj{"name": "signups", "type": "count"}},
		}
	case "Dashboard":
		return obj{
			"title": "Signups",
			"widgets": []any{obj{
				"id":       "signups",
				"type":     "timeseries",
				"query":    obj{"pipeline": "signups", "metric": "signups"},
				"position": obj{"column": 0, "row": 0, "width": 6, "height": 4},
			}},
		}
	case "DataSource":
		return obj{
			"type":     "http",
			"schedule": "@every 15m",
			"http":     obj{"url": "https://api.example.com/events"},
			"mapping":  obj{"eventType": "api_event"},
		}
	}
	panic("unknown kind " + kind)
}

// dedicated turns a base Tenant spec into a valid Dedicated one.
func dedicated(spec obj) {
	spec["isolation"] = "Dedicated"
	spec["dedicated"] = obj{"clickhouse": obj{"storage": "100Gi"}}
}

// postgres turns a base DataSource spec into a postgres source, leaving out
// credentialsSecretRef (which postgresWithSecret adds).
func postgres(spec obj) {
	spec["type"] = "postgres"
	delete(spec, "http")
	spec["postgres"] = obj{"host": "db.example.com", "database": "shop", "query": "SELECT 1", "cursorColumn": "id"}
}

// Paths like "widgets[0].query.groupBy" into JSON objects.

func splitSegment(seg string) (string, int) {
	key, rest, ok := strings.Cut(seg, "[")
	if !ok {
		return seg, -1
	}
	i, err := strconv.Atoi(strings.TrimSuffix(rest, "]"))
	if err != nil {
		panic("bad path segment " + seg)
	}
	return key, i
}

func getPath(root any, path string) (any, bool) {
	cur := root
	for _, seg := range strings.Split(path, ".") {
		key, idx := splitSegment(seg)
		m, ok := cur.(obj)
		if !ok {
			return nil, false
		}
		if cur, ok = m[key]; !ok {
			return nil, false
		}
		if idx >= 0 {
			l, ok := cur.([]any)
			if !ok || idx >= len(l) {
				return nil, false
			}
			cur = l[idx]
		}
	}
	return cur, true
}

// parentOf returns the object holding the last segment of path, and that segment's key.
func parentOf(root obj, path string) (obj, string) {
	dot := strings.LastIndex(path, ".")
	if dot < 0 {
		return root, path
	}
	parent, ok := getPath(root, path[:dot])
	if !ok {
		panic("no " + path[:dot])
	}
	return parent.(obj), path[dot+1:]
}

func set(root obj, path string, v any) {
	parent, key := parentOf(root, path)
	parent[key] = normalize(v)
}

// invalidCase is a spec the API server must refuse.
type invalidCase struct {
	name string
	kind string
	// objName replaces the generated metadata.name.
	objName string
	// mutate breaks the base spec; for update cases it prepares the stored object.
	mutate func(spec obj)
	// update, when set, makes this an update case: the mutated object is created, then
	// update is applied to it and the update must be refused.
	update func(spec obj)
	// field is the path the API server names in the refusal, msg the text it gives.
	field string
	msg   string
}

func invalidCases() []invalidCase {
	return []invalidCase{
		// Tenant.
		{
			name: "tenant dedicated block with isolation Shared", kind: "Tenant",
			mutate: func(s obj) { dedicated(s); s["isolation"] = "Shared" },
			field:  "spec", msg: "spec.dedicated is only allowed with isolation: Dedicated",
		},
		{
			name: "tenant dedicated block with isolation defaulted to Shared", kind: "Tenant",
			mutate: func(s obj) { dedicated(s); delete(s, "isolation") },
			field:  "spec", msg: "spec.dedicated is only allowed with isolation: Dedicated",
		},
		{
			name: "tenant Dedicated without dedicated block", kind: "Tenant",
			mutate: func(s obj) { s["isolation"] = "Dedicated" },
			field:  "spec", msg: "isolation: Dedicated requires spec.dedicated (ClickHouse and runtime sizing)",
		},
		{
			name: "tenant isolation changed Shared to Dedicated", kind: "Tenant",
			mutate: func(s obj) { s["isolation"] = "Shared" },
			update: dedicated,
			field:  "spec.isolation", msg: "isolation cannot be changed after creation; moving a tenant between Shared and Dedicated is a promotion, which Shoal does not support yet",
		},
		{
			name: "tenant isolation changed Dedicated to Shared", kind: "Tenant",
			mutate: dedicated,
			update: func(s obj) { s["isolation"] = "Shared"; delete(s, "dedicated") },
			field:  "spec.isolation", msg: "isolation cannot be changed after creation",
		},
		{
			name: "tenant kafka partitions decreased", kind: "Tenant",
			mutate: func(s obj) { s["kafka"] = obj{"partitions": 6} },
			update: func(s obj) { set(s, "kafka.partitions", 3) },
			field:  "spec.kafka.partitions", msg: "kafka partitions can only grow: Kafka cannot remove partitions from a topic",
		},
		{
			name: "tenant kafka partitions above 256", kind: "Tenant",
			mutate: func(s obj) { s["kafka"] = obj{"partitions": 300} },
			field:  "spec.kafka.partitions", msg: "should be less than or equal to 256",
		},
		{
			name: "tenant name not a DNS label", kind: "Tenant", objName: "acme.corp",
			field: "<nil>", msg: "tenant name must be a DNS label of at most 56 characters (lowercase letters, digits and '-'): it becomes the namespace tenant-<name>",
		},
		{
			name: "tenant name of 57 characters", kind: "Tenant", objName: strings.Repeat("a", 57),
			field: "<nil>", msg: "tenant name must be a DNS label of at most 56 characters",
		},
		{
			name: "tenant owner not an e-mail address", kind: "Tenant",
			mutate: func(s obj) { s["owners"] = []any{"ops@example.com", "not-an-email"} },
			field:  "spec.owners[1]", msg: `spec.owners[1] in body should match '^[^@\s]+@[^@\s]+\.[^@\s]+$'`,
		},
		{
			name: "tenant without owners", kind: "Tenant",
			mutate: func(s obj) { s["owners"] = []any{} },
			field:  "spec.owners", msg: "should have at least 1 items",
		},
		{
			name: "tenant without displayName", kind: "Tenant",
			mutate: func(s obj) { delete(s, "displayName") },
			field:  "spec.displayName", msg: "Required value",
		},
		{
			name: "tenant storage below 1Gi", kind: "Tenant",
			mutate: func(s obj) { dedicated(s); set(s, "dedicated.clickhouse.storage", "512Mi") },
			field:  "spec.dedicated.clickhouse.storage", msg: "storage must be between 1Gi and 16Ti",
		},
		{
			name: "tenant storage above 16Ti", kind: "Tenant",
			mutate: func(s obj) { dedicated(s); set(s, "dedicated.clickhouse.storage", "17Ti") },
			field:  "spec.dedicated.clickhouse.storage", msg: "storage must be between 1Gi and 16Ti",
		},
		{
			name: "tenant storage shrunk", kind: "Tenant",
			mutate: func(s obj) { dedicated(s); set(s, "dedicated.clickhouse.storage", "500Gi") },
			update: func(s obj) { set(s, "dedicated.clickhouse.storage", "200Gi") },
			field:  "spec.dedicated.clickhouse.storage", msg: "storage can grow but not shrink",
		},
		{
			name: "tenant plan not a plan name", kind: "Tenant",
			mutate: func(s obj) { s["plan"] = "Team_Plus" },
			field:  "spec.plan", msg: "spec.plan in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'",
		},
		{
			name: "tenant isolation not in enum", kind: "Tenant",
			mutate: func(s obj) { s["isolation"] = "Hybrid" },
			field:  "spec.isolation", msg: `Unsupported value: "Hybrid": supported values: "Shared", "Dedicated"`,
		},
		{
			name: "tenant rawEventsDays zero", kind: "Tenant",
			mutate: func(s obj) { s["retention"] = obj{"rawEventsDays": 0} },
			field:  "spec.retention.rawEventsDays", msg: "should be greater than or equal to 1",
		},

		// Pipeline.
		{
			name: "pipeline sum metric without field", kind: "Pipeline",
			mutate: func(s obj) { s["metrics"] = []any{obj{"name": "revenue", "type": "sum"}} },
			field:  "spec.metrics[0]", msg: "field is required for sum, avg, min, max, uniq and quantile metrics",
		},
		{
			name: "pipeline count metric with field", kind: "Pipeline",
			mutate: func(s obj) { set(s, "metrics[0].field", "user_id") },
			field:  "spec.metrics[0]", msg: "count metrics take no field",
		},
		{
			name: "pipeline quantile metric without quantiles", kind: "Pipeline",
			mutate: func(s obj) {
				s["metrics"] = []any{obj{"name": "latency", "type": "quantile", "field": "properties.ms"}}
			},
			field: "spec.metrics[0]", msg: "quantiles is required for quantile metrics and allowed only there",
		},
		{
			name: "pipeline avg metric with quantiles", kind: "Pipeline",
			mutate: func(s obj) {
				s["metrics"] = []any{obj{"name": "latency", "type": "avg", "field": "properties.ms", "quantiles": []any{"0.5"}}}
			},
			field: "spec.metrics[0]", msg: "quantiles is required for quantile metrics and allowed only there",
		},
		{
			name: "pipeline eq filter with two values", kind: "Pipeline",
			mutate: func(s obj) {
				set(s, "source.filter", []any{obj{"field": "properties.country", "op": "eq", "values": []any{"DE", "FR"}}})
			},
			field: "spec.source.filter[0]", msg: "operator 'in' takes one or more values; every other operator takes exactly one",
		},
		{
			name: "pipeline duplicate metric names", kind: "Pipeline",
			mutate: func(s obj) {
				s["metrics"] = []any{obj{"name": "signups", "type": "count"}, obj{"name": "signups", "type": "uniq", "field": "user_id"}}
			},
			field: "spec.metrics[1]", msg: "Duplicate value",
		},
		{
			name: "pipeline metric type not in enum", kind: "Pipeline",
			mutate: func(s obj) { set(s, "metrics[0].type", "median") },
			field:  "spec.metrics[0].type", msg: `Unsupported value: "median"`,
		},
		{
			name: "pipeline dimension not a field reference", kind: "Pipeline",
			mutate: func(s obj) { s["dimensions"] = []any{"country"} },
			field:  "spec.dimensions[0]", msg: "should match",
		},
		{
			name: "pipeline backfill since while disabled", kind: "Pipeline",
			mutate: func(s obj) { s["backfill"] = obj{"enabled": false, "since": "2024-01-01T00:00:00Z"} },
			field:  "spec.backfill", msg: "backfill.since is only allowed when backfill is enabled",
		},
		{
			name: "pipeline without source", kind: "Pipeline",
			mutate: func(s obj) { delete(s, "source") },
			field:  "spec.source", msg: "Required value",
		},

		// Dashboard.
		{
			name: "dashboard widget wider than the grid", kind: "Dashboard",
			mutate: func(s obj) { set(s, "widgets[0].position", obj{"column": 8, "row": 0, "width": 6, "height": 4}) },
			field:  "spec.widgets[0].position", msg: "widget does not fit the 12-column grid: column + width must be at most 12",
		},
		{
			name: "dashboard pie widget without groupBy", kind: "Dashboard",
			mutate: func(s obj) { set(s, "widgets[0].type", "pie") },
			field:  "spec.widgets[0]", msg: "pie widgets need exactly one groupBy dimension",
		},
		{
			name: "dashboard pie widget with two groupBy", kind: "Dashboard",
			mutate: func(s obj) {
				set(s, "widgets[0].type", "pie")
				set(s, "widgets[0].query.groupBy", []any{"properties.country", "properties.plan"})
			},
			field: "spec.widgets[0]", msg: "pie widgets need exactly one groupBy dimension",
		},
		{
			name: "dashboard number widget with groupBy", kind: "Dashboard",
			mutate: func(s obj) {
				set(s, "widgets[0].type", "number")
				set(s, "widgets[0].query.groupBy", []any{"properties.country"})
			},
			field: "spec.widgets[0]", msg: "number widgets show a single value and take no groupBy",
		},
		{
			name: "dashboard refreshSeconds below 10", kind: "Dashboard",
			mutate: func(s obj) { s["refreshSeconds"] = 5 },
			field:  "spec.refreshSeconds", msg: "refreshSeconds must be 0 (off) or between 10 and 86400",
		},
		{
			name: "dashboard refreshSeconds above a day", kind: "Dashboard",
			mutate: func(s obj) { s["refreshSeconds"] = 86401 },
			field:  "spec.refreshSeconds", msg: "refreshSeconds must be 0 (off) or between 10 and 86400",
		},
		{
			name: "dashboard time range from equals to", kind: "Dashboard",
			mutate: func(s obj) { s["timeRange"] = obj{"from": "now-1h", "to": "now-1h"} },
			field:  "spec.timeRange", msg: "timeRange.from and timeRange.to must differ",
		},
		{
			name: "dashboard widget type not in enum", kind: "Dashboard",
			mutate: func(s obj) { set(s, "widgets[0].type", "gauge") },
			field:  "spec.widgets[0].type", msg: `Unsupported value: "gauge"`,
		},

		// DataSource.
		{
			name: "datasource http without http block", kind: "DataSource",
			mutate: func(s obj) { delete(s, "http") },
			field:  "spec", msg: "the http block is required for type http and allowed only there",
		},
		{
			name: "datasource http with postgres block", kind: "DataSource",
			mutate: func(s obj) {
				s["postgres"] = obj{"host": "db.example.com", "database": "shop", "query": "SELECT 1", "cursorColumn": "id"}
			},
			field: "spec", msg: "the postgres block is required for type postgres and allowed only there",
		},
		{
			name: "datasource s3 with http block", kind: "DataSource",
			mutate: func(s obj) { s["type"] = "s3"; s["s3"] = obj{"bucket": "events"} },
			field:  "spec", msg: "the http block is required for type http and allowed only there",
		},
		{
			name: "datasource webhook with schedule", kind: "DataSource",
			mutate: func(s obj) { s["type"] = "webhook"; delete(s, "http") },
			field:  "spec", msg: "schedule is required for polled sources (http, postgres, s3) and not allowed for webhook, which is pushed to",
		},
		{
			name: "datasource polled source without schedule", kind: "DataSource",
			mutate: func(s obj) { delete(s, "schedule") },
			field:  "spec", msg: "schedule is required for polled sources (http, postgres, s3) and not allowed for webhook",
		},
		{
			name: "datasource postgres without credentialsSecretRef", kind: "DataSource",
			mutate: postgres,
			field:  "spec", msg: "postgres sources need credentialsSecretRef, a Secret holding the password",
		},
		{
			name: "datasource mapping with eventType and eventTypeField", kind: "DataSource",
			mutate: func(s obj) { set(s, "mapping.eventTypeField", "kind") },
			field:  "spec.mapping", msg: "set exactly one of eventType (a fixed type) and eventTypeField (read from each record)",
		},
		{
			name: "datasource mapping without an event type", kind: "DataSource",
			mutate: func(s obj) { s["mapping"] = obj{"timestampField": "ts"} },
			field:  "spec.mapping", msg: "set exactly one of eventType (a fixed type) and eventTypeField (read from each record)",
		},
		{
			name: "datasource http url with ftp scheme", kind: "DataSource",
			mutate: func(s obj) { set(s, "http.url", "ftp://files.example.com/events.json") },
			field:  "spec.http.url", msg: "url must be an http or https URL",
		},
		{
			name: "datasource http url not a URL", kind: "DataSource",
			mutate: func(s obj) { set(s, "http.url", "api.example.com/events") },
			field:  "spec.http.url", msg: "url must be an http or https URL",
		},
		{
			name: "datasource schedule not cron or @every", kind: "DataSource",
			mutate: func(s obj) { s["schedule"] = "every 5 minutes" },
			field:  "spec.schedule", msg: "spec.schedule in body should match",
		},
		{
			name: "datasource type not in enum", kind: "DataSource",
			mutate: func(s obj) { s["type"] = "kafka"; delete(s, "http") },
			field:  "spec.type", msg: `Unsupported value: "kafka": supported values: "http", "postgres", "s3", "webhook"`,
		},
	}
}

// TestInvalidSpecsAreRefused creates every case of the table and expects the API server to
// refuse it as Invalid, naming the field and saying what is wrong. The unbroken base of
// each case is accepted first (as a dry run, or for real for update cases), so a refusal
// is due to what the case breaks.
func TestInvalidSpecsAreRefused(t *testing.T) {
	ensureNamespace(t, invalidNamespace)
	kinds := map[string]int{}
	for i, c := range invalidCases() {
		kinds[c.kind]++
		t.Run(c.name, func(t *testing.T) {
			ctx := ctxFor(t)
			name := c.objName
			if name == "" {
				name = fmt.Sprintf("invalid-%02d", i)
			}

			base := newObject(c.kind, invalidNamespace, name, baseSpec(c.kind))
			if c.objName != "" {
				// The name is what is wrong: show the spec alone is fine under a good name.
				base.SetName(fmt.Sprintf("invalid-%02d", i))
			}
			if err := env.Client.Create(ctx, base, client.DryRunAll); err != nil {
				t.Fatalf("the unbroken base %s is refused, so the case proves nothing: %v", c.kind, err)
			}

			spec := baseSpec(c.kind)
			if c.mutate != nil {
				c.mutate(spec)
			}
			u := newObject(c.kind, invalidNamespace, name, spec)

			var err error
			if c.update == nil {
				err = env.Client.Create(ctx, u)
				if err == nil {
					_ = env.Client.Delete(ctx, u)
				}
			} else {
				if err := env.Client.Create(ctx, u); err != nil {
					t.Fatalf("creating the object the update starts from: %v", err)
				}
				t.Cleanup(func() { _ = env.Client.Delete(context.Background(), u) })
				stored, _, _ := unstructured.NestedMap(u.Object, "spec")
				c.update(stored)
				if err := unstructured.SetNestedMap(u.Object, normalize(stored).(obj), "spec"); err != nil {
					t.Fatal(err)
				}
				err = env.Client.Update(ctx, u)
			}
			assertInvalid(t, err, c.field, c.msg)
		})
	}
	for _, kind := range []string{"Tenant", "Pipeline", "Dashboard", "DataSource"} {
		if kinds[kind] == 0 {
			t.Errorf("no refusal case for %s", kind)
		}
	}
}

// assertInvalid checks err is an Invalid refusal with a cause on field whose message
// contains msg, and that the whole error (what kubectl prints) contains field and msg.
func assertInvalid(t *testing.T, err error, field, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want Invalid on %s: %q", field, msg)
	}
	if !apierrors.IsInvalid(err) {
		t.Fatalf("refused, but not as Invalid (reason %q): %v", apierrors.ReasonForError(err), err)
	}
	t.Logf("refused: %v", err)
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		t.Fatalf("Invalid without details: %v", err)
	}
	var causes []string
	found := false
	for _, cause := range status.Status().Details.Causes {
		f := cause.Field
		if f == "" {
			f = "<nil>"
		}
		causes = append(causes, fmt.Sprintf("%s: %s", f, cause.Message))
		if f == field && strings.Contains(cause.Message, msg) {
			found = true
		}
	}
	if !found {
		t.Errorf("no cause on %s containing %q; causes:\n  %s", field, msg, strings.Join(causes, "\n  "))
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error message does not contain %q: %v", msg, err)
	}
	if field != "<nil>" && !strings.Contains(err.Error(), field+": ") {
		t.Errorf("error message does not name %s: %v", field, err)
	}
	// A rule that fails to evaluate (a missing optional field, say) still refuses the
	// object, but prefixes its message with the CEL runtime error.
	if strings.Contains(err.Error(), "evaluating rule") {
		t.Errorf("a validation rule failed to evaluate instead of returning false (guard the field with has()): %v", err)
	}
}

// absent marks a path that must not be set after creation.
type absentValue struct{}

var absent = absentValue{}

// sampleCase is an object the API server must accept: a sample as written, or a sample
// with optional fields left out, to see the defaults.
type sampleCase struct {
	name string
	file string
	// mutate, when set, derives another object from the sample (it must rename it).
	mutate func(u *unstructured.Unstructured)
	// defaults maps paths of the stored object to the value the schema must have filled
	// in, or absent.
	defaults map[string]any
}

func sampleCases() []sampleCase {
	return []sampleCase{
		{
			name: "shared tenant as written", file: "analytics_v1alpha1_tenant_shared.yaml",
			defaults: map[string]any{"spec.suspended": false, "spec.dedicated": absent},
		},
		{
			name: "dedicated tenant as written", file: "analytics_v1alpha1_tenant_dedicated.yaml",
			defaults: map[string]any{"spec.suspended": false},
		},
		{
			name: "shared tenant with only required fields", file: "analytics_v1alpha1_tenant_shared.yaml",
			mutate: func(u *unstructured.Unstructured) {
				u.SetName("acme-minimal")
				for _, f := range []string{"isolation", "retention", "kafka", "deletionPolicy"} {
					unstructured.RemoveNestedField(u.Object, "spec", f)
				}
			},
			defaults: map[string]any{
				"spec.isolation":               "Shared",
				"spec.retention.rawEventsDays": 90,
				"spec.retention.lakeClass":     "Standard",
				"spec.kafka.partitions":        3,
				"spec.kafka.retentionHours":    168,
				"spec.deletionPolicy":          "Retain",
				"spec.suspended":               false,
				"spec.dedicated":               absent,
			},
		},
		{
			name: "dedicated tenant with only storage sized", file: "analytics_v1alpha1_tenant_dedicated.yaml",
			mutate: func(u *unstructured.Unstructured) {
				u.SetName("globex-minimal")
				_ = unstructured.SetNestedMap(u.Object, obj{"clickhouse": obj{"storage": "500Gi"}}, "spec", "dedicated")
			},
			defaults: map[string]any{
				"spec.dedicated.clickhouse.shards":       1,
				"spec.dedicated.clickhouse.replicas":     2,
				"spec.dedicated.runtime.ingestReplicas":  2,
				"spec.dedicated.runtime.processReplicas": 1,
				"spec.dedicated.runtime.queryReplicas":   2,
				"spec.dedicated.clickhouse.storage":      "500Gi",
				"spec.isolation":                         "Dedicated",
				"spec.retention.rawEventsDays":           365,
				"spec.deletionPolicy":                    "Archive",
			},
		},
		{
			name: "pipeline as written", file: "analytics_v1alpha1_pipeline.yaml",
			defaults: map[string]any{"spec.backfill.since": absent},
		},
		{
			name: "pipeline without granularities and backfill", file: "analytics_v1alpha1_pipeline.yaml",
			mutate: func(u *unstructured.Unstructured) {
				u.SetName("checkout-minimal")
				unstructured.RemoveNestedField(u.Object, "spec", "granularities")
				unstructured.RemoveNestedField(u.Object, "spec", "backfill")
				unstructured.RemoveNestedField(u.Object, "spec", "dimensions")
			},
			defaults: map[string]any{
				"spec.granularities":    []any{"hour"},
				"spec.backfill.enabled": true,
				"spec.dimensions":       absent,
			},
		},
		{
			name: "dashboard as written", file: "analytics_v1alpha1_dashboard.yaml",
			defaults: map[string]any{"spec.widgets[0].query.groupBy": absent},
		},
		{
			name: "dashboard without time range, refresh and intervals", file: "analytics_v1alpha1_dashboard.yaml",
			mutate: func(u *unstructured.Unstructured) {
				u.SetName("revenue-minimal")
				for _, f := range []string{"public", "timeRange", "refreshSeconds"} {
					unstructured.RemoveNestedField(u.Object, "spec", f)
				}
				widgets, _, _ := unstructured.NestedSlice(u.Object, "spec", "widgets")
				for _, w := range widgets {
					unstructured.RemoveNestedField(w.(obj), "query", "interval")
				}
				_ = unstructured.SetNestedSlice(u.Object, widgets, "spec", "widgets")
			},
			defaults: map[string]any{
				"spec.public":                    false,
				"spec.timeRange.from":            "now-24h",
				"spec.timeRange.to":              "now",
				"spec.refreshSeconds":            60,
				"spec.widgets[0].query.interval": "hour",
				"spec.widgets[2].query.interval": "hour",
			},
		},
		{
			name: "dashboard with only timeRange.from", file: "analytics_v1alpha1_dashboard.yaml",
			mutate: func(u *unstructured.Unstructured) {
				u.SetName("revenue-from")
				_ = unstructured.SetNestedMap(u.Object, obj{"from": "now-30d"}, "spec", "timeRange")
			},
			defaults: map[string]any{"spec.timeRange.from": "now-30d", "spec.timeRange.to": "now"},
		},
		{
			name: "datasource as written", file: "analytics_v1alpha1_datasource.yaml",
			defaults: map[string]any{"spec.http": absent, "spec.s3": absent},
		},
		{
			name: "datasource turned into an s3 source", file: "analytics_v1alpha1_datasource.yaml",
			mutate: func(u *unstructured.Unstructured) {
				u.SetName("exports-s3")
				_ = unstructured.SetNestedField(u.Object, "s3", "spec", "type")
				unstructured.RemoveNestedField(u.Object, "spec", "postgres")
				unstructured.RemoveNestedField(u.Object, "spec", "credentialsSecretRef")
				_ = unstructured.SetNestedMap(u.Object, obj{"bucket": "acme-exports", "prefix": "orders/"}, "spec", "s3")
			},
			defaults: map[string]any{"spec.s3.format": "ndjson"},
		},
	}
}

// readSample decodes one sample file into unstructured objects, exactly as written.
func readSample(t *testing.T, file string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(env.Root, "config", "samples", file))
	if err != nil {
		t.Fatal(err)
	}
	var m obj
	if err := yaml.UnmarshalStrict(data, &m); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return &unstructured.Unstructured{Object: normalize(m).(obj)}
}

// TestSamplesAreAcceptedWithDefaults creates every sample of config/samples (Tenants
// first, then the namespace the operator would make for acme, then the rest) and objects
// derived from them with optional fields left out. Each must be accepted and stored with
// every field it was sent (nothing pruned as unknown) plus the schema's defaults.
func TestSamplesAreAcceptedWithDefaults(t *testing.T) {
	checkSamplesListed(t)

	cases := sampleCases()
	sort.SliceStable(cases, func(i, j int) bool {
		return isTenantFile(cases[i].file) && !isTenantFile(cases[j].file)
	})
	covered := map[string]bool{}
	namespaceMade := false
	for _, c := range cases {
		covered[c.file] = true
		if !isTenantFile(c.file) && !namespaceMade {
			ensureNamespace(t, samplesNamespace)
			namespaceMade = true
		}
		t.Run(c.name, func(t *testing.T) {
			ctx := ctxFor(t)
			u := readSample(t, c.file)
			if c.mutate != nil {
				c.mutate(u)
				u.Object = normalize(u.Object).(obj)
			}
			sent := u.DeepCopy()
			if err := env.Client.Create(ctx, u); err != nil {
				t.Fatalf("%s %s refused: %v", u.GetKind(), u.GetName(), err)
			}

			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(sent.GroupVersionKind())
			key := types.NamespacedName{Namespace: sent.GetNamespace(), Name: sent.GetName()}
			if err := env.Client.Get(ctx, key, got); err != nil {
				t.Fatal(err)
			}
			stored := normalize(got.Object).(obj)
			assertSubset(t, "spec", sent.Object["spec"], stored["spec"])
			for path, want := range c.defaults {
				v, ok := getPath(stored, path)
				if want == absent {
					if ok {
						t.Errorf("%s = %v, want it unset", path, v)
					}
					continue
				}
				if !ok {
					t.Errorf("%s not set, want %v", path, want)
					continue
				}
				if want := normalize(want); !reflect.DeepEqual(v, want) {
					t.Errorf("%s = %#v, want %#v", path, v, want)
				}
			}
		})
	}
	for _, f := range sampleFiles(t) {
		if !covered[f] {
			t.Errorf("sample %s is not in the table", f)
		}
	}
}

func isTenantFile(file string) bool { return strings.Contains(file, "_tenant") }

// sampleFiles lists the object files of config/samples.
func sampleFiles(t *testing.T) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(env.Root, "config", "samples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, m := range matches {
		if base := filepath.Base(m); base != "kustomization.yaml" {
			files = append(files, base)
		}
	}
	if len(files) == 0 {
		t.Fatal("no samples in config/samples")
	}
	return files
}

// checkSamplesListed checks config/samples/kustomization.yaml lists every sample once, the
// Tenants before the objects that live in a tenant's namespace.
func checkSamplesListed(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(env.Root, "config", "samples", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	listed := append([]string(nil), k.Resources...)
	sort.Strings(listed)
	files := sampleFiles(t)
	sort.Strings(files)
	if !reflect.DeepEqual(listed, files) {
		t.Errorf("kustomization.yaml lists %v, config/samples holds %v", listed, files)
	}
	seenOther := false
	for _, r := range k.Resources {
		if !isTenantFile(r) {
			seenOther = true
		} else if seenOther {
			t.Errorf("kustomization.yaml lists Tenant sample %s after a namespaced sample", r)
		}
	}
}

// assertSubset checks every field of sent is stored unchanged in got.
func assertSubset(t *testing.T, path string, sent, got any) {
	t.Helper()
	switch s := sent.(type) {
	case obj:
		g, ok := got.(obj)
		if !ok {
			t.Errorf("%s: stored %#v, sent an object", path, got)
			return
		}
		for k, v := range s {
			gv, ok := g[k]
			if !ok {
				t.Errorf("%s.%s was sent but not stored (pruned as unknown?)", path, k)
				continue
			}
			assertSubset(t, path+"."+k, v, gv)
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(s) {
			t.Errorf("%s: stored %#v, sent %#v", path, got, sent)
			return
		}
		for i := range s {
			assertSubset(t, fmt.Sprintf("%s[%d]", path, i), s[i], g[i])
		}
	default:
		if !reflect.DeepEqual(sent, got) {
			t.Errorf("%s: stored %#v, sent %#v", path, got, sent)
		}
	}
}

// TestAllowedUpdates checks the transition rules refuse only what they should: a tenant's
// partitions and storage may grow, and a spec change that keeps isolation is accepted.
func TestAllowedUpdates(t *testing.T) {
	ctx := ctxFor(t)
	spec := baseSpec("Tenant")
	dedicated(spec)
	spec["kafka"] = obj{"partitions": 6}
	u := newObject("Tenant", "", "allowed-updates", spec)
	if err := env.Client.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), u) })

	steps := []struct {
		name   string
		update func(spec obj)
	}{
		{"grow kafka partitions", func(s obj) { set(s, "kafka.partitions", 12) }},
		{"grow storage", func(s obj) { set(s, "dedicated.clickhouse.storage", "1Ti") }},
		{"change plan, display name and sizing, keeping isolation", func(s obj) {
			s["plan"] = "enterprise"
			s["displayName"] = "Renamed"
			set(s, "dedicated.clickhouse.replicas", 3)
		}},
	}
	for _, step := range steps {
		stored, _, _ := unstructured.NestedMap(u.Object, "spec")
		step.update(stored)
		if err := unstructured.SetNestedMap(u.Object, normalize(stored).(obj), "spec"); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Update(ctx, u); err != nil {
			t.Errorf("%s: refused: %v", step.name, err)
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(u), u); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := &v1alpha1.Tenant{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(u), got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.Kafka.Partitions != 12 || got.Spec.Dedicated.ClickHouse.Storage.String() != "1Ti" || got.Spec.Dedicated.ClickHouse.Replicas != 3 {
		t.Errorf("updates not stored: partitions %d, storage %s, replicas %d",
			got.Spec.Kafka.Partitions, got.Spec.Dedicated.ClickHouse.Storage.String(), got.Spec.Dedicated.ClickHouse.Replicas)
	}
}
