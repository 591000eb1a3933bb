package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/internal/httpapi"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/runtime/query/metricquery"
)

// dashboardBody is what POST and PUT take.
type dashboardBody struct {
	Name           string       `json:"name"`
	Title          string       `json:"title"`
	Description    string       `json:"description,omitempty"`
	Public         bool         `json:"public,omitempty"`
	TimeFrom       string       `json:"timeFrom,omitempty"`
	TimeTo         string       `json:"timeTo,omitempty"`
	RefreshSeconds int32        `json:"refreshSeconds,omitempty"`
	Widgets        []widgetBody `json:"widgets,omitempty"`
}

type widgetBody struct {
	Key    string          `json:"key,omitempty"`
	Type   string          `json:"type"`
	Title  string          `json:"title,omitempty"`
	Query  json.RawMessage `json:"query"`
	Layout json.RawMessage `json:"layout,omitempty"`
}

// spec checks every widget's query (its form: that the pipeline and metric exist is
// checked when it is queried) and returns the store's spec, or the invalid parameters.
func (b dashboardBody) spec(now time.Time) (metastore.DashboardSpec, []httpapi.InvalidParam) {
	spec := metastore.DashboardSpec{
		Name: b.Name, Title: b.Title, Description: b.Description, Public: b.Public,
		TimeFrom: b.TimeFrom, TimeTo: b.TimeTo, RefreshSeconds: b.RefreshSeconds,
	}
	var bad []httpapi.InvalidParam
	for i, w := range b.Widgets {
		spec.Widgets = append(spec.Widgets, metastore.Widget{Key: w.Key, Type: w.Type, Title: w.Title, Query: w.Query, Layout: w.Layout})
		if len(w.Query) == 0 {
			continue // the store names it required
		}
		sq, err := decodeStoredQuery(w.Query)
		if err == nil {
			_, err = sq.Parse("", "", now)
		}
		var errs metricquery.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				name := fmt.Sprintf("widgets[%d].query", i)
				if e.Param != "query" {
					name += "." + e.Param
				}
				bad = append(bad, httpapi.InvalidParam{Name: name, Reason: e.Reason})
			}
		}
	}
	return spec, bad
}

// dashboardJSON is a dashboard as the API answers it.
type dashboardJSON struct {
	ID             string       `json:"id"`
	Name           string       `json:"name"`
	Title          string       `json:"title"`
	Description    string       `json:"description,omitempty"`
	Public         bool         `json:"public"`
	TimeFrom       string       `json:"timeFrom,omitempty"`
	TimeTo         string       `json:"timeTo,omitempty"`
	RefreshSeconds int32        `json:"refreshSeconds"`
	Widgets        []widgetJSON `json:"widgets,omitempty"`
	// ManagedBy names the Dashboard object ("<namespace>/<name>") that owns it: change
	// the object, not the dashboard.
	ManagedBy string `json:"managedBy,omitempty"`
	// ShareToken and ShareURL are set only in the answer that minted the token.
	ShareToken string    `json:"shareToken,omitempty"`
	ShareURL   string    `json:"shareURL,omitempty"`
	Version    int64     `json:"version"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

// widgetJSON is a widget, with its data when the dashboard is read whole.
type widgetJSON struct {
	ID     string          `json:"id"`
	Key    string          `json:"key,omitempty"`
	Type   string          `json:"type"`
	Title  string          `json:"title,omitempty"`
	Query  json.RawMessage `json:"query"`
	Layout json.RawMessage `json:"layout,omitempty"`
	widgetData
}

// widgetData is a widget's answer: data, or the error that kept it from the widget.
type widgetData struct {
	Data  *metricquery.Result `json:"data,omitempty"`
	Error *widgetError        `json:"error,omitempty"`
}

// widgetError is a problem document of one widget, in the page's body.
type widgetError struct {
	Type          string                 `json:"type"`
	Title         string                 `json:"title"`
	Status        int                    `json:"status"`
	Detail        string                 `json:"detail"`
	InvalidParams []httpapi.InvalidParam `json:"invalidParams,omitempty"`
}

func (s *Server) dashboardJSON(d metastore.Dashboard) dashboardJSON {
	out := dashboardJSON{
		ID: d.ID, Name: d.Name, Title: d.Title, Description: d.Description, Public: d.Public,
		TimeFrom: d.TimeFrom, TimeTo: d.TimeTo, RefreshSeconds: d.RefreshSeconds, ManagedBy: d.ManagedBy,
		ShareToken: d.ShareToken, ShareURL: s.shareURL(d.ShareToken),
		Version: d.Version, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
	}
	for _, w := range d.Widgets {
		out.Widgets = append(out.Widgets, widgetJSON{ID: w.ID, Key: w.Key, Type: w.Type, Title: w.Title, Query: w.Query, Layout: w.Layout})
	}
	return out
}

func (s *Server) shareURL(token string) string {
	return httpapi.PublicDashboardURL(s.publicURL, token)
}

func (s *Server) handleListDashboards(w http.ResponseWriter, r *http.Request) {
	opts, ok := pageOptions(w, r, metastore.MaxPageSize)
	if !ok {
		return
	}
	pg, err := s.store.ListDashboards(r.Context(), principalOf(r).TenantID, opts)
	if err != nil {
		s.fail(w, r, "dashboard", err)
		return
	}
	writeJSON(w, http.StatusOK, page[dashboardJSON]{Items: mapItems(pg.Items, s.dashboardJSON), Next: pg.Next})
}

func (s *Server) handleCreateDashboard(w http.ResponseWriter, r *http.Request) {
	var body dashboardBody
	if !decodeBody(w, r, &body) {
		return
	}
	spec, bad := body.spec(s.opts.Now())
	if len(bad) > 0 {
		badRequest(w, r, "invalid widget queries", bad...)
		return
	}
	d, err := s.store.CreateDashboard(r.Context(), principalOf(r).TenantID, spec)
	if err != nil {
		s.fail(w, r, "dashboard", err)
		return
	}
	w.Header().Set("Location", APIPrefix+"/dashboards/"+d.ID)
	writeJSON(w, http.StatusCreated, s.dashboardJSON(d))
}

func (s *Server) handleUpdateDashboard(w http.ResponseWriter, r *http.Request) {
	var body dashboardBody
	if !decodeBody(w, r, &body) {
		return
	}
	spec, bad := body.spec(s.opts.Now())
	if len(bad) > 0 {
		badRequest(w, r, "invalid widget queries", bad...)
		return
	}
	d, err := s.store.UpdateDashboard(r.Context(), principalOf(r).TenantID, r.PathValue("id"), spec)
	if err != nil {
		s.fail(w, r, "dashboard "+r.PathValue("id"), err)
		return
	}
	writeJSON(w, http.StatusOK, s.dashboardJSON(d))
}

func (s *Server) handleDeleteDashboard(w http.ResponseWriter, r *http.Request) {
	if err := s.store.DeleteDashboard(r.Context(), principalOf(r).TenantID, r.PathValue("id")); err != nil {
		s.fail(w, r, "dashboard "+r.PathValue("id"), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// shareTokenJSON answers a rotation.
type shareTokenJSON struct {
	ShareToken string `json:"shareToken"`
	ShareURL   string `json:"shareURL,omitempty"`
}

func (s *Server) handleRotateShareToken(w http.ResponseWriter, r *http.Request) {
	token, err := s.store.RotateDashboardShareToken(r.Context(), principalOf(r).TenantID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, "dashboard "+r.PathValue("id"), err)
		return
	}
	writeJSON(w, http.StatusOK, shareTokenJSON{ShareToken: token, ShareURL: s.shareURL(token)})
}

// timeRange is the range a dashboard's widgets are queried over: the request's from and
// to when given, else the dashboard's own.
func timeRange(w http.ResponseWriter, r *http.Request, d metastore.Dashboard, now time.Time) (from, to string, ok bool) {
	q := r.URL.Query()
	from, to = q.Get(metricquery.ParamFrom), q.Get(metricquery.ParamTo)
	if from == "" && to == "" {
		return d.TimeFrom, d.TimeTo, true
	}
	// The parser checks times as part of a query: a minimal valid one isolates them.
	probe := url.Values{metricquery.ParamMode: {"raw"}, metricquery.ParamEventType: {"probe"}}
	for name, v := range map[string]string{metricquery.ParamFrom: from, metricquery.ParamTo: to} {
		if v != "" {
			probe.Set(name, v)
		}
	}
	if _, err := metricquery.Parse(probe, now); err != nil {
		var errs metricquery.Errors
		errors.As(err, &errs)
		badRequest(w, r, "invalid time range", invalidParams(errs)...)
		return "", "", false
	}
	return from, to, true
}

func (s *Server) handleGetDashboard(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	d, err := s.store.GetDashboard(r.Context(), p.TenantID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, "dashboard "+r.PathValue("id"), err)
		return
	}
	from, to, ok := timeRange(w, r, d, s.opts.Now())
	if !ok {
		return
	}
	out := s.dashboardJSON(d)
	data := s.widgetsData(r.Context(), p.TenantID, d.Widgets, from, to)
	for i := range out.Widgets {
		out.Widgets[i].widgetData = data[i]
	}
	writeJSON(w, http.StatusOK, out)
}

// widgetsData queries the widgets in parallel (at most WidgetParallelism at once), each
// under the widget timeout; a widget that fails gets its error, never failing the others.
func (s *Server) widgetsData(ctx context.Context, tenantID string, widgets []metastore.Widget, from, to string) []widgetData {
	out := make([]widgetData, len(widgets))
	now := s.opts.Now()
	timeout := s.opts.Platform.Query.WidgetTimeout.Duration
	sem := make(chan struct{}, s.opts.WidgetParallelism)
	var wg sync.WaitGroup
	for i, wd := range widgets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = s.widgetData(ctx, tenantID, wd, from, to, now, timeout)
		}()
	}
	wg.Wait()
	return out
}

func (s *Server) widgetData(ctx context.Context, tenantID string, wd metastore.Widget, from, to string, now time.Time, timeout time.Duration) widgetData {
	sq, err := decodeStoredQuery(wd.Query)
	var q metricquery.Query
	if err == nil {
		q, err = sq.Parse(from, to, now)
	}
	var res metricquery.Result
	if err == nil {
		res, err = s.runQuery(ctx, tenantID, q, timeout)
	}
	if err != nil {
		s.metrics.widgets.WithLabelValues("failed").Inc()
		p := problemFor("widget query", err)
		if p.Status >= http.StatusInternalServerError {
			s.log.ErrorContext(ctx, "widget query failed", "tenant", tenantID, "widget", wd.ID, "err", err)
		}
		return widgetData{Error: &widgetError{
			Type: httpapi.ProblemTypeBase + p.Type, Title: http.StatusText(p.Status), Status: p.Status,
			Detail: p.Detail, InvalidParams: p.InvalidParams,
		}}
	}
	s.metrics.widgets.WithLabelValues("ok").Inc()
	return widgetData{Data: &res}
}

// publicDashboardJSON is what a share link shows: what a viewer needs to draw the
// dashboard, and nothing that names other objects (no ids, no queries, no owner).
type publicDashboardJSON struct {
	Title          string             `json:"title"`
	Description    string             `json:"description,omitempty"`
	TimeFrom       string             `json:"timeFrom,omitempty"`
	TimeTo         string             `json:"timeTo,omitempty"`
	RefreshSeconds int32              `json:"refreshSeconds"`
	Widgets        []publicWidgetJSON `json:"widgets"`
}

type publicWidgetJSON struct {
	Type   string              `json:"type"`
	Title  string              `json:"title,omitempty"`
	Layout json.RawMessage     `json:"layout,omitempty"`
	Data   *metricquery.Result `json:"data,omitempty"`
	// Error says only that the widget could not be drawn: the details are for the
	// dashboard's owners.
	Error *widgetError `json:"error,omitempty"`
}

func (s *Server) handlePublicDashboard(w http.ResponseWriter, r *http.Request) {
	d, err := s.store.GetDashboardByShareToken(r.Context(), r.PathValue("token"))
	if err == nil && s.opts.Tenant != "" && d.TenantID != s.opts.Tenant {
		err = metastore.ErrNotFound
	}
	if err != nil {
		s.fail(w, r, "shared dashboard", err)
		return
	}
	// Anonymous views count against the owning tenant's rate limit.
	if !s.charge(w, r, d.TenantID) {
		return
	}
	from, to, ok := timeRange(w, r, d, s.opts.Now())
	if !ok {
		return
	}
	data := s.widgetsData(r.Context(), d.TenantID, d.Widgets, from, to)
	out := publicDashboardJSON{
		Title: d.Title, Description: d.Description, TimeFrom: d.TimeFrom, TimeTo: d.TimeTo,
		RefreshSeconds: d.RefreshSeconds, Widgets: []publicWidgetJSON{},
	}
	for i, wd := range d.Widgets {
		pw := publicWidgetJSON{Type: wd.Type, Title: wd.Title, Layout: wd.Layout, Data: data[i].Data}
		if e := data[i].Error; e != nil {
			pw.Error = &widgetError{Type: e.Type, Title: e.Title, Status: e.Status, Detail: "this widget could not be loaded"}
		}
		out.Widgets = append(out.Widgets, pw)
	}
	w.Header().Set("Referrer-Policy", "no-referrer") // the token is in the URL
	writeJSON(w, http.StatusOK, out)
}
