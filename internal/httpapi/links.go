package httpapi

import (
	"net/url"
	"strings"
)

// QueryAPIPrefix is the path prefix of the query API's endpoints.
const QueryAPIPrefix = "/api/v1"

// DashboardURL is where the query API serves a dashboard, under the API's public base
// URL; empty without a base or an id. The operator writes it into a Dashboard object's
// status, so it has to be the path the API serves.
func DashboardURL(base, id string) string {
	if base == "" || id == "" {
		return ""
	}
	return strings.TrimRight(base, "/") + QueryAPIPrefix + "/dashboards/" + url.PathEscape(id)
}

// PublicDashboardURL is the link that opens a shared dashboard without sign-in; empty
// without a base or a token. The API and the operator hand out the same link.
func PublicDashboardURL(base, token string) string {
	if base == "" || token == "" {
		return ""
	}
	return strings.TrimRight(base, "/") + QueryAPIPrefix + "/public/dashboards/" + url.PathEscape(token)
}
