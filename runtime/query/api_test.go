package query

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/auth"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/metastore"
)

// TestMetricsQueryInjection sends SQL and other junk through every parameter that could
// reach SQL: each is a 400 naming the parameter, and the engine never sees it.
func TestMetricsQueryInjection(t *testing.T) {
	e := newEnv(t, nil)
	token := e.token("acme", auth.RoleViewer)
	base := url.Values{"pipeline": {"web"}, "metric": {"views"}}
	for _, tc := range []struct {
		param, value string
	}{
		{"metric", "views; DROP TABLE events"},
		{"metric", "views) UNION SELECT * FROM system.users --"},
		{"metric", "count()"},
		{"pipeline", "web`; DROP DATABASE globex"},
		{"pipeline", "../globex/web"},
		{"groupBy", "properties.x') OR 1=1 --"},
		{"groupBy", "globex.events.user_id"},
		{"groupBy", "toString(user_id)"},
		{"filter", "user_id) OR (1=1:eq:x"},
		{"filter", "user_id:eq' OR '1'='1:x"},
		{"filter", "user_id:gt:1 OR 1=1"},
		{"filter", "properties.a;drop:eq:x"},
		{"interval", "hour; DROP TABLE events"},
		{"interval", "toStartOfInterval(time, INTERVAL 1 SECOND)"},
		{"order", "desc, (SELECT sleep(3))"},
		{"order", "user_id"},
		{"limit", "1; DROP TABLE events"},
		{"limit", "-1"},
		{"from", "now() - INTERVAL 1 YEAR"},
		{"to", "'2024-01-01' OR 1=1"},
		{"database", "globex"},
		{"tenant", "globex"},
	} {
		t.Run(tc.param+"="+tc.value, func(t *testing.T) {
			e.t = t
			v := url.Values{}
			for k, vs := range base {
				v[k] = vs
			}
			v.Set(tc.param, tc.value)
			a := e.do("GET", "/api/v1/metrics/query?"+v.Encode(), token, nil)
			if a.status != http.StatusBadRequest {
				t.Fatalf("%d %s", a.status, a.body)
			}
			if p := a.problem(t); !p.names(tc.param) || a.header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("the problem does not name %s: %s", tc.param, a.body)
			}
		})
	}
	if n := e.engine.callCount(); n != 0 {
		t.Errorf("the engine received %d queries; want none", n)
	}
	// Raw mode's event type is a bound value, not an identifier: any text goes through
	// to the engine, which binds it.
	e.t = t
	a := e.do("GET", "/api/v1/metrics/query?mode=raw&eventType="+url.QueryEscape("x' OR 1=1 --"), token, nil)
	if a.status != http.StatusOK || e.engine.callCount() != 1 {
		t.Errorf("raw mode: %d %s", a.status, a.body)
	}
}

func TestMetricsQueryAnswer(t *testing.T) {
	e := newEnv(t, nil)
	e.engine.setValue("acme", 7)
	a := e.do("GET", "/api/v1/metrics/query?pipeline=web&metric=views&from=now-2h&interval=hour&groupBy=event_type&filter=event_type:in:a,b", e.token("acme", auth.RoleViewer), nil)
	if a.status != http.StatusOK {
		t.Fatalf("%d %s", a.status, a.body)
	}
	var got struct {
		Query struct {
			Pipeline string
			Metrics  []string
			From, To time.Time
			Interval string
			Filters  []StoredFilter
		}
		Source     string
		Series     []struct{ Group map[string]string }
		Statistics struct{ RowsRead int }
	}
	a.json(t, &got)
	if got.Query.Pipeline != "web" || got.Query.To.Sub(got.Query.From) != 2*time.Hour || got.Query.Interval != "hour" ||
		len(got.Query.Filters) != 1 || len(got.Query.Filters[0].Values) != 2 || got.Source != "raw" ||
		len(got.Series) != 1 || got.Series[0].Group["tenant"] != "acme" || got.Statistics.RowsRead != 1 {
		t.Errorf("answer %s", a.body)
	}
	if a.header.Get("RateLimit-Limit") == "" || a.header.Get("X-Request-Id") == "" {
		t.Errorf("headers %v", a.header)
	}
	for _, tc := range []struct {
		pipeline string
		status   int
		param    string
	}{{"missing", 404, "pipeline"}, {"broken", 503, ""}} {
		a := e.do("GET", "/api/v1/metrics/query?metric=views&pipeline="+tc.pipeline, e.token("acme", auth.RoleViewer), nil)
		if a.status != tc.status || (tc.param != "" && !a.problem(t).names(tc.param)) {
			t.Errorf("%s: %d %s", tc.pipeline, a.status, a.body)
		}
		if strings.Contains(string(a.body), "clickhouse") {
			t.Errorf("%s: the engine's error leaks: %s", tc.pipeline, a.body)
		}
	}
}

// TestOpenAPIMatchesRoutes checks that the document describes every route served and
// nothing else, and that what it describes is served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t, nil)
	a := e.do("GET", "/api/v1/openapi.json", "", nil)
	if a.status != http.StatusOK {
		t.Fatalf("%d %s", a.status, a.body)
	}
	var doc struct {
		OpenAPI    string
		Paths      map[string]map[string]map[string]any
		Components struct{ Schemas map[string]any }
	}
	a.json(t, &doc)
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
			for _, ref := range regexp.MustCompile(`#/components/schemas/([A-Za-z]+)`).FindAllStringSubmatch(mustJSON(t, op), -1) {
				if _, ok := doc.Components.Schemas[ref[1]]; !ok {
					t.Errorf("%s %s refers to the missing schema %s", method, path, ref[1])
				}
			}
		}
	}
	served := map[string]bool{}
	for _, rt := range e.server.Routes() {
		key := rt.Method + " " + rt.Path
		served[key] = true
		if !documented[key] {
			t.Errorf("%s is served but not documented", key)
		}
		// The route table is what the mux serves: an unknown id is a 404 problem from the
		// handler or a 401, never the mux's own 404 or 405.
		a := e.do(rt.Method, replaceAllIDs(rt.Path), "", nil)
		if p := a.problem(t); strings.HasSuffix(p.Type, "no-route") {
			t.Errorf("%s is in the table but not served: %d %s", key, a.status, a.body)
		}
	}
	for key := range documented {
		if !served[key] {
			t.Errorf("%s is documented but not served", key)
		}
	}
	if doc.OpenAPI != "3.1.0" || len(documented) != len(e.server.Routes()) {
		t.Errorf("document %s with %d operations", doc.OpenAPI, len(documented))
	}
	// Neither is anything else served under the prefix.
	for _, probe := range []struct{ method, path string }{{"GET", "/api/v1/nope"}, {"PATCH", "/api/v1/dashboards"}} {
		a := e.do(probe.method, probe.path, "", nil)
		if a.status != http.StatusNotFound && a.status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d", probe.method, probe.path, a.status)
		}
		if a.problem(t).RequestID == "" {
			t.Errorf("%s %s: no problem document: %s", probe.method, probe.path, a.body)
		}
	}
}

func replaceAllIDs(path string) string {
	return regexp.MustCompile(`\{[A-Za-z]+\}`).ReplaceAllString(path, "00000000-0000-0000-0000-000000000000")
}

func mustJSON(t *testing.T, v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestDashboardWithFailingWidgets reads a dashboard whose widgets succeed, fail, time
// out and name an unknown pipeline: the page is 200, each widget has its own outcome.
func TestDashboardWithFailingWidgets(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Platform.Query.WidgetTimeout.Duration = 300 * time.Millisecond
	})
	e.engine.setValue("acme", 3)
	d := e.dashboard("acme", "mixed", false, "web", "broken", "slow", "missing")
	start := time.Now()
	a := e.do("GET", "/api/v1/dashboards/"+d.ID+"?from=now-1h", e.token("acme", auth.RoleViewer), nil)
	if a.status != http.StatusOK {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("took %s: the widget timeout did not hold", elapsed)
	}
	var got struct {
		Name    string
		Widgets []struct {
			Title string
			Data  *struct {
				Series []struct {
					Points []struct{ Values map[string]float64 }
				}
			}
			Error *struct {
				Status int
				Detail string
			}
		}
	}
	a.json(t, &got)
	want := map[string]int{"web": 0, "broken": 503, "slow": 504, "missing": 404}
	if len(got.Widgets) != 4 {
		t.Fatalf("widgets %s", a.body)
	}
	for _, w := range got.Widgets {
		switch status := want[w.Title]; {
		case status == 0 && (w.Error != nil || w.Data == nil || w.Data.Series[0].Points[0].Values["views"] != 3):
			t.Errorf("widget %s: %+v", w.Title, w)
		case status != 0 && (w.Error == nil || w.Error.Status != status || w.Data != nil):
			t.Errorf("widget %s: want error %d, got %s", w.Title, status, mustJSON(t, w))
		}
	}
	if a := e.do("GET", "/api/v1/dashboards/"+d.ID+"?from=yesterday", e.token("acme", auth.RoleViewer), nil); a.status != 400 || !a.problem(t).names("from") {
		t.Errorf("bad from: %d %s", a.status, a.body)
	}
}

func TestDashboardWrites(t *testing.T) {
	e := newEnv(t, nil)
	editor := e.token("acme", auth.RoleEditor)
	// A widget query is checked when written, each problem named by its path.
	bad := dashboardInput("bad")
	bad["widgets"] = []any{
		map[string]any{"type": "timeseries", "query": map[string]any{"pipeline": "web", "metric": "views; drop", "interval": "week"}},
		map[string]any{"type": "timeseries", "query": map[string]any{"pipeline": "web", "metric": "views", "colour": "red"}},
	}
	a := e.do("POST", "/api/v1/dashboards", editor, bad)
	if p := a.problem(t); a.status != 400 || !p.names("widgets[0].query.metric") || !p.names("widgets[0].query.interval") || !p.names("widgets[1].query") {
		t.Errorf("bad widgets: %d %s", a.status, a.body)
	}
	a = e.do("POST", "/api/v1/dashboards", editor, map[string]any{"name": "", "title": "x", "refreshSeconds": 3})
	if p := a.problem(t); a.status != 400 || !p.names("name") || !p.names("refreshSeconds") {
		t.Errorf("bad spec: %d %s", a.status, a.body)
	}
	// Created public, it comes with its share link once.
	a = e.do("POST", "/api/v1/dashboards", editor, dashboardInput("traffic"))
	var created dashboardJSON
	a.json(t, &created)
	if a.status != 201 || created.ShareToken == "" || created.ShareURL != "https://analytics.example.com/api/v1/public/dashboards/"+created.ShareToken {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	if a := e.do("POST", "/api/v1/dashboards", editor, dashboardInput("traffic")); a.status != 409 || !a.problem(t).names("name") {
		t.Errorf("taken name: %d %s", a.status, a.body)
	}
	// Pages.
	for i := range 3 {
		e.dashboard("acme", "page-"+string(rune('a'+i)), false)
	}
	var names []string
	for cursor := ""; ; {
		a := e.do("GET", "/api/v1/dashboards?limit=2&cursor="+url.QueryEscape(cursor), editor, nil)
		var pg page[dashboardJSON]
		a.json(t, &pg)
		for _, d := range pg.Items {
			names = append(names, d.Name)
		}
		if cursor = pg.Next; cursor == "" {
			break
		}
	}
	if strings.Join(names, ",") != "page-a,page-b,page-c,traffic" {
		t.Errorf("pages: %v", names)
	}
	if a := e.do("GET", "/api/v1/dashboards?cursor=%25%25", editor, nil); a.status != 400 || !a.problem(t).names("cursor") {
		t.Errorf("bad cursor: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/api/v1/dashboards?limit=0", editor, nil); a.status != 400 || !a.problem(t).names("limit") {
		t.Errorf("bad limit: %d %s", a.status, a.body)
	}
	// A dashboard owned by an object is read-only: 409 naming the object.
	res, err := e.store.SyncDashboard(ctxFor(t), "acme", "tenant-acme/ops", metastore.DashboardSpec{Name: "ops", Title: "Ops"})
	if err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"PUT", "DELETE"} {
		a := e.do(method, "/api/v1/dashboards/"+res.ID, editor, dashboardInput("ops"))
		if a.status != 409 || !strings.Contains(a.problem(t).Detail, "tenant-acme/ops") {
			t.Errorf("%s managed: %d %s", method, a.status, a.body)
		}
	}
	a = e.do("GET", "/api/v1/dashboards/"+res.ID, editor, nil)
	if a.status != 200 || !strings.Contains(string(a.body), `"managedBy":"tenant-acme/ops"`) {
		t.Errorf("managed dashboard read: %d %s", a.status, a.body)
	}
	// Rotation kills the old link.
	a = e.do("POST", "/api/v1/dashboards/"+created.ID+"/share-token", editor, nil)
	var rotated shareTokenJSON
	a.json(t, &rotated)
	if a.status != 200 || rotated.ShareToken == created.ShareToken {
		t.Fatalf("rotate: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/api/v1/public/dashboards/"+created.ShareToken, "", nil); a.status != 404 {
		t.Errorf("old link: %d", a.status)
	}
	if a := e.do("GET", "/api/v1/public/dashboards/"+rotated.ShareToken, "", nil); a.status != 200 {
		t.Errorf("new link: %d %s", a.status, a.body)
	}
}

func TestUsersAndRoles(t *testing.T) {
	e := newEnv(t, nil)
	owner, admin := e.token("acme", auth.RoleOwner), e.token("acme", auth.RoleAdmin)
	ownerID := e.tenants["acme"].users[auth.RoleOwner].ID
	a := e.do("GET", "/api/v1/users?limit=3", admin, nil)
	var pg page[userJSON]
	a.json(t, &pg)
	if a.status != 200 || len(pg.Items) != 3 || pg.Next == "" || pg.Items[0].Email != "admin@acme.example" {
		t.Errorf("users: %d %s", a.status, a.body)
	}
	// The last owner cannot be demoted, even by themselves.
	a = e.do("PUT", "/api/v1/users/"+ownerID+"/roles", owner, map[string]string{"role": "admin"})
	if a.status != 409 || !strings.Contains(a.problem(t).Detail, "last owner") {
		t.Errorf("last owner: %d %s", a.status, a.body)
	}
	// Admins do not touch owners, nor make them.
	viewerID := e.tenants["acme"].users[auth.RoleViewer].ID
	for _, tc := range []struct{ user, role string }{{ownerID, "viewer"}, {viewerID, "owner"}} {
		if a := e.do("PUT", "/api/v1/users/"+tc.user+"/roles", admin, map[string]string{"role": tc.role}); a.status != 403 {
			t.Errorf("admin setting %s: %d %s", tc.role, a.status, a.body)
		}
	}
	if a := e.do("PUT", "/api/v1/users/"+viewerID+"/roles", owner, map[string]string{"role": "root"}); a.status != 400 || !a.problem(t).names("role") {
		t.Errorf("bad role: %d %s", a.status, a.body)
	}
	// An owner makes a second owner; then the first may step down, and the change applies
	// to the next request of a token minted before it.
	if a := e.do("PUT", "/api/v1/users/"+viewerID+"/roles", owner, map[string]string{"role": "owner"}); a.status != 200 {
		t.Fatalf("promote: %d %s", a.status, a.body)
	}
	if a := e.do("PUT", "/api/v1/users/"+ownerID+"/roles", owner, map[string]string{"role": "viewer"}); a.status != 200 {
		t.Fatalf("step down: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/api/v1/users", owner, nil); a.status != 403 {
		t.Errorf("after stepping down to viewer: %d", a.status)
	}
	if a := e.do("GET", "/api/v1/users", e.token("acme", auth.RoleViewer), nil); a.status != 200 {
		t.Errorf("the new owner: %d", a.status)
	}
}

func TestPersonalTokens(t *testing.T) {
	e := newEnv(t, nil)
	viewer := e.token("acme", auth.RoleViewer)
	a := e.do("POST", "/api/v1/tokens", viewer, map[string]any{"name": "ci", "expiresAt": time.Now().Add(time.Hour)})
	var tok tokenJSON
	a.json(t, &tok)
	if a.status != 201 || !strings.HasPrefix(tok.Token, "shp_") || tok.ExpiresAt == nil {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/api/v1/tokens", tok.Token, nil); a.status != 200 || strings.Contains(string(a.body), tok.Token) || !strings.Contains(string(a.body), `"ci"`) {
		t.Errorf("list with the new token: %d %s", a.status, a.body)
	}
	// Another user's token of the same tenant is not yours.
	other := e.personalToken("acme", auth.RoleOwner)
	if a := e.do("DELETE", "/api/v1/tokens/"+other.ID, viewer, nil); a.status != 404 {
		t.Errorf("revoking another user's token: %d", a.status)
	}
	if a := e.do("DELETE", "/api/v1/tokens/"+tok.ID, viewer, nil); a.status != 204 {
		t.Errorf("revoke: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/api/v1/tokens", tok.Token, nil); a.status != 401 || a.problem(t).Detail != string(auth.ReasonRevoked) {
		t.Errorf("revoked token: %d %s", a.status, a.body)
	}
	if a := e.do("POST", "/api/v1/tokens", viewer, map[string]any{"name": ""}); a.status != 400 {
		t.Errorf("empty name: %d %s", a.status, a.body)
	}
}

func TestOIDCSignIn(t *testing.T) {
	e := newEnv(t, nil)
	tok, err := shared.issuer.Token("acme", "Editor@Acme.Example", testAudience, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if a := e.do("POST", "/api/v1/dashboards", tok, dashboardInput("by-oidc")); a.status != 201 {
		t.Errorf("editor by OIDC: %d %s", a.status, a.body)
	}
	// The tenant comes from the token: acme's user named in globex's claim is nobody.
	for name, claims := range map[string][3]string{
		"other tenant":   {"globex", "editor@acme.example", testAudience},
		"wrong audience": {"acme", "editor@acme.example", "another-api"},
	} {
		tok, err := shared.issuer.Token(claims[0], claims[1], claims[2], time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if a := e.do("GET", "/api/v1/dashboards", tok, nil); a.status != 401 {
			t.Errorf("%s: %d %s", name, a.status, a.body)
		}
	}
	if a := e.do("GET", "/api/v1/dashboards", "shk_notaquerykey", nil); a.status != 401 || a.problem(t).Detail != string(auth.ReasonIngestKey) {
		t.Errorf("ingest key: %d %s", a.status, a.body)
	}
}

func TestRateLimitPerTenant(t *testing.T) {
	now := time.Now()
	e := newEnv(t, func(o *Options) {
		o.Platform.Query.RateLimit = config.QueryRateLimit{RequestsPerSecond: 1, Burst: 3}
		o.Now = func() time.Time { return now }
	})
	for i := range 3 {
		a := e.do("GET", "/api/v1/alerts", e.token("acme", auth.RoleViewer), nil)
		if a.status != 200 || a.header.Get("RateLimit-Limit") != "3" || a.header.Get("RateLimit-Remaining") != string(rune('2'-i)) {
			t.Errorf("request %d: %d %v", i, a.status, a.header)
		}
	}
	// All of acme's users share the bucket; globex has its own.
	a := e.do("GET", "/api/v1/alerts", e.token("acme", auth.RoleOwner), nil)
	if a.status != 429 || a.header.Get("Retry-After") != "1" || a.problem(t).RequestID == "" {
		t.Errorf("over the limit: %d %v %s", a.status, a.header, a.body)
	}
	if a := e.do("GET", "/api/v1/alerts", e.token("globex", auth.RoleViewer), nil); a.status != 200 {
		t.Errorf("globex: %d", a.status)
	}
}

func TestDataSources(t *testing.T) {
	e := newEnv(t, nil)
	admin := e.token("acme", auth.RoleAdmin)
	a := e.do("POST", "/api/v1/data-sources", admin, map[string]any{"name": "crm", "type": "postgres",
		"config":      map[string]any{"host": "db.internal", "database": "crm"},
		"credentials": map[string]string{"password": "hunter2"}})
	var ds dataSourceJSON
	a.json(t, &ds)
	if a.status != 201 || !ds.HasCredentials || strings.Contains(string(a.body), "hunter2") {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	for _, path := range []string{"/api/v1/data-sources/" + ds.ID, "/api/v1/data-sources"} {
		if a := e.do("GET", path, admin, nil); a.status != 200 || strings.Contains(string(a.body), "hunter2") || !strings.Contains(string(a.body), `"hasCredentials":true`) {
			t.Errorf("GET %s: %d %s", path, a.status, a.body)
		}
	}
	creds, err := e.server.sources.Credentials(ctxFor(t), "acme", ds.ID)
	if err != nil || creds["password"] != "hunter2" {
		t.Errorf("stored credentials: %v %v", creds, err)
	}
	a = e.do("POST", "/api/v1/data-sources", admin, map[string]any{"name": "x", "type": "http", "config": map[string]any{"url": "ftp://x", "apiToken": "abc"}})
	if p := a.problem(t); a.status != 400 || !p.names("config.url") || !p.names("config.apiToken") || strings.Contains(string(a.body), "abc") {
		t.Errorf("bad config: %d %s", a.status, a.body)
	}
}

func TestSubscription(t *testing.T) {
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	e := newEnv(t, func(o *Options) { o.Now = func() time.Time { return now } })
	a := e.do("GET", "/api/v1/tenants/me/subscription", e.token("acme", auth.RoleAdmin), nil)
	var got subscriptionJSON
	a.json(t, &got)
	if a.status != 200 || got.Tenant != "acme" || got.Plan.DisplayName != "Team" || got.State != "active" ||
		got.Billing.Status != "billing disabled" || got.Billing.Enabled ||
		!got.Period.Start.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) || got.Limits == nil || got.Limits.Ingest.EventsPerSecond == 0 ||
		got.Usage.EventsIngested == nil || *got.Usage.EventsIngested != 4000 || !got.Usage.To.Equal(now) {
		t.Errorf("subscription: %d %s", a.status, a.body)
	}
	if err := e.store.SetSuspended(ctxFor(t), "acme", true, "unpaid"); err != nil {
		t.Fatal(err)
	}
	a = e.do("GET", "/api/v1/tenants/me/subscription", e.token("acme", auth.RoleOwner), nil)
	a.json(t, &got)
	if a.status != 200 || got.State != "suspended" || got.SuspendedReason != "unpaid" {
		t.Errorf("suspended: %d %s", a.status, a.body)
	}
	// Suspended: reads go on, writes stop.
	if a := e.do("POST", "/api/v1/dashboards", e.token("acme", auth.RoleOwner), dashboardInput("x")); a.status != 403 || a.problem(t).Detail != string(auth.ReasonTenantSuspended) {
		t.Errorf("write while suspended: %d %s", a.status, a.body)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	e := newEnv(t, nil)
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ok", "/metrics": "shoal_query_requests_total"} {
		e.do("GET", "/api/v1/alerts", e.token("acme", auth.RoleViewer), nil)
		if a := e.do("GET", path, "", nil); a.status != 200 || !strings.Contains(string(a.body), want) {
			t.Errorf("%s: %d %s", path, a.status, a.body)
		}
	}
}

// TestDocsDescribeTheAPI keeps docs/query-api.md in step: the permission table is the one
// the code enforces, and every route is listed.
func TestDocsDescribeTheAPI(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "query-api.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	if !strings.Contains(doc, auth.PermissionsMarkdown()) {
		t.Errorf("docs/query-api.md does not hold auth.PermissionsMarkdown():\n%s", auth.PermissionsMarkdown())
	}
	e := newEnv(t, nil)
	for _, rt := range e.server.Routes() {
		action := "none"
		if !rt.Public {
			action = "`" + string(rt.Action) + "`"
		}
		if row := "| `" + rt.Method + " " + rt.Path + "` | " + action + " |"; !strings.Contains(doc, row) {
			t.Errorf("docs/query-api.md lacks the row %s", row)
		}
	}
}

// TestDedicatedTenantServer is a Dedicated tenant's API (Options.Tenant): other tenants'
// users and share links get nothing from it.
func TestDedicatedTenantServer(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Tenant = "acme" })
	shared := e.dashboard("globex", "globex-public", true, "web")
	if a := e.do("GET", "/api/v1/dashboards", e.token("acme", auth.RoleViewer), nil); a.status != 200 {
		t.Errorf("acme on its own API: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/api/v1/dashboards", e.token("globex", auth.RoleOwner), nil); a.status != 403 || strings.Contains(string(a.body), "globex-public") {
		t.Errorf("globex on acme's API: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/api/v1/public/dashboards/"+shared.ShareToken, "", nil); a.status != 404 {
		t.Errorf("globex's share link on acme's API: %d %s", a.status, a.body)
	}
	if e.engine.callCount() != 0 {
		t.Errorf("the engine was asked %d times", e.engine.callCount())
	}
}
