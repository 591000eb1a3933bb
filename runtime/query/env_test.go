package query

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/internal/auth"
	"github.com/shoal-dev/shoal/internal/auth/devissuer"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/sealing"
	"github.com/shoal-dev/shoal/internal/testbackends"
	"github.com/shoal-dev/shoal/runtime/query/metricquery"
)

// shared are the backends every test uses: one PostgreSQL server (a database per test)
// and one OIDC issuer.
var shared struct {
	postgres *testbackends.Postgres
	issuer   *devissuer.Server
}

const testAudience = "shoal-query-test"

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	suite := testbackends.NewSuite("query")
	defer suite.Close()
	if err := suite.Do(func(tb testing.TB) {
		shared.postgres = testbackends.StartPostgres(tb)
		iss, err := devissuer.Start("127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = iss.Close() })
		shared.issuer = iss
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// fakeEngine stands in for the ClickHouse engine, which has its own tests against a real
// server: it answers every query with series that name the tenant asked for, so a test
// sees whose data came back, and it records every call, so a test sees what reached it.
// Pipelines named "broken", "slow" and "missing" fail, time out and are unknown.
type fakeEngine struct {
	mu     sync.Mutex
	calls  []engineCall
	values map[string]float64 // tenant -> value of every point
}

type engineCall struct {
	Tenant string
	Query  metricquery.Query
}

func newFakeEngine() *fakeEngine { return &fakeEngine{values: map[string]float64{}} }

func (e *fakeEngine) Query(ctx context.Context, tenantID string, q metricquery.Query) (metricquery.Result, error) {
	e.mu.Lock()
	e.calls = append(e.calls, engineCall{Tenant: tenantID, Query: q})
	value := e.values[tenantID]
	e.mu.Unlock()
	switch q.Pipeline {
	case "broken":
		return metricquery.Result{}, fmt.Errorf("clickhouse: code 60: table does not exist: %w", metricquery.ErrUnavailable)
	case "slow":
		<-ctx.Done()
		return metricquery.Result{}, ctx.Err()
	case "missing":
		return metricquery.Result{}, fmt.Errorf("pipeline %q: %w", q.Pipeline, metricquery.ErrNotFound)
	}
	name := string(q.Aggregate)
	if q.Mode == metricquery.ModePipeline {
		name = q.Metrics[0]
	}
	return metricquery.Result{
		Source: metricquery.SourceRaw,
		Series: []metricquery.Series{{
			Group:  map[string]string{"tenant": tenantID},
			Points: []metricquery.Point{{Time: q.From, Values: map[string]float64{name: value}}},
		}},
		Stats: metricquery.Stats{RowsRead: 1},
	}, nil
}

func (e *fakeEngine) setValue(tenant string, v float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.values[tenant] = v
}

func (e *fakeEngine) callCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.calls)
}

func (e *fakeEngine) tenantsCalled() map[string]bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]bool{}
	for _, c := range e.calls {
		out[c.Tenant] = true
	}
	return out
}

// fakeUsage stands in for the ClickHouse count of a tenant's events.
type fakeUsage struct{}

func (fakeUsage) EventsIngested(_ context.Context, tenantID string, _, _ time.Time) (uint64, error) {
	return uint64(len(tenantID)) * 1000, nil
}

// tenantFixture is a tenant with one user of each role, each with a personal token.
type tenantFixture struct {
	id     string
	users  map[auth.Role]metastore.User
	tokens map[auth.Role]string
}

type env struct {
	t       *testing.T
	store   *metastore.Store
	engine  *fakeEngine
	server  *Server
	http    *httptest.Server
	tenants map[string]*tenantFixture
}

var roles = []auth.Role{auth.RoleOwner, auth.RoleAdmin, auth.RoleEditor, auth.RoleViewer}

func testPlatform() *config.Platform {
	p := &config.Platform{
		Plans: []config.Plan{{Name: "team", DisplayName: "Team"}},
		Query: config.Query{
			PublicURL: "https://analytics.example.com",
			RateLimit: config.QueryRateLimit{RequestsPerSecond: 1000, Burst: 10000},
			OIDC:      &auth.OIDCConfig{IssuerURL: shared.issuer.URL(), Audience: testAudience, AllowInsecureHTTP: true},
		},
	}
	p.Default()
	return p
}

// newEnv starts a server on a fresh database with tenants acme and globex. edit changes
// the options before the server is built.
func newEnv(t *testing.T, edit func(*Options)) *env {
	t.Helper()
	ctx := ctxFor(t)
	name := strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	store, err := metastore.Open(ctx, metastore.Config{DSN: shared.postgres.CreateDatabase(t, name)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	e := &env{t: t, store: store, engine: newFakeEngine(), tenants: map[string]*tenantFixture{}}
	for _, id := range []string{"acme", "globex"} {
		if err := store.UpsertTenant(ctx, metastore.TenantRecord{ID: id, DisplayName: id, Plan: "team", Isolation: metastore.IsolationShared}); err != nil {
			t.Fatal(err)
		}
		f := &tenantFixture{id: id, users: map[auth.Role]metastore.User{}, tokens: map[auth.Role]string{}}
		for _, role := range roles {
			u, err := store.AddUser(ctx, id, string(role)+"@"+id+".example", string(role))
			if err != nil {
				t.Fatal(err)
			}
			_, tok, err := store.CreatePersonalToken(ctx, id, u.ID, "test", nil)
			if err != nil {
				t.Fatal(err)
			}
			f.users[role], f.tokens[role] = u, tok
		}
		e.tenants[id] = f
	}
	platform := testPlatform()
	verifier, err := auth.NewOIDCVerifier(*platform.Query.OIDC)
	if err != nil {
		t.Fatal(err)
	}
	key, err := sealing.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keyring, err := sealing.Load(sealing.Config{Keys: []sealing.KeyConfig{{ID: "k1", Value: key}}})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Platform:        platform,
		Store:           store,
		Keyring:         keyring,
		Authenticator:   auth.NewAuthenticator(store, verifier, nil),
		Engine:          e.engine,
		Usage:           fakeUsage{},
		WebhooksEnabled: true,
		EmailEnabled:    true,
	}
	if edit != nil {
		edit(&opts)
	}
	e.server, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.http = httptest.NewServer(e.server)
	t.Cleanup(e.http.Close)
	return e
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// answer is a response, its body read.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("answer %d %s: %v", a.status, a.body, err)
	}
}

// problem is the problem document of an error answer.
func (a answer) problem(t *testing.T) problemDoc {
	t.Helper()
	var p problemDoc
	a.json(t, &p)
	return p
}

type problemDoc struct {
	Type, Title, Detail, RequestID string
	Status                         int
	InvalidParams                  []struct{ Name, Reason string }
}

func (p problemDoc) names(param string) bool {
	for _, ip := range p.InvalidParams {
		if ip.Name == param || strings.HasPrefix(ip.Name, param+".") || strings.HasPrefix(ip.Name, param+"[") {
			return true
		}
	}
	return false
}

// do sends a request with the token (none when empty) and a JSON body (none when nil).
func (e *env) do(method, path, token string, body any) answer {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctxFor(e.t), method, e.http.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.http.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: data}
}

func (e *env) token(tenant string, role auth.Role) string { return e.tenants[tenant].tokens[role] }

// Fixtures: objects made straight in the store, named after their tenant so that a
// leak shows in a body.

func widgetQuery(pipeline string) json.RawMessage {
	return json.RawMessage(`{"pipeline":"` + pipeline + `","metric":"views","interval":"hour"}`)
}

func (e *env) dashboard(tenant string, name string, public bool, pipelines ...string) metastore.Dashboard {
	e.t.Helper()
	spec := metastore.DashboardSpec{Name: name, Title: "Title of " + name, Public: public, TimeFrom: "now-24h", TimeTo: "now"}
	for _, p := range pipelines {
		spec.Widgets = append(spec.Widgets, metastore.Widget{Type: metastore.WidgetTimeseries, Title: p, Query: widgetQuery(p)})
	}
	d, err := e.store.CreateDashboard(ctxFor(e.t), tenant, spec)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func (e *env) dataSource(tenant, name string) metastore.DataSource {
	e.t.Helper()
	d, err := e.server.sources.Create(ctxFor(e.t), tenant, metastore.DataSourceSpec{
		Name: name, Type: metastore.DataSourceHTTP, Config: json.RawMessage(`{"url":"https://` + tenant + `.example/feed"}`),
		Credentials: map[string]string{"token": "secret-of-" + tenant},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func ruleQuery(pipeline string) json.RawMessage {
	raw, _ := json.Marshal(ruleDefinition{Query: StoredQuery{Pipeline: pipeline, Metric: "views"}})
	return raw
}

func (e *env) alertRule(tenant, name string) metastore.AlertRule {
	e.t.Helper()
	r, err := e.store.CreateAlertRule(ctxFor(e.t), tenant, metastore.AlertRuleSpec{
		Name: name, Query: ruleQuery("web"), Enabled: true,
		Condition: metastore.AlertCondition{Operator: metastore.OpGreater, Threshold: 10, Window: metav1.Duration{Duration: 5 * time.Minute}},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) personalToken(tenant string, role auth.Role) metastore.PersonalToken {
	e.t.Helper()
	tok, _, err := e.store.CreatePersonalToken(ctxFor(e.t), tenant, e.tenants[tenant].users[role].ID, "extra", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}
