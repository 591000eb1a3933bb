package controllers

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/shoal-dev/shoal/api/v1alpha1"
)

func TestDashboardSpec(t *testing.T) {
	d := overviewDashboard("tenant-acme")
	d.Spec.Description = "Clicks by page"
	d.Spec.Public = true
	d.Spec.TimeRange = v1alpha1.TimeRange{From: "now-7d", To: "now"}
	// Listed last but placed first: the store gets them in position order.
	d.Spec.Widgets = append(d.Spec.Widgets, v1alpha1.Widget{
		ID: "top-right", Type: v1alpha1.WidgetNumber,
		Query:    v1alpha1.WidgetQuery{Pipeline: "clicks", Metric: "clicks", Interval: v1alpha1.GranularityDay},
		Position: v1alpha1.WidgetPosition{Column: 0, Row: 0, Width: 1, Height: 1},
	})
	d.Spec.Widgets[0].Position.Column = 1
	d.Spec.Widgets[0].Position.Width = 11
	spec, err := dashboardSpec(d)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Name != "overview" || spec.Title != "Overview" || spec.Description != "Clicks by page" || !spec.Public ||
		spec.TimeFrom != "now-7d" || spec.TimeTo != "now" || spec.RefreshSeconds != 60 {
		t.Errorf("spec %+v", spec)
	}
	if errs := spec.Validate(); len(errs) > 0 {
		t.Errorf("the store would refuse the spec: %v", errs)
	}
	var keys []string
	for _, w := range spec.Widgets {
		keys = append(keys, w.Key)
	}
	if !slices.Equal(keys, []string{"top-right", "by-page", "total"}) {
		t.Errorf("widget order %v", keys)
	}
	total := spec.Widgets[2]
	if total.Type != "number" || string(total.Query) != `{"pipeline":"clicks","metric":"visits","interval":"hour"}` ||
		string(total.Layout) != `{"column":0,"row":4,"width":3,"height":2}` {
		t.Errorf("widget total: %s %s %s", total.Type, total.Query, total.Layout)
	}
	var q v1alpha1.WidgetQuery
	if err := json.Unmarshal(spec.Widgets[1].Query, &q); err != nil || !slices.Equal(q.GroupBy, []v1alpha1.FieldRef{"properties.page"}) {
		t.Errorf("widget by-page query %s: %v", spec.Widgets[1].Query, err)
	}

	// An object the API server did not default gets the schema's refresh default.
	d.Spec.RefreshSeconds = nil
	if spec, _ := dashboardSpec(d); spec.RefreshSeconds != defaultRefreshSeconds {
		t.Errorf("refresh %d", spec.RefreshSeconds)
	}
}

func TestWidgetProblems(t *testing.T) {
	clicks := clicksPipeline("tenant-acme")
	deleting := clicksPipeline("tenant-acme")
	deleting.Name = "old"
	now := metav1.Now()
	deleting.DeletionTimestamp = &now
	hourly := clicksPipeline("tenant-acme")
	hourly.Name = "hourly"
	hourly.Spec.Granularities = nil
	hourly.Spec.Dimensions = nil
	pipelines := map[string]*v1alpha1.Pipeline{"clicks": clicks, "old": deleting, "hourly": hourly}
	widget := func(q v1alpha1.WidgetQuery) []v1alpha1.Widget {
		return []v1alpha1.Widget{{ID: "w", Query: q}}
	}
	for _, tc := range []struct {
		name  string
		query v1alpha1.WidgetQuery
		want  string
	}{
		{"fits", v1alpha1.WidgetQuery{Pipeline: "clicks", Metric: "clicks", GroupBy: []v1alpha1.FieldRef{"properties.page"},
			Filters: []v1alpha1.Filter{{Field: "properties.page", Op: v1alpha1.FilterEq, Values: []string{"/"}}}, Interval: v1alpha1.GranularityDay}, ""},
		{"interval defaults to hour", v1alpha1.WidgetQuery{Pipeline: "hourly", Metric: "clicks"}, ""},
		{"missing pipeline", v1alpha1.WidgetQuery{Pipeline: "views", Metric: "clicks"}, "widget w: pipeline views does not exist"},
		{"pipeline being deleted", v1alpha1.WidgetQuery{Pipeline: "old", Metric: "clicks"}, "widget w: pipeline old is being deleted"},
		{"unknown metric", v1alpha1.WidgetQuery{Pipeline: "clicks", Metric: "views"}, "widget w: pipeline clicks has no metric views (metrics: clicks)"},
		{"groupBy not a dimension", v1alpha1.WidgetQuery{Pipeline: "clicks", Metric: "clicks", GroupBy: []v1alpha1.FieldRef{"user_id"}},
			"widget w: groupBy user_id is not a dimension of pipeline clicks (dimensions: properties.page)"},
		{"filter not a dimension", v1alpha1.WidgetQuery{Pipeline: "hourly", Metric: "clicks",
			Filters: []v1alpha1.Filter{{Field: "properties.page", Op: v1alpha1.FilterEq, Values: []string{"/"}}}},
			"widget w: filter field properties.page is not a dimension of pipeline hourly (dimensions: none)"},
		{"granularity not kept", v1alpha1.WidgetQuery{Pipeline: "hourly", Metric: "clicks", Interval: v1alpha1.GranularityMinute},
			"widget w: interval minute is not a granularity of pipeline hourly (granularities: hour)"},
		{"everything wrong at once", v1alpha1.WidgetQuery{Pipeline: "clicks", Metric: "views", GroupBy: []v1alpha1.FieldRef{"user_id"}, Interval: v1alpha1.GranularityMinute},
			"widget w: pipeline clicks has no metric views (metrics: clicks), groupBy user_id is not a dimension of pipeline clicks (dimensions: properties.page), interval minute is not a granularity of pipeline clicks (granularities: hour, day)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(widgetProblems(widget(tc.query), pipelines), "; ")
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestWidgetsMessageIsBounded(t *testing.T) {
	var problems []string
	for range maxWidgetProblems + 3 {
		problems = append(problems, "widget w: pipeline p does not exist")
	}
	msg := widgetsMessage(problems)
	if strings.Count(msg, "widget w:") != maxWidgetProblems || !strings.HasSuffix(msg, "and 3 more widgets") {
		t.Errorf("message %q", msg)
	}
}

func TestWidgetPipelines(t *testing.T) {
	d := overviewDashboard("tenant-acme")
	d.Spec.Widgets = append(d.Spec.Widgets, v1alpha1.Widget{ID: "x", Query: v1alpha1.WidgetQuery{Pipeline: "views"}})
	if got := widgetPipelines(d); !slices.Equal(got, []string{"clicks", "views"}) {
		t.Errorf("pipelines %v", got)
	}
}

func TestShareSecretName(t *testing.T) {
	if got := shareSecretName("overview"); got != "overview-share" {
		t.Errorf("short name: %q", got)
	}
	long := strings.Repeat("a", 200) + "." + strings.Repeat("b", 52)
	other := strings.Repeat("a", 200) + "." + strings.Repeat("c", 52)
	got, got2 := shareSecretName(long), shareSecretName(other)
	if msgs := validation.IsDNS1123Subdomain(got); len(msgs) > 0 {
		t.Errorf("%q: %v", got, msgs)
	}
	if got == got2 || !strings.HasSuffix(got, "-share") {
		t.Errorf("long names: %q and %q", got, got2)
	}
}

func TestShareSecretWithoutBaseURL(t *testing.T) {
	s := shareSecret(overviewDashboard("tenant-acme"), "acme", "overview-share", "tok", "")
	if _, ok := s.Data[ShareURLKey]; ok || string(s.Data[ShareTokenKey]) != "tok" {
		t.Errorf("share Secret without a base URL: %v", s.Data)
	}
}
