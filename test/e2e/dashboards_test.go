package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/runtime/query/metricquery"
)

const (
	dashTenant   = "dashside"
	dashPipeline = "orders"
	// dashObject is the Dashboard object; dashAPIName the dashboard made through the API.
	dashObject  = "sales"
	dashAPIName = "sales-api"
)

// TestDashboardsSideBySide shows a dashboard made from a Dashboard object and one made
// through the query API side by side: both are listed, only the API's can be changed
// through the API, the object's widgets are served with data, and the object's edits and
// deletion reach the API. The API runs in `shoal dev`, signed in as the tenant's owner
// with the dev issuer.
func TestDashboardsSideBySide(t *testing.T) {
	if _, err := os.Stat(filepath.Join(env.Bin, "shoal")); err != nil {
		t.Fatal("shoal is not built: run `make build` (make test does)")
	}
	if dataPathPlatform == nil {
		t.Fatal("TestMain did not set the platform config")
	}
	ns := naming.TenantNamespace(dashTenant)
	owner := "ops@" + dashTenant + ".example" // applyTenant's owner
	managedBy := ns + "/" + dashObject

	key, _ := applyTenant(t, dashTenant, "team", 1)
	dev, api := startDevWithQuery(t, writePlatformConfig(t, dataPathPlatform), dashTenant, owner)
	procs := []*shoalProcess{dev.shoalProcess}

	// 1. A Pipeline and a Dashboard object over it, applied with kubectl.
	mustKubectl(t, "apply", "-f", writeManifest(t, "pipeline.yaml", dashPipelineManifest(ns)))
	mustKubectl(t, "apply", "-f", writeManifest(t, "dashboard.yaml", dashObjectManifest(ns, "Sales")))
	mustKubectl(t, "wait", "-n", ns, "--for=condition=Synced", "dashboard/"+dashObject, "--timeout=60s")
	mustKubectl(t, "wait", "-n", ns, "--for=condition=Valid", "dashboard/"+dashObject, "--timeout=60s")
	status := strings.Split(mustKubectl(t, "get", "dashboard", dashObject, "-n", ns, "-o",
		`jsonpath={.status.dashboardID}|{.status.url}|{.status.conditions[?(@.type=="Synced")].reason}|{.status.conditions[?(@.type=="Valid")].reason}|{.status.conditions[?(@.type=="Synced")].message}`), "|")
	if len(status) != 5 {
		t.Fatalf("unexpected status fields %q", status)
	}
	objID, objURL := status[0], status[1]
	if objID == "" {
		t.Fatal("the synced Dashboard has no status.dashboardID")
	}
	if status[2] != "Synced" || status[3] != "QueriesValid" {
		t.Errorf("Synced reason %q, Valid reason %q; want Synced, QueriesValid", status[2], status[3])
	}
	if !strings.Contains(status[4], objID) {
		t.Errorf("Synced message %q does not give the row id %s", status[4], objID)
	}
	// The in-process operator is given the platform config's publicURL as its base URL,
	// and the link it writes must be a path the query API serves: opened on the API's
	// address, it answers this dashboard.
	base := strings.TrimRight(dataPathPlatform.Query.PublicURL, "/")
	if base == "" {
		t.Fatal("TestMain gave the platform no query.publicURL")
	}
	if wantURL := base + "/api/v1/dashboards/" + objID; objURL != wantURL {
		t.Errorf("status.url %q, want %q", objURL, wantURL)
	}
	if path, ok := strings.CutPrefix(objURL, base+"/api/v1"); ok {
		if code, body := api.do(t, http.MethodGet, path, nil, nil); code != http.StatusOK || !strings.Contains(string(body), objID) {
			t.Errorf("GET %s (status.url on the API's address): %d: %.200s", path, code, body)
		}
	}

	// 2. A second dashboard through the API, as the tenant's owner. One widget reads a
	// pipeline that does not exist: its entry fails, the page does not.
	var apiDash dashView
	status2, body := api.do(t, http.MethodPost, "/dashboards", map[string]any{
		"name": dashAPIName, "title": "Sales (API)", "timeFrom": "now-24h", "timeTo": "now",
		"widgets": []map[string]any{
			{"key": "orders", "type": "number", "title": "Orders", "query": map[string]any{"pipeline": dashPipeline, "metric": "orders"}},
			{"key": "ghost", "type": "number", "title": "Ghost", "query": map[string]any{"pipeline": "no-such-pipeline", "metric": "orders"}},
		},
	}, &apiDash)
	if status2 != http.StatusCreated {
		t.Fatalf("POST /dashboards: %d, want 201: %s", status2, body)
	}
	if apiDash.ID == "" || apiDash.ManagedBy != "" || apiDash.ID == objID {
		t.Fatalf("POST /dashboards answered id %q managedBy %q (object's id %s): %s", apiDash.ID, apiDash.ManagedBy, objID, body)
	}

	// 3. The list holds both, the object's marked as managed by it.
	list := api.listDashboards(t)
	if names := dashNames(list); !slices.Equal(names, []string{dashObject, dashAPIName}) {
		t.Fatalf("listed %v, want [%s %s]", names, dashObject, dashAPIName)
	}
	for _, d := range list {
		switch d.Name {
		case dashObject:
			if d.ID != objID || d.ManagedBy != managedBy || d.Title != "Sales" {
				t.Errorf("listed %s: id %q managedBy %q title %q; want %s, %s, Sales", d.Name, d.ID, d.ManagedBy, d.Title, objID, managedBy)
			}
		case dashAPIName:
			if d.ID != apiDash.ID || d.ManagedBy != "" {
				t.Errorf("listed %s: id %q managedBy %q; want %s, not managed", d.Name, d.ID, d.ManagedBy, apiDash.ID)
			}
		}
		// The list is without data (its items carry no widgets at all today).
		for _, w := range d.Widgets {
			if w.Data != nil || w.Error != nil {
				t.Errorf("the list carries data of widget %s of %s; it should not", w.Key, d.Name)
			}
		}
	}

	// 4. PUT and DELETE of the object's dashboard are refused, naming the object; the
	// API's own are allowed.
	objBefore := api.getDashboard(t, objID)
	changed := map[string]any{"name": dashObject, "title": "Changed through the API"}
	for _, req := range []struct {
		method string
		body   any
	}{{http.MethodPut, changed}, {http.MethodDelete, nil}} {
		var problem dashProblem
		code, body := api.do(t, req.method, "/dashboards/"+objID, req.body, &problem)
		if code != http.StatusConflict {
			t.Errorf("%s of the object's dashboard: %d, want 409: %s", req.method, code, body)
			continue
		}
		if want := "managed by the Dashboard object " + managedBy; !strings.Contains(problem.Detail, want) {
			t.Errorf("%s of the object's dashboard: detail %q lacks %q", req.method, problem.Detail, want)
		}
	}
	if after := api.getDashboard(t, objID); after.Title != objBefore.Title || after.Version != objBefore.Version {
		t.Errorf("after the refused PUT and DELETE the object's dashboard is %q v%d, was %q v%d",
			after.Title, after.Version, objBefore.Title, objBefore.Version)
	}
	var updated dashView
	code, body := api.do(t, http.MethodPut, "/dashboards/"+apiDash.ID, map[string]any{
		"name": dashAPIName, "title": "Sales (API, edited)", "timeFrom": "now-24h", "timeTo": "now",
		"widgets": []map[string]any{
			{"key": "orders", "type": "number", "title": "Orders", "query": map[string]any{"pipeline": dashPipeline, "metric": "orders"}},
			{"key": "ghost", "type": "number", "title": "Ghost", "query": map[string]any{"pipeline": "no-such-pipeline", "metric": "orders"}},
		},
	}, &updated)
	if code != http.StatusOK || updated.Title != "Sales (API, edited)" || updated.ID != apiDash.ID || updated.Version <= apiDash.Version {
		t.Fatalf("PUT of the API's dashboard: %d, title %q, id %q, version %d (was %d): %s",
			code, updated.Title, updated.ID, updated.Version, apiDash.Version, body)
	}

	// 5. The object's dashboard is served with each widget's data once the events are in.
	res, st := postEvents(t, dev.ingestURL(), key, dashEvents())
	if st != http.StatusOK || res.Accepted != len(dashEvents()) {
		t.Fatalf("ingest: status %d, accepted %d of %d: %+v", st, res.Accepted, len(dashEvents()), res.Rejected)
	}
	// The API's dashboard alongside: its good widget shows the same orders (a total up to
	// now, which leaves out the current second: polled too), its bad one its own error.
	var served, apiServed dashView
	poll(t, 2*time.Minute, "both dashboards' widgets with the sent events", procs, func() error {
		served = api.getDashboard(t, objID)
		if err := checkObjectWidgets(served); err != nil {
			return err
		}
		apiServed = api.getDashboard(t, apiDash.ID)
		if w := widgetByKey(apiServed, "orders"); w == nil || w.Error != nil || w.Data == nil || dashTotal(*w.Data, "orders") != dashOrders {
			return fmt.Errorf("widget orders of the API's dashboard: %s, want %d orders", dashJSON(w), dashOrders)
		}
		return nil
	})
	if served.ManagedBy != managedBy {
		t.Errorf("GET of the object's dashboard: managedBy %q, want %q", served.ManagedBy, managedBy)
	}
	if w := widgetByKey(apiServed, "ghost"); w == nil || w.Data != nil || w.Error == nil || w.Error.Status != http.StatusNotFound {
		t.Errorf("widget ghost of the API's dashboard: %s, want an error entry of status 404", dashJSON(w))
	}

	// 6. An edit of the object reaches the API; its deletion removes only its dashboard.
	mustKubectl(t, "apply", "-f", writeManifest(t, "dashboard-v2.yaml", dashObjectManifest(ns, "Sales v2")))
	poll(t, time.Minute, "the object's new title through the API", procs, func() error {
		d := api.getDashboard(t, objID)
		if d.Title != "Sales v2" {
			return fmt.Errorf("title %q (version %d)", d.Title, d.Version)
		}
		if d.Version <= served.Version || d.ManagedBy != managedBy || len(d.Widgets) != 2 {
			return fmt.Errorf("retitled, but version %d (was %d), managedBy %q, %d widgets", d.Version, served.Version, d.ManagedBy, len(d.Widgets))
		}
		return nil
	})
	if id := strings.TrimSpace(mustKubectl(t, "get", "dashboard", dashObject, "-n", ns, "-o", "jsonpath={.status.dashboardID}")); id != objID {
		t.Errorf("the edit moved the dashboard from id %s to %s", objID, id)
	}
	// The finalizer deletes the row before it lets the object go.
	mustKubectl(t, "delete", "dashboard", dashObject, "-n", ns, "--wait", "--timeout=60s")
	if names := dashNames(api.listDashboards(t)); !slices.Equal(names, []string{dashAPIName}) {
		t.Errorf("after deleting the object the list is %v, want [%s]", names, dashAPIName)
	}
	if code, body := api.do(t, http.MethodGet, "/dashboards/"+objID, nil, nil); code != http.StatusNotFound {
		t.Errorf("GET of the deleted object's dashboard: %d, want 404: %s", code, body)
	}
	if d := api.getDashboard(t, apiDash.ID); d.Title != "Sales (API, edited)" {
		t.Errorf("the API's dashboard is titled %q after the object's deletion", d.Title)
	}

	// Last, the API's own dashboard goes through the API.
	if code, body := api.do(t, http.MethodDelete, "/dashboards/"+apiDash.ID, nil, nil); code != http.StatusNoContent {
		t.Fatalf("DELETE of the API's dashboard: %d, want 204: %s", code, body)
	}
	if names := dashNames(api.listDashboards(t)); len(names) != 0 {
		t.Errorf("after deleting both the list is %v, want empty", names)
	}
}

// The events sent: orders on two plans, and page views the pipeline does not count.
const (
	dashOrders    = 12
	dashPageViews = 5
)

// dashRevenue is the revenue per plan of dashEvents.
var dashRevenue = map[string]float64{"team": 10 + 30 + 50 + 70 + 90 + 110, "free": 20 + 40 + 60 + 80 + 100 + 120}

func dashEvents() []map[string]any {
	var evs []map[string]any
	for i := range dashOrders {
		evs = append(evs, map[string]any{
			"event_id": fmt.Sprintf("dash-order-%02d", i), "event_type": "order_placed", "user_id": fmt.Sprintf("u%d", i%4),
			"properties": map[string]any{"plan": []string{"team", "free"}[i%2], "amount": 10 * (i + 1)},
		})
	}
	for i := range dashPageViews {
		evs = append(evs, map[string]any{
			"event_id": fmt.Sprintf("dash-view-%02d", i), "event_type": "page_view", "user_id": "u0",
			"properties": map[string]any{"plan": "team", "amount": 1000},
		})
	}
	return evs
}

func dashPipelineManifest(ns string) string {
	return fmt.Sprintf(`apiVersion: analytics.shoal.dev/v1alpha1
kind: Pipeline
metadata:
  name: %s
  namespace: %s
spec:
  source:
    eventTypes: [order_placed]
  metrics:
    - {name: orders, type: count}
    - {name: revenue, type: sum, field: properties.amount}
  dimensions: [properties.plan]
  granularities: [hour]
`, dashPipeline, ns)
}

func dashObjectManifest(ns, title string) string {
	return fmt.Sprintf(`apiVersion: analytics.shoal.dev/v1alpha1
kind: Dashboard
metadata:
  name: %s
  namespace: %s
spec:
  title: %s
  timeRange: {from: now-24h, to: now}
  widgets:
    - id: orders-total
      title: Orders
      type: number
      query: {pipeline: %s, metric: orders}
      position: {column: 0, row: 0, width: 4, height: 3}
    - id: revenue-by-plan
      title: Revenue by plan
      type: bar
      query: {pipeline: %s, metric: revenue, groupBy: [properties.plan]}
      position: {column: 4, row: 0, width: 8, height: 6}
`, dashObject, ns, title, dashPipeline, dashPipeline)
}

// checkObjectWidgets checks the object's widgets show exactly the sent orders and
// revenue per plan; the page views the pipeline does not select must not count. The
// error says what differs (the events may still be on their way).
func checkObjectWidgets(d dashView) error {
	if len(d.Widgets) != 2 {
		return fmt.Errorf("%d widgets, want 2", len(d.Widgets))
	}
	total, byPlan := widgetByKey(d, "orders-total"), widgetByKey(d, "revenue-by-plan")
	for _, w := range []*dashWidget{total, byPlan} {
		if w == nil {
			return fmt.Errorf("widgets %s lack orders-total or revenue-by-plan", dashJSON(d.Widgets))
		}
		if w.Error != nil || w.Data == nil {
			return fmt.Errorf("widget %s: %s", w.Key, dashJSON(w))
		}
	}
	if n := dashTotal(*total.Data, "orders"); n != dashOrders {
		return fmt.Errorf("widget orders-total shows %v orders, want %d", n, dashOrders)
	}
	got := map[string]float64{}
	for _, s := range byPlan.Data.Series {
		got[s.Group["properties.plan"]] += dashTotal(metricquery.Result{Series: []metricquery.Series{s}}, "revenue")
	}
	if len(got) != len(dashRevenue) || got["team"] != dashRevenue["team"] || got["free"] != dashRevenue["free"] {
		return fmt.Errorf("widget revenue-by-plan shows %v, want %v", got, dashRevenue)
	}
	return nil
}

// dashTotal sums a metric over every point of every series.
func dashTotal(r metricquery.Result, metric string) float64 {
	var sum float64
	for _, s := range r.Series {
		for _, p := range s.Points {
			sum += p.Values[metric]
		}
	}
	return sum
}

// dashView is a dashboard as the query API answers it, read the way a client does.
type dashView struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Title     string       `json:"title"`
	ManagedBy string       `json:"managedBy"`
	Version   int64        `json:"version"`
	Widgets   []dashWidget `json:"widgets"`
}

type dashWidget struct {
	Key   string              `json:"key"`
	Type  string              `json:"type"`
	Data  *metricquery.Result `json:"data"`
	Error *dashProblem        `json:"error"`
}

// dashProblem is a problem document, of a request or of one widget.
type dashProblem struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

func widgetByKey(d dashView, key string) *dashWidget {
	for i := range d.Widgets {
		if d.Widgets[i].Key == key {
			return &d.Widgets[i]
		}
	}
	return nil
}

func dashNames(list []dashView) []string {
	var names []string
	for _, d := range list {
		names = append(names, d.Name)
	}
	return names
}

func dashJSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(data)
}

// queryAPI calls the query API with a bearer token.
type queryAPI struct {
	base, token string
}

// do sends a request with body as JSON (nil: none) and decodes a 2xx answer, or a
// problem, into out (nil: not decoded); it returns the status and the raw body.
func (a queryAPI) do(t *testing.T, method, path string, body, out any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %d, decoding %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode, data
}

// getDashboard reads one dashboard with its widgets' data; anything but 200 fails.
func (a queryAPI) getDashboard(t *testing.T, id string) dashView {
	t.Helper()
	var d dashView
	if code, body := a.do(t, http.MethodGet, "/dashboards/"+id, nil, &d); code != http.StatusOK {
		t.Fatalf("GET /dashboards/%s: %d, want 200: %s", id, code, body)
	}
	return d
}

// listDashboards reads every page of the dashboards list.
func (a queryAPI) listDashboards(t *testing.T) []dashView {
	t.Helper()
	var all []dashView
	cursor := ""
	for range 100 {
		var pg struct {
			Items []dashView `json:"items"`
			Next  string     `json:"next"`
		}
		path := "/dashboards?limit=1"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		if code, body := a.do(t, http.MethodGet, path, nil, &pg); code != http.StatusOK {
			t.Fatalf("GET %s: %d, want 200: %s", path, code, body)
		}
		all = append(all, pg.Items...)
		if cursor = pg.Next; cursor == "" {
			return all
		}
	}
	t.Fatal("the dashboards list did not end after 100 pages")
	return nil
}

// devQueryProcess is `shoal dev` with its query API.
type devQueryProcess struct {
	*shoalProcess
	listen string
}

func (d devQueryProcess) ingestURL() string { return "http://" + d.listen + "/api/v1/events/ingest" }

// bearerLine finds the token shoal dev --sign-in prints.
var bearerLine = regexp.MustCompile(`Authorization: Bearer ([A-Za-z0-9_.-]+)'`)

// startDevWithQuery starts `shoal dev` with the query API, signs email of tenant in with
// its local issuer, and waits until ingest, process and query are ready.
func startDevWithQuery(t *testing.T, configPath, tenant, email string) (devQueryProcess, queryAPI) {
	t.Helper()
	listen, processListen, queryListen := freeAddr(t), freeAddr(t), freeAddr(t)
	p := startShoal(t, "shoal dev", "dev", "--config", configPath, "--listen", listen,
		"--process-listen", processListen, "--query-listen", queryListen, "--sign-in", tenant+"="+email)
	for _, addr := range []string{listen, processListen, queryListen} {
		waitHTTPReady(t, addr, p)
	}
	var token string
	poll(t, 30*time.Second, "the sign-in token in shoal dev's output", []*shoalProcess{p}, func() error {
		m := bearerLine.FindStringSubmatch(p.log.String())
		if m == nil {
			return fmt.Errorf("no token printed yet:\n%s", lastLines(p.log.String(), 10))
		}
		token = m[1]
		return nil
	})
	return devQueryProcess{shoalProcess: p, listen: listen}, queryAPI{base: "http://" + queryListen + "/api/v1", token: token}
}

// writeManifest writes a manifest for kubectl apply -f.
func writeManifest(t *testing.T, name, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
