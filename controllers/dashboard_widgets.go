package controllers

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/metastore"
)

// defaultRefreshSeconds is the schema's default of spec.refreshSeconds, for objects that
// were not defaulted by the API server.
const defaultRefreshSeconds = 60

// dashboardSpec is what the metastore keeps of a Dashboard: its name is the object's
// (unique in the namespace as in the tenant), each widget's key its id, its query the
// widget's query as JSON and its layout the widget's position. Widgets are ordered by
// position (row, then column), so reordering the list without moving a widget changes
// nothing stored.
func dashboardSpec(d *v1alpha1.Dashboard) (metastore.DashboardSpec, error) {
	refresh := int32(defaultRefreshSeconds)
	if d.Spec.RefreshSeconds != nil {
		refresh = *d.Spec.RefreshSeconds
	}
	spec := metastore.DashboardSpec{
		Name:           d.Name,
		Title:          d.Spec.Title,
		Description:    d.Spec.Description,
		Public:         d.Spec.Public,
		TimeFrom:       d.Spec.TimeRange.From,
		TimeTo:         d.Spec.TimeRange.To,
		RefreshSeconds: refresh,
	}
	widgets := slices.Clone(d.Spec.Widgets)
	slices.SortStableFunc(widgets, func(a, b v1alpha1.Widget) int {
		return cmp.Or(cmp.Compare(a.Position.Row, b.Position.Row), cmp.Compare(a.Position.Column, b.Position.Column), strings.Compare(a.ID, b.ID))
	})
	for _, w := range widgets {
		q := w.Query
		if q.Interval == "" {
			q.Interval = v1alpha1.GranularityHour
		}
		query, err := json.Marshal(q)
		if err != nil {
			return metastore.DashboardSpec{}, fmt.Errorf("widget %s: encoding its query: %w", w.ID, err)
		}
		layout, err := json.Marshal(w.Position)
		if err != nil {
			return metastore.DashboardSpec{}, fmt.Errorf("widget %s: encoding its position: %w", w.ID, err)
		}
		spec.Widgets = append(spec.Widgets, metastore.Widget{
			Key: w.ID, Type: string(w.Type), Title: w.Title, Query: query, Layout: layout,
		})
	}
	return spec, nil
}

// maxWidgetProblems bounds the Valid message; the rest are counted.
const maxWidgetProblems = 10

// widgetProblems checks every widget's query against the namespace's pipelines (by name):
// the pipeline exists, the metric is one of its metrics, groupBy and filter fields are
// among its dimensions, and the interval is one of its granularities. Each entry names a
// widget and everything wrong with it, in the spec's order.
func widgetProblems(widgets []v1alpha1.Widget, pipelines map[string]*v1alpha1.Pipeline) []string {
	var out []string
	for _, w := range widgets {
		if why := queryProblems(w.Query, pipelines); len(why) > 0 {
			out = append(out, fmt.Sprintf("widget %s: %s", w.ID, strings.Join(why, ", ")))
		}
	}
	return out
}

func queryProblems(q v1alpha1.WidgetQuery, pipelines map[string]*v1alpha1.Pipeline) []string {
	pl, ok := pipelines[q.Pipeline]
	switch {
	case !ok:
		return []string{fmt.Sprintf("pipeline %s does not exist", q.Pipeline)}
	case !pl.DeletionTimestamp.IsZero():
		return []string{fmt.Sprintf("pipeline %s is being deleted", q.Pipeline)}
	}
	var why []string
	metrics := make([]string, len(pl.Spec.Metrics))
	for i, m := range pl.Spec.Metrics {
		metrics[i] = m.Name
	}
	if !slices.Contains(metrics, q.Metric) {
		why = append(why, fmt.Sprintf("pipeline %s has no metric %s (metrics: %s)", pl.Name, q.Metric, strings.Join(metrics, ", ")))
	}
	dims := pl.Spec.Dimensions
	for _, g := range q.GroupBy {
		if !slices.Contains(dims, g) {
			why = append(why, fmt.Sprintf("groupBy %s is not a dimension of pipeline %s (dimensions: %s)", g, pl.Name, listOrNone(dims)))
		}
	}
	for _, f := range q.Filters {
		if !slices.Contains(dims, f.Field) {
			why = append(why, fmt.Sprintf("filter field %s is not a dimension of pipeline %s (dimensions: %s)", f.Field, pl.Name, listOrNone(dims)))
		}
	}
	interval := cmp.Or(q.Interval, v1alpha1.GranularityHour)
	grans := pl.Spec.Granularities
	if len(grans) == 0 {
		grans = []v1alpha1.Granularity{v1alpha1.GranularityHour} // the schema's default
	}
	if !slices.Contains(grans, interval) {
		why = append(why, fmt.Sprintf("interval %s is not a granularity of pipeline %s (granularities: %s)", interval, pl.Name, listOrNone(grans)))
	}
	return why
}

func listOrNone[S ~string](items []S) string {
	if len(items) == 0 {
		return "none"
	}
	s := make([]string, len(items))
	for i, v := range items {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// widgetsMessage joins widget problems, at most maxWidgetProblems of them.
func widgetsMessage(problems []string) string {
	if len(problems) <= maxWidgetProblems {
		return strings.Join(problems, "; ")
	}
	return fmt.Sprintf("%s; and %d more widgets", strings.Join(problems[:maxWidgetProblems], "; "), len(problems)-maxWidgetProblems)
}

// widgetPipelines lists the pipelines a dashboard's widgets read, for the field index
// that maps a Pipeline's events to the Dashboards using it.
func widgetPipelines(d *v1alpha1.Dashboard) []string {
	var names []string
	for _, w := range d.Spec.Widgets {
		if !slices.Contains(names, w.Query.Pipeline) {
			names = append(names, w.Query.Pipeline)
		}
	}
	return names
}
