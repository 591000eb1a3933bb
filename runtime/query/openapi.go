package query

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/internal/version"
)

// operation is what the OpenAPI document says of a route.
type operation struct {
	tag     string
	summary string
	params  []param
	// body and response name schemas of the document's components; status is the
	// success status (200 when 0).
	body     string
	response string
	status   int
}

type param struct {
	name, in, typ, doc string
	repeat             bool
}

var pathParam = regexp.MustCompile(`\{([A-Za-z]+)\}`)

// openAPI builds the document from the route table, so every route served is described
// and nothing else is.
func (s *Server) openAPI() map[string]any {
	paths := map[string]map[string]any{}
	for _, rt := range s.routes {
		op := map[string]any{
			"tags":        []string{rt.doc.tag},
			"summary":     rt.doc.summary,
			"operationId": operationID(rt),
		}
		var params []map[string]any
		for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, p := range rt.doc.params {
			schema := map[string]any{"type": p.typ}
			if p.repeat {
				schema = map[string]any{"type": "array", "items": map[string]any{"type": p.typ}}
			}
			params = append(params, map[string]any{"name": p.name, "in": p.in, "description": p.doc, "schema": schema, "explode": true})
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if rt.doc.body != "" {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": ref(rt.doc.body)}}}
		}
		status := rt.doc.status
		if status == 0 {
			status = http.StatusOK
		}
		ok := map[string]any{"description": http.StatusText(status)}
		if rt.doc.response != "" {
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": ref(rt.doc.response)}}
		}
		responses := map[string]any{strconv.Itoa(status): ok}
		errs := []int{400, 401, 403, 404, 409, 429, 503}
		if rt.public {
			errs = []int{400, 404, 429}
			op["security"] = []any{}
		}
		for _, code := range errs {
			responses[strconv.Itoa(code)] = map[string]any{"$ref": "#/components/responses/Problem"}
		}
		op["responses"] = responses
		if rt.action != "" {
			op["x-shoal-action"] = string(rt.action)
		}
		if paths[rt.path] == nil {
			paths[rt.path] = map[string]any{}
		}
		paths[rt.path][strings.ToLower(rt.method)] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "Shoal query API",
			"version":     version.Version,
			"description": "The tenants' web API: metrics, dashboards, data sources, users, tokens, alerts. The tenant is always the caller's.",
		},
		"servers":  []any{map[string]any{"url": "/"}},
		"security": []any{map[string]any{"bearer": []string{}}},
		"paths":    paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer",
					"description": "An OIDC token from the configured issuer, or a personal API token (shp_...)"},
			},
			"responses": map[string]any{
				"Problem": map[string]any{"description": "An RFC 9457 problem document",
					"headers": map[string]any{"X-Request-Id": map[string]any{"schema": map[string]any{"type": "string"}}},
					"content": map[string]any{"application/problem+json": map[string]any{"schema": ref("Problem")}}},
			},
			"schemas": schemas(),
		},
	}
}

func operationID(rt route) string {
	name := strings.ToLower(rt.method)
	for _, part := range strings.Split(strings.TrimPrefix(rt.path, APIPrefix+"/"), "/") {
		part = strings.Trim(part, "{}")
		for _, word := range strings.FieldsFunc(part, func(r rune) bool { return r == '-' || r == '.' }) {
			name += strings.ToUpper(word[:1]) + word[1:]
		}
	}
	return name
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func (s *Server) handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	body, _ := json.Marshal(s.openAPI()) // maps of strings: cannot fail
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(body)
}

// Schema helpers.
func obj(required []string, props map[string]any) map[string]any {
	o := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func typ(t string) map[string]any             { return map[string]any{"type": t} }
func arr(items map[string]any) map[string]any { return map[string]any{"type": "array", "items": items} }
func dateTime() map[string]any                { return map[string]any{"type": "string", "format": "date-time"} }
func pageOf(item string) map[string]any {
	return obj([]string{"items"}, map[string]any{"items": arr(ref(item)), "next": typ("string")})
}

// schemas are the document's components, written by hand next to the types they
// describe.
func schemas() map[string]any {
	filter := obj([]string{"field", "op", "values"}, map[string]any{"field": typ("string"), "op": typ("string"), "values": arr(typ("string"))})
	storedQuery := obj(nil, map[string]any{
		"mode": typ("string"), "pipeline": typ("string"), "metric": typ("string"), "metrics": arr(typ("string")),
		"eventType": typ("string"), "aggregate": typ("string"), "field": typ("string"), "groupBy": arr(typ("string")),
		"filters": arr(ref("Filter")), "interval": typ("string"), "limit": typ("integer"), "order": typ("string"),
	})
	result := obj([]string{"source", "series", "statistics"}, map[string]any{
		"source": typ("string"),
		"series": arr(obj([]string{"points"}, map[string]any{
			"group":  map[string]any{"type": "object", "additionalProperties": typ("string")},
			"points": arr(obj([]string{"time", "values"}, map[string]any{"time": dateTime(), "values": map[string]any{"type": "object", "additionalProperties": typ("number")}})),
		})),
		"statistics": obj(nil, map[string]any{"rowsRead": typ("integer"), "bytesRead": typ("integer"), "elapsedMs": typ("number")}),
	})
	widgetError := obj([]string{"type", "status", "detail"}, map[string]any{"type": typ("string"), "title": typ("string"), "status": typ("integer"), "detail": typ("string"), "invalidParams": arr(ref("InvalidParam"))})
	widget := obj([]string{"id", "type", "query"}, map[string]any{
		"id": typ("string"), "key": typ("string"), "type": typ("string"), "title": typ("string"),
		"query": ref("StoredQuery"), "layout": typ("object"), "data": ref("Result"), "error": ref("WidgetError"),
	})
	dashboardInput := obj([]string{"name", "title"}, map[string]any{
		"name": typ("string"), "title": typ("string"), "description": typ("string"), "public": typ("boolean"),
		"timeFrom": typ("string"), "timeTo": typ("string"), "refreshSeconds": typ("integer"),
		"widgets": arr(obj([]string{"type", "query"}, map[string]any{"key": typ("string"), "type": typ("string"), "title": typ("string"), "query": ref("StoredQuery"), "layout": typ("object")})),
	})
	dashboard := obj([]string{"id", "name", "title", "public", "version"}, map[string]any{
		"id": typ("string"), "name": typ("string"), "title": typ("string"), "description": typ("string"), "public": typ("boolean"),
		"timeFrom": typ("string"), "timeTo": typ("string"), "refreshSeconds": typ("integer"), "widgets": arr(ref("Widget")),
		"managedBy": typ("string"), "shareToken": typ("string"), "shareURL": typ("string"), "version": typ("integer"),
		"createdAt": dateTime(), "updatedAt": dateTime(),
	})
	public := obj([]string{"title", "widgets"}, map[string]any{
		"title": typ("string"), "description": typ("string"), "timeFrom": typ("string"), "timeTo": typ("string"), "refreshSeconds": typ("integer"),
		"widgets": arr(obj([]string{"type"}, map[string]any{"type": typ("string"), "title": typ("string"), "layout": typ("object"), "data": ref("Result"), "error": ref("WidgetError")})),
	})
	dataSource := obj([]string{"id", "name", "type", "config", "hasCredentials"}, map[string]any{
		"id": typ("string"), "name": typ("string"), "type": typ("string"), "config": typ("object"), "hasCredentials": typ("boolean"),
		"managedBy": typ("string"), "cursor": typ("string"), "lastSyncAt": dateTime(), "recordsSynced": typ("integer"),
		"version": typ("integer"), "createdAt": dateTime(), "updatedAt": dateTime(),
	})
	dataSourceInput := obj([]string{"name", "type", "config"}, map[string]any{
		"name": typ("string"), "type": typ("string"), "config": typ("object"),
		"credentials": map[string]any{"type": "object", "additionalProperties": typ("string"), "writeOnly": true},
	})
	user := obj([]string{"id", "email", "role"}, map[string]any{"id": typ("string"), "email": typ("string"), "role": typ("string"), "createdAt": dateTime(), "updatedAt": dateTime()})
	token := obj([]string{"id", "name", "prefix"}, map[string]any{
		"id": typ("string"), "name": typ("string"), "prefix": typ("string"), "token": typ("string"),
		"createdAt": dateTime(), "expiresAt": dateTime(), "lastUsedAt": dateTime(), "revokedAt": dateTime(),
	})
	condition := obj([]string{"operator", "threshold", "window"}, map[string]any{"operator": typ("string"), "threshold": typ("number"), "window": typ("string")})
	notify := obj(nil, map[string]any{"webhooks": arr(typ("string")), "emails": arr(typ("string"))})
	alertRuleInput := obj([]string{"name", "query", "condition"}, map[string]any{"name": typ("string"), "query": ref("StoredQuery"), "condition": condition, "enabled": typ("boolean"), "notify": notify})
	alertRule := obj([]string{"id", "name", "query", "condition", "enabled"}, map[string]any{
		"id": typ("string"), "name": typ("string"), "query": ref("StoredQuery"), "condition": condition, "enabled": typ("boolean"),
		"notify": notify, "createdAt": dateTime(), "updatedAt": dateTime(),
	})
	alert := obj([]string{"id", "ruleId", "state", "firedAt"}, map[string]any{
		"id": typ("string"), "ruleId": typ("string"), "ruleName": typ("string"), "state": typ("string"), "value": typ("number"),
		"firedAt": dateTime(), "resolvedAt": dateTime(),
	})
	subscription := obj([]string{"tenant", "plan", "state", "billing", "period", "usage"}, map[string]any{
		"tenant": typ("string"), "plan": obj(nil, map[string]any{"name": typ("string"), "displayName": typ("string")}),
		"state": typ("string"), "suspendedReason": typ("string"),
		"billing": obj(nil, map[string]any{"enabled": typ("boolean"), "status": typ("string"), "checkedAt": dateTime()}),
		"period":  obj(nil, map[string]any{"start": dateTime(), "end": dateTime(), "source": typ("string")}),
		"limits":  typ("object"),
		"usage":   obj(nil, map[string]any{"eventsIngested": typ("integer"), "from": dateTime(), "to": dateTime(), "error": typ("string")}),
	})
	return map[string]any{
		"Problem": obj([]string{"type", "title", "status", "detail"}, map[string]any{
			"type": typ("string"), "title": typ("string"), "status": typ("integer"), "detail": typ("string"), "error": typ("string"),
			"requestId": typ("string"), "invalidParams": arr(ref("InvalidParam")),
		}),
		"InvalidParam":    obj([]string{"name", "reason"}, map[string]any{"name": typ("string"), "reason": typ("string")}),
		"Filter":          filter,
		"StoredQuery":     storedQuery,
		"Result":          result,
		"MetricsAnswer":   map[string]any{"allOf": []any{ref("Result"), obj([]string{"query"}, map[string]any{"query": typ("object")})}},
		"WidgetError":     widgetError,
		"Widget":          widget,
		"DashboardInput":  dashboardInput,
		"Dashboard":       dashboard,
		"DashboardPage":   pageOf("Dashboard"),
		"PublicDashboard": public,
		"ShareToken":      obj([]string{"shareToken"}, map[string]any{"shareToken": typ("string"), "shareURL": typ("string")}),
		"DataSourceInput": dataSourceInput,
		"DataSource":      dataSource,
		"DataSourcePage":  pageOf("DataSource"),
		"Subscription":    subscription,
		"User":            user,
		"UserPage":        pageOf("User"),
		"RoleInput":       obj([]string{"role"}, map[string]any{"role": map[string]any{"type": "string", "enum": []string{"owner", "admin", "editor", "viewer"}}}),
		"TokenInput":      obj([]string{"name"}, map[string]any{"name": typ("string"), "expiresAt": dateTime()}),
		"Token":           token,
		"TokenPage":       pageOf("Token"),
		"AlertRuleInput":  alertRuleInput,
		"AlertRule":       alertRule,
		"AlertRulePage":   pageOf("AlertRule"),
		"Alert":           alert,
		"AlertPage":       pageOf("Alert"),
		"OpenAPI":         typ("object"),
	}
}
