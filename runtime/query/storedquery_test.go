package query

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/runtime/query/metricquery"
)

func TestStoredQueryParse(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		json      string
		wantParam string // "" when valid
		check     func(metricquery.Query) bool
	}{
		{"a Dashboard object's widget", `{"pipeline":"web","metric":"views","groupBy":["properties.page"],"filters":[{"field":"event_type","op":"eq","values":["view"]}],"interval":"hour"}`, "",
			func(q metricquery.Query) bool {
				return q.Pipeline == "web" && q.Metrics[0] == "views" && q.GroupBy[0] == "properties.page" && q.Interval == "hour" && q.Filters[0].Values[0] == "view"
			}},
		{"in values with commas and backslashes survive", `{"pipeline":"web","metric":"views","filters":[{"field":"properties.q","op":"in","values":["a,b","c\\d",""]}]}`, "",
			func(q metricquery.Query) bool { return slices.Equal(q.Filters[0].Values, []string{"a,b", `c\d`, ""}) }},
		{"an eq value with a colon and a comma is one value", `{"pipeline":"web","metric":"views","filters":[{"field":"properties.q","op":"eq","values":["x:y,z"]}]}`, "",
			func(q metricquery.Query) bool { return q.Filters[0].Values[0] == "x:y,z" }},
		{"raw mode", `{"mode":"raw","eventType":"signup","aggregate":"uniq","field":"user_id"}`, "",
			func(q metricquery.Query) bool { return q.Mode == metricquery.ModeRaw && q.Field == "user_id" }},
		{"eq with two values", `{"pipeline":"web","metric":"views","filters":[{"field":"user_id","op":"eq","values":["a","b"]}]}`, "filter", nil},
		{"unknown field", `{"pipeline":"web","metric":"views","colour":"red"}`, "query", nil},
		{"bad metric", `{"pipeline":"web","metric":"v) or (1"}`, "metric", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sq, err := decodeStoredQuery(json.RawMessage(tc.json))
			var q metricquery.Query
			if err == nil {
				q, err = sq.Parse("now-1h", "", now)
			}
			if tc.wantParam == "" {
				if err != nil || !tc.check(q) || !q.From.Equal(now.Add(-time.Hour)) {
					t.Errorf("%+v, %v", q, err)
				}
				return
			}
			var errs metricquery.Errors
			if !errors.As(err, &errs) || errs[0].Param != tc.wantParam {
				t.Errorf("error %v, want one naming %s", err, tc.wantParam)
			}
		})
	}
}
