package query

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/shoal-dev/shoal/internal/auth"
)

// call is one request to an endpoint.
type call struct {
	method, path string
	body         any
}

// requestFor builds, for every route, a request that succeeds for a principal allowed to
// make it, on fresh objects of the tenant where it needs one. objects are made in
// owner's tenant; other gives objects of another tenant for the isolation matrix.
type requestFor func(e *env, tenant string) call

var seq atomic.Int64

func uniq(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

func dashboardInput(name string) map[string]any {
	return map[string]any{"name": name, "title": "T", "public": true, "widgets": []any{
		map[string]any{"type": "timeseries", "query": map[string]any{"pipeline": "web", "metric": "views", "interval": "hour"}},
	}}
}

func alertRuleInput(name string) map[string]any {
	return map[string]any{"name": name, "query": map[string]any{"pipeline": "web", "metric": "views"},
		"condition": map[string]any{"operator": "gt", "threshold": 5, "window": "5m"}}
}

var requests = map[string]requestFor{
	"GET /api/v1/metrics/query": func(*env, string) call {
		return call{"GET", "/api/v1/metrics/query?pipeline=web&metric=views&from=now-1h", nil}
	},
	"GET /api/v1/dashboards": func(*env, string) call { return call{"GET", "/api/v1/dashboards", nil} },
	"POST /api/v1/dashboards": func(*env, string) call {
		return call{"POST", "/api/v1/dashboards", dashboardInput(uniq("dash"))}
	},
	"GET /api/v1/dashboards/{id}": func(e *env, tenant string) call {
		return call{"GET", "/api/v1/dashboards/" + e.dashboard(tenant, uniq(tenant+"-dash"), false, "web").ID, nil}
	},
	"PUT /api/v1/dashboards/{id}": func(e *env, tenant string) call {
		return call{"PUT", "/api/v1/dashboards/" + e.dashboard(tenant, uniq(tenant+"-dash"), false).ID, dashboardInput(uniq("renamed"))}
	},
	"DELETE /api/v1/dashboards/{id}": func(e *env, tenant string) call {
		return call{"DELETE", "/api/v1/dashboards/" + e.dashboard(tenant, uniq(tenant+"-dash"), false).ID, nil}
	},
	"POST /api/v1/dashboards/{id}/share-token": func(e *env, tenant string) call {
		return call{"POST", "/api/v1/dashboards/" + e.dashboard(tenant, uniq(tenant+"-dash"), true).ID + "/share-token", nil}
	},
	"GET /api/v1/public/dashboards/{token}": func(e *env, tenant string) call {
		return call{"GET", "/api/v1/public/dashboards/" + e.dashboard(tenant, uniq(tenant+"-dash"), true, "web").ShareToken, nil}
	},
	"GET /api/v1/data-sources": func(*env, string) call { return call{"GET", "/api/v1/data-sources", nil} },
	"POST /api/v1/data-sources": func(*env, string) call {
		return call{"POST", "/api/v1/data-sources", map[string]any{"name": uniq("ds"), "type": "http",
			"config": map[string]any{"url": "https://example.com/feed"}, "credentials": map[string]string{"token": "s3cr3t"}}}
	},
	"GET /api/v1/data-sources/{id}": func(e *env, tenant string) call {
		return call{"GET", "/api/v1/data-sources/" + e.dataSource(tenant, uniq(tenant+"-ds")).ID, nil}
	},
	"DELETE /api/v1/data-sources/{id}": func(e *env, tenant string) call {
		return call{"DELETE", "/api/v1/data-sources/" + e.dataSource(tenant, uniq(tenant+"-ds")).ID, nil}
	},
	"GET /api/v1/tenants/me/subscription": func(*env, string) call { return call{"GET", "/api/v1/tenants/me/subscription", nil} },
	"GET /api/v1/users":                   func(*env, string) call { return call{"GET", "/api/v1/users", nil} },
	"PUT /api/v1/users/{userId}/roles": func(e *env, tenant string) call {
		u, err := e.store.AddUser(ctxFor(e.t), tenant, uniq("someone")+"@"+tenant+".example", "viewer")
		if err != nil {
			e.t.Fatal(err)
		}
		return call{"PUT", "/api/v1/users/" + u.ID + "/roles", map[string]string{"role": "editor"}}
	},
	"GET /api/v1/tokens": func(*env, string) call { return call{"GET", "/api/v1/tokens", nil} },
	"POST /api/v1/tokens": func(*env, string) call {
		return call{"POST", "/api/v1/tokens", map[string]string{"name": uniq("script")}}
	},
	// Own tokens: the role matrix runs this as each role's user, so the token is made
	// for the caller by callerToken below.
	"DELETE /api/v1/tokens/{id}": nil,
	"GET /api/v1/alert-rules":    func(*env, string) call { return call{"GET", "/api/v1/alert-rules", nil} },
	"POST /api/v1/alert-rules": func(*env, string) call {
		return call{"POST", "/api/v1/alert-rules", alertRuleInput(uniq("rule"))}
	},
	"GET /api/v1/alert-rules/{id}": func(e *env, tenant string) call {
		return call{"GET", "/api/v1/alert-rules/" + e.alertRule(tenant, uniq(tenant+"-rule")).ID, nil}
	},
	"PUT /api/v1/alert-rules/{id}": func(e *env, tenant string) call {
		return call{"PUT", "/api/v1/alert-rules/" + e.alertRule(tenant, uniq(tenant+"-rule")).ID, alertRuleInput(uniq("rule"))}
	},
	"DELETE /api/v1/alert-rules/{id}": func(e *env, tenant string) call {
		return call{"DELETE", "/api/v1/alert-rules/" + e.alertRule(tenant, uniq(tenant+"-rule")).ID, nil}
	},
	"GET /api/v1/alerts":       func(*env, string) call { return call{"GET", "/api/v1/alerts", nil} },
	"GET /api/v1/openapi.json": func(*env, string) call { return call{"GET", "/api/v1/openapi.json", nil} },
}

// callerToken is DELETE /tokens/{id} for a token of the caller's own.
func callerToken(e *env, tenant string, role auth.Role) call {
	return call{"DELETE", "/api/v1/tokens/" + e.personalToken(tenant, role).ID, nil}
}

func TestEveryRouteHasAMatrixRequest(t *testing.T) {
	e := newEnv(t, nil)
	seen := map[string]bool{}
	for _, rt := range e.server.Routes() {
		key := rt.Method + " " + rt.Path
		seen[key] = true
		if _, ok := requests[key]; !ok {
			t.Errorf("route %s has no request in the matrices: add one", key)
		}
	}
	for key := range requests {
		if !seen[key] {
			t.Errorf("the matrices have a request for %s, which is not served", key)
		}
	}
}

// TestRoleMatrix sends every endpoint as each role and expects what the permission
// table says: allowed roles succeed, the others get 403, and nobody gets in without
// credentials.
func TestRoleMatrix(t *testing.T) {
	e := newEnv(t, nil)
	for _, rt := range e.server.Routes() {
		key := rt.Method + " " + rt.Path
		for _, role := range roles {
			t.Run(strings.ReplaceAll(key, "/", "_")+"/"+string(role), func(t *testing.T) {
				e.t = t
				c := build(e, key, "acme", role)
				a := e.do(c.method, c.path, e.token("acme", role), c.body)
				switch {
				case rt.Public:
					if a.status != http.StatusOK {
						t.Errorf("public route: %d %s", a.status, a.body)
					}
				case auth.Allowed(role, rt.Action):
					if a.status < 200 || a.status > 299 {
						t.Errorf("%s may %s: got %d %s", role, rt.Action, a.status, a.body)
					}
				default:
					if a.status != http.StatusForbidden {
						t.Errorf("%s may not %s: got %d %s", role, rt.Action, a.status, a.body)
					}
					if p := a.problem(t); p.RequestID == "" || p.Detail != string(auth.ReasonForbidden) {
						t.Errorf("403 problem %+v", p)
					}
				}
			})
		}
		if !rt.Public {
			t.Run(strings.ReplaceAll(key, "/", "_")+"/anonymous", func(t *testing.T) {
				e.t = t
				c := build(e, key, "acme", auth.RoleOwner)
				a := e.do(c.method, c.path, "", c.body)
				if a.status != http.StatusUnauthorized || a.header.Get("WWW-Authenticate") == "" {
					t.Errorf("without credentials: %d %v %s", a.status, a.header, a.body)
				}
			})
		}
	}
}

func build(e *env, key, tenant string, role auth.Role) call {
	if key == "DELETE /api/v1/tokens/{id}" {
		return callerToken(e, tenant, role)
	}
	return requests[key](e, tenant)
}

// TestIsolationMatrix sends every endpoint with acme's owner token about globex's
// objects (and guessed ids): each is 404, and no answer holds anything of globex.
func TestIsolationMatrix(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.token("acme", auth.RoleOwner)
	// globex has one of everything, named so that a leak shows.
	gDash := e.dashboard("globex", "globex-secret-dashboard", true, "web")
	e.dataSource("globex", "globex-secret-source")
	e.alertRule("globex", "globex-secret-rule")
	e.engine.setValue("globex", 4242)
	e.engine.setValue("acme", 1)

	for _, rt := range e.server.Routes() {
		key := rt.Method + " " + rt.Path
		t.Run(strings.ReplaceAll(key, "/", "_"), func(t *testing.T) {
			e.t = t
			if !strings.Contains(rt.Path, "{") {
				c := build(e, key, "acme", auth.RoleOwner)
				a := e.do(c.method, c.path, owner, c.body)
				if a.status < 200 || a.status > 299 {
					t.Fatalf("%d %s", a.status, a.body)
				}
				if strings.Contains(string(a.body), "globex") || strings.Contains(string(a.body), "4242") {
					t.Errorf("acme's answer holds globex's data: %s", a.body)
				}
				return
			}
			if rt.Public {
				return // the share-token cases below
			}
			// globex's object, then ids nobody has.
			foreign := build(e, key, "globex", auth.RoleOwner)
			paths := []string{foreign.path}
			for _, guess := range []string{"00000000-0000-0000-0000-000000000001", "not-a-uuid", "1%20OR%201=1", gDash.ShareToken} {
				paths = append(paths, replaceID(rt.Path, guess))
			}
			for _, path := range paths {
				a := e.do(foreign.method, path, owner, foreign.body)
				if a.status != http.StatusNotFound {
					t.Errorf("%s %s as acme: %d %s; want 404", foreign.method, path, a.status, a.body)
				}
				if strings.Contains(string(a.body), "globex-secret") || strings.Contains(string(a.body), "4242") {
					t.Errorf("answer holds globex's data: %s", a.body)
				}
			}
		})
	}
	e.t = t

	// globex's objects are all still there, unchanged.
	if d, err := e.store.GetDashboard(ctxFor(t), "globex", gDash.ID); err != nil || d.Version != gDash.Version {
		t.Errorf("globex's dashboard after the matrix: %+v, %v", d, err)
	}
	// Every engine call so far was for acme.
	for tenant := range e.engine.tenantsCalled() {
		if tenant != "acme" {
			t.Errorf("the engine was asked for %s with acme's credentials", tenant)
		}
	}
	// A share token opens its own tenant's dashboard with its own tenant's data, whoever
	// asks, and nothing else; with credentials it opens nothing.
	a := e.do("GET", "/api/v1/public/dashboards/"+gDash.ShareToken, owner, nil)
	if a.status != http.StatusOK || !strings.Contains(string(a.body), "4242") || strings.Contains(string(a.body), gDash.ID) {
		t.Errorf("globex's share link: %d %s", a.status, a.body)
	}
	for _, leak := range []string{"managedBy", `"id"`, `"query"`, "pipeline"} {
		if strings.Contains(string(a.body), leak) {
			t.Errorf("the public dashboard shows %s: %s", leak, a.body)
		}
	}
	if a := e.do("GET", "/api/v1/dashboards/"+gDash.ShareToken, owner, nil); a.status != http.StatusNotFound {
		t.Errorf("globex's share token as a dashboard id: %d", a.status)
	}
	if a := e.do("GET", "/api/v1/public/dashboards/"+strings.Repeat("A", 43), "", nil); a.status != http.StatusNotFound {
		t.Errorf("a guessed share token: %d %s", a.status, a.body)
	}
}

func replaceID(pattern, id string) string {
	start, end := strings.Index(pattern, "{"), strings.Index(pattern, "}")
	return pattern[:start] + id + pattern[end+1:]
}
