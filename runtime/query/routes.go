package query

import (
	"net/http"

	"github.com/shoal-dev/shoal/internal/auth"
)

// route is one endpoint: what serves it, the one action it needs, and what the OpenAPI
// document says of it.
type route struct {
	method string
	path   string
	// action is what the principal must be allowed; public routes need none.
	action  auth.Action
	public  bool
	handler http.HandlerFunc
	doc     operation
}

// Route describes an endpoint the server serves.
type Route struct {
	Method string
	// Path is the full path pattern, with {name} for path parameters.
	Path string
	// Action is the auth action the endpoint checks; empty for a public endpoint.
	Action auth.Action
	Public bool
}

// Routes lists the API's endpoints (not /healthz, /readyz and /metrics).
func (s *Server) Routes() []Route {
	out := make([]Route, len(s.routes))
	for i, rt := range s.routes {
		out[i] = Route{Method: rt.method, Path: rt.path, Action: rt.action, Public: rt.public}
	}
	return out
}

// Query parameters shared by list endpoints.
var pageParams = []param{
	{name: "limit", in: "query", typ: "integer", doc: "page size (default 50)"},
	{name: "cursor", in: "query", typ: "string", doc: "the next value of the previous page"},
}

var rangeParams = []param{
	{name: "from", in: "query", typ: "string", doc: `overrides the dashboard's start: "now", "now-<n><m|h|d|w>" or RFC 3339`},
	{name: "to", in: "query", typ: "string", doc: "overrides the dashboard's end, in the same forms"},
}

func (s *Server) routeTable() []route {
	p := APIPrefix
	return []route{
		{method: "GET", path: p + "/metrics/query", action: auth.ActionReadMetrics, handler: s.handleMetricsQuery, doc: operation{
			tag: "metrics", summary: "Query metrics of a pipeline, or raw event counts", params: metricsParams, response: "MetricsAnswer"}},

		{method: "GET", path: p + "/dashboards", action: auth.ActionReadDashboards, handler: s.handleListDashboards, doc: operation{
			tag: "dashboards", summary: "List dashboards (without widgets' data)", params: pageParams, response: "DashboardPage"}},
		{method: "POST", path: p + "/dashboards", action: auth.ActionWriteDashboards, handler: s.handleCreateDashboard, doc: operation{
			tag: "dashboards", summary: "Create a dashboard", body: "DashboardInput", status: http.StatusCreated, response: "Dashboard"}},
		{method: "GET", path: p + "/dashboards/{id}", action: auth.ActionReadDashboards, handler: s.handleGetDashboard, doc: operation{
			tag: "dashboards", summary: "Get a dashboard with each widget's data; a failing widget carries its error", params: rangeParams, response: "Dashboard"}},
		{method: "PUT", path: p + "/dashboards/{id}", action: auth.ActionWriteDashboards, handler: s.handleUpdateDashboard, doc: operation{
			tag: "dashboards", summary: "Replace a dashboard (409 when a Dashboard object owns it)", body: "DashboardInput", response: "Dashboard"}},
		{method: "DELETE", path: p + "/dashboards/{id}", action: auth.ActionWriteDashboards, handler: s.handleDeleteDashboard, doc: operation{
			tag: "dashboards", summary: "Delete a dashboard (409 when a Dashboard object owns it)", status: http.StatusNoContent}},
		{method: "POST", path: p + "/dashboards/{id}/share-token", action: auth.ActionWriteDashboards, handler: s.handleRotateShareToken, doc: operation{
			tag: "dashboards", summary: "Give a public dashboard a new share token; the old link stops working", response: "ShareToken"}},
		{method: "GET", path: p + "/public/dashboards/{token}", public: true, handler: s.handlePublicDashboard, doc: operation{
			tag: "dashboards", summary: "A public dashboard by its share token, read-only, without sign-in", params: rangeParams, response: "PublicDashboard"}},

		{method: "GET", path: p + "/data-sources", action: auth.ActionReadDataSources, handler: s.handleListDataSources, doc: operation{
			tag: "data-sources", summary: "List data sources (never their credentials)", params: pageParams, response: "DataSourcePage"}},
		{method: "POST", path: p + "/data-sources", action: auth.ActionManageDataSources, handler: s.handleCreateDataSource, doc: operation{
			tag: "data-sources", summary: "Create a data source; credentials are encrypted and never returned", body: "DataSourceInput", status: http.StatusCreated, response: "DataSource"}},
		{method: "GET", path: p + "/data-sources/{id}", action: auth.ActionReadDataSources, handler: s.handleGetDataSource, doc: operation{
			tag: "data-sources", summary: "Get a data source", response: "DataSource"}},
		{method: "DELETE", path: p + "/data-sources/{id}", action: auth.ActionManageDataSources, handler: s.handleDeleteDataSource, doc: operation{
			tag: "data-sources", summary: "Delete a data source (409 when a DataSource object owns it)", status: http.StatusNoContent}},

		{method: "GET", path: p + "/tenants/me/subscription", action: auth.ActionReadSubscription, handler: s.handleSubscription, doc: operation{
			tag: "tenant", summary: "The tenant's plan, subscription state, period, limits and usage so far", response: "Subscription"}},

		{method: "GET", path: p + "/users", action: auth.ActionReadUsers, handler: s.handleListUsers, doc: operation{
			tag: "users", summary: "List the tenant's users and their roles", params: pageParams, response: "UserPage"}},
		{method: "PUT", path: p + "/users/{userId}/roles", action: auth.ActionManageUsers, handler: s.handleSetRole, doc: operation{
			tag: "users", summary: "Set a user's role (owner changes need an owner; the last owner cannot be demoted: 409)", body: "RoleInput", response: "User"}},

		{method: "GET", path: p + "/tokens", action: auth.ActionManageOwnTokens, handler: s.handleListTokens, doc: operation{
			tag: "tokens", summary: "List your personal API tokens", response: "TokenPage"}},
		{method: "POST", path: p + "/tokens", action: auth.ActionManageOwnTokens, handler: s.handleCreateToken, doc: operation{
			tag: "tokens", summary: "Create a personal API token; its secret is shown in this answer only", body: "TokenInput", status: http.StatusCreated, response: "Token"}},
		{method: "DELETE", path: p + "/tokens/{id}", action: auth.ActionManageOwnTokens, handler: s.handleRevokeToken, doc: operation{
			tag: "tokens", summary: "Revoke one of your personal API tokens", status: http.StatusNoContent}},

		{method: "GET", path: p + "/alert-rules", action: auth.ActionReadAlerts, handler: s.handleListAlertRules, doc: operation{
			tag: "alerts", summary: "List alert rules", params: pageParams, response: "AlertRulePage"}},
		{method: "POST", path: p + "/alert-rules", action: auth.ActionManageAlertRules, handler: s.handleCreateAlertRule, doc: operation{
			tag: "alerts", summary: "Create an alert rule", body: "AlertRuleInput", status: http.StatusCreated, response: "AlertRule"}},
		{method: "GET", path: p + "/alert-rules/{id}", action: auth.ActionReadAlerts, handler: s.handleGetAlertRule, doc: operation{
			tag: "alerts", summary: "Get an alert rule", response: "AlertRule"}},
		{method: "PUT", path: p + "/alert-rules/{id}", action: auth.ActionManageAlertRules, handler: s.handleUpdateAlertRule, doc: operation{
			tag: "alerts", summary: "Replace an alert rule; disabling it resolves its firing alert", body: "AlertRuleInput", response: "AlertRule"}},
		{method: "DELETE", path: p + "/alert-rules/{id}", action: auth.ActionManageAlertRules, handler: s.handleDeleteAlertRule, doc: operation{
			tag: "alerts", summary: "Delete an alert rule and its alerts", status: http.StatusNoContent}},
		{method: "GET", path: p + "/alerts", action: auth.ActionReadAlerts, handler: s.handleListAlerts, doc: operation{
			tag: "alerts", summary: "Firing alerts, then recently resolved ones", params: alertsParams, response: "AlertPage"}},

		{method: "GET", path: p + "/openapi.json", public: true, handler: s.handleOpenAPI, doc: operation{
			tag: "meta", summary: "This document", response: "OpenAPI"}},
	}
}

var alertsParams = []param{
	{name: "limit", in: "query", typ: "integer", doc: "at most this many alerts (default 100)"},
	{name: "resolvedSince", in: "query", typ: "string", doc: "RFC 3339; resolved alerts since then (default 7 days ago)"},
}

var metricsParams = []param{
	{name: "mode", in: "query", typ: "string", doc: "pipeline (default) or raw"},
	{name: "pipeline", in: "query", typ: "string", doc: "pipeline mode: the Pipeline's name"},
	{name: "metric", in: "query", typ: "string", repeat: true, doc: "pipeline mode: metric names, repeated or comma-separated"},
	{name: "eventType", in: "query", typ: "string", doc: "raw mode: the event type counted"},
	{name: "aggregate", in: "query", typ: "string", doc: "raw mode: count (default) or uniq"},
	{name: "field", in: "query", typ: "string", doc: "raw mode with uniq: the field whose distinct values are counted"},
	{name: "from", in: "query", typ: "string", doc: `start, inclusive: "now", "now-<n><m|h|d|w>" or RFC 3339 (default to-24h)`},
	{name: "to", in: "query", typ: "string", doc: "end, exclusive, in the same forms (default now)"},
	{name: "interval", in: "query", typ: "string", doc: "minute, hour or day; one total when absent"},
	{name: "groupBy", in: "query", typ: "string", repeat: true, doc: "event_type, user_id, session_id or properties.<key>; up to 3"},
	{name: "filter", in: "query", typ: "string", repeat: true, doc: `<field>:<op>:<value>, op eq, neq, in (comma-separated, \, escapes), contains, gt, lt; up to 10`},
	{name: "limit", in: "query", typ: "integer", doc: "top groups kept, by the first metric's total (default 100, at most 1000)"},
	{name: "order", in: "query", typ: "string", doc: "desc (default) or asc"},
}
