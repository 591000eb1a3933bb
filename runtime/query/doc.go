// Package query is `shoal query`, the web API tenants' users and scripts call: metrics
// queries, dashboards (with each widget's data), data sources, users and roles, personal
// API tokens, alert rules and alerts, and the tenant's subscription, all under /api/v1 and
// described by GET /api/v1/openapi.json. docs/query-api.md is the user's guide.
//
// Every route is one entry of a route table (Server.Routes): its method and path, the
// auth.Action it needs, and what the OpenAPI document says of it. A request to an
// authenticated route is, in order: given a request id; authenticated (auth.Authenticator:
// OIDC or a personal token); charged to its tenant's token bucket (RateLimit headers,
// 429 with Retry-After); authorized for the route's one action; then handled with the
// tenant taken from the Principal only. Paths and bodies never name a tenant, and every
// store call is scoped to the Principal's tenant, so another tenant's ids read as not
// found.
//
// Metrics are answered by a metricquery.Engine (SQL over the tenant's ClickHouse
// database); the Server does not know how. Dashboards query their widgets through the
// same engine, in parallel, each under its own timeout: a widget that fails is reported
// in its own entry and the page is still 200.
//
// The alert Evaluator runs each enabled rule's query over its window on a schedule,
// fires and resolves alerts in the metastore, and notifies (package notify) on
// transitions only.
package query
