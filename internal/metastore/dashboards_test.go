package metastore

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shoal-dev/shoal/internal/testbackends"
)

// TestDashboards runs the dashboard cases against one server, each in its own database.
func TestDashboards(t *testing.T) {
	pg := testbackends.StartPostgres(t)
	t.Run("CRUD", func(t *testing.T) { testDashboardCRUD(t, pg) })
	t.Run("Validation", func(t *testing.T) { testDashboardValidation(t, pg) })
	t.Run("Pagination", func(t *testing.T) { testDashboardPagination(t, pg) })
	t.Run("Isolation", func(t *testing.T) { testDashboardIsolation(t, pg) })
	t.Run("ShareTokens", func(t *testing.T) { testShareTokens(t, pg) })
	t.Run("Sync", func(t *testing.T) { testDashboardSync(t, pg) })
}

func widget(key, typ, query string) Widget {
	return Widget{Key: key, Type: typ, Title: strings.ToUpper(key), Query: json.RawMessage(query), Layout: json.RawMessage(`{"column":0,"row":0,"width":6,"height":4}`)}
}

func sampleDashboard(name string) DashboardSpec {
	return DashboardSpec{
		Name: name, Title: "Title of " + name, Description: "d", TimeFrom: "now-7d", TimeTo: "now", RefreshSeconds: 60,
		Widgets: []Widget{
			widget("signups", WidgetTimeseries, `{"pipeline":"web","metric":"signups","interval":"hour"}`),
			widget("revenue", WidgetNumber, `{"pipeline":"web","metric":"revenue"}`),
			widget("by-country", WidgetPie, `{"pipeline":"web","metric":"signups","groupBy":["country"]}`),
		},
	}
}

// sameJSON compares JSON by meaning: jsonb reorders keys and respaces.
func sameJSON(t *testing.T, got, want json.RawMessage) bool {
	t.Helper()
	var g, w any
	if len(want) == 0 {
		want = json.RawMessage(`{}`)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("stored JSON %q: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(g, w)
}

func checkDashboard(t *testing.T, what string, got Dashboard, tenantID string, want DashboardSpec) {
	t.Helper()
	if got.TenantID != tenantID || !validID(got.ID) || got.Name != want.Name || got.Title != want.Title ||
		got.Description != want.Description || got.Public != want.Public || got.TimeFrom != want.TimeFrom ||
		got.TimeTo != want.TimeTo || got.RefreshSeconds != want.RefreshSeconds {
		t.Errorf("%s: got %+v, want %+v of tenant %s", what, got, want, tenantID)
	}
	if len(got.Widgets) != len(want.Widgets) {
		t.Fatalf("%s: %d widgets, want %d", what, len(got.Widgets), len(want.Widgets))
	}
	for i, w := range want.Widgets {
		g := got.Widgets[i]
		if g.Key != w.Key || g.Type != w.Type || g.Title != w.Title || !validID(g.ID) ||
			!sameJSON(t, g.Query, w.Query) || !sameJSON(t, g.Layout, w.Layout) {
			t.Errorf("%s: widget %d is %+v, want %+v", what, i, g, w)
		}
	}
}

func testDashboardCRUD(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	s := db.store

	spec := sampleDashboard("main")
	created, err := s.CreateDashboard(ctx, "acme", spec)
	if err != nil {
		t.Fatal(err)
	}
	checkDashboard(t, "created", created, "acme", spec)
	if created.Version != 1 || created.ShareToken != "" || created.ManagedBy != "" {
		t.Errorf("created: version %d, share token %q, managed by %q", created.Version, created.ShareToken, created.ManagedBy)
	}
	got, err := s.GetDashboard(ctx, "acme", created.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkDashboard(t, "got", got, "acme", spec)

	// Reversed and shortened: widgets come back in the new order, the old ones gone.
	updated := spec
	updated.Name, updated.Title, updated.RefreshSeconds = "renamed", "New title", 0
	updated.Widgets = []Widget{spec.Widgets[2], {Type: WidgetTable, Query: json.RawMessage(`{"pipeline":"web","metric":"x"}`)}}
	time.Sleep(5 * time.Millisecond)
	after, err := s.UpdateDashboard(ctx, "acme", created.ID, updated)
	if err != nil {
		t.Fatal(err)
	}
	checkDashboard(t, "updated", after, "acme", updated)
	if after.Version != 2 || !after.UpdatedAt.After(created.UpdatedAt) || !after.CreatedAt.Equal(created.CreatedAt) {
		t.Errorf("updated: version %d, updated_at %v (was %v)", after.Version, after.UpdatedAt, created.UpdatedAt)
	}
	if n := db.count(t, "SELECT count(*) FROM widgets"); n != 2 {
		t.Errorf("%d widget rows after the update, want 2", n)
	}

	if _, err := s.CreateDashboard(ctx, "acme", sampleDashboard("renamed")); !errors.Is(err, ErrNameTaken) {
		t.Errorf("creating a taken name: %v, want ErrNameTaken", err)
	}
	other, err := s.CreateDashboard(ctx, "acme", sampleDashboard("other"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateDashboard(ctx, "acme", other.ID, updated); !errors.Is(err, ErrNameTaken) {
		t.Errorf("renaming onto a taken name: %v, want ErrNameTaken", err)
	}
	if _, err := s.CreateDashboard(ctx, "nobody", sampleDashboard("x")); !errors.Is(err, ErrNotFound) {
		t.Errorf("creating for a missing tenant: %v, want ErrNotFound", err)
	}

	if err := s.DeleteDashboard(ctx, "acme", created.ID); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"get":    func() error { _, err := s.GetDashboard(ctx, "acme", created.ID); return err }(),
		"update": func() error { _, err := s.UpdateDashboard(ctx, "acme", created.ID, updated); return err }(),
		"delete": s.DeleteDashboard(ctx, "acme", created.ID),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s after delete: %v, want ErrNotFound", name, err)
		}
	}
	if n := db.count(t, "SELECT count(*) FROM widgets"); n != len(sampleDashboard("").Widgets) {
		t.Errorf("%d widget rows after the delete, want only the other dashboard's", n)
	}
}

func testDashboardValidation(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	tooMany := make([]Widget, MaxWidgets+1)
	for i := range tooMany {
		tooMany[i] = widget(fmt.Sprintf("w%d", i), WidgetBar, `{}`)
	}
	cases := []struct {
		name       string
		edit       func(*DashboardSpec)
		wantFields []string
	}{
		{"valid", func(*DashboardSpec) {}, nil},
		{"no name", func(d *DashboardSpec) { d.Name = "" }, []string{"name"}},
		{"name with newline", func(d *DashboardSpec) { d.Name = "a\nb" }, []string{"name"}},
		{"long title", func(d *DashboardSpec) { d.Title = strings.Repeat("x", 201) }, []string{"title"}},
		{"bad times", func(d *DashboardSpec) { d.TimeFrom, d.TimeTo = "yesterday", "now-1y" }, []string{"timeFrom", "timeTo"}},
		{"same times", func(d *DashboardSpec) { d.TimeFrom, d.TimeTo = "now", "now" }, []string{"timeTo"}},
		{"absolute times", func(d *DashboardSpec) { d.TimeFrom, d.TimeTo = "2024-01-01T00:00:00Z", "2024-02-01T00:00:00+01:00" }, nil},
		{"refresh", func(d *DashboardSpec) { d.RefreshSeconds = 5 }, []string{"refreshSeconds"}},
		{"widget type", func(d *DashboardSpec) { d.Widgets[1].Type = "gauge" }, []string{"widgets[1].type"}},
		{"widget query missing", func(d *DashboardSpec) { d.Widgets[0].Query = nil }, []string{"widgets[0].query"}},
		{"widget query not an object", func(d *DashboardSpec) { d.Widgets[0].Query = json.RawMessage(`[1]`) }, []string{"widgets[0].query"}},
		{"widget layout not JSON", func(d *DashboardSpec) { d.Widgets[2].Layout = json.RawMessage(`{`) }, []string{"widgets[2].layout"}},
		{"widget keys", func(d *DashboardSpec) { d.Widgets[1].Key = d.Widgets[0].Key; d.Widgets[2].Key = "Not_A_Label" },
			[]string{"widgets[1].key", "widgets[2].key"}},
		{"too many widgets", func(d *DashboardSpec) { d.Widgets = tooMany }, []string{"widgets"}},
	}
	for i, c := range cases {
		spec := sampleDashboard(fmt.Sprintf("d%d", i))
		spec.Widgets = slices.Clone(spec.Widgets)
		c.edit(&spec)
		_, err := db.store.CreateDashboard(ctx, "acme", spec)
		var invalidErr *InvalidError
		if c.wantFields == nil {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.As(err, &invalidErr) {
			t.Errorf("%s: %v, want an InvalidError", c.name, err)
			continue
		}
		var got []string
		for _, e := range invalidErr.Errs {
			got = append(got, e.Field)
		}
		if strings.Join(got, ",") != strings.Join(c.wantFields, ",") {
			t.Errorf("%s: invalid fields %v, want %v", c.name, got, c.wantFields)
		}
	}
	if n := db.count(t, "SELECT count(*) FROM dashboards"); n != 2 {
		t.Errorf("%d dashboards stored, want the 2 valid ones", n)
	}
}

// listAll pages through list and returns every name served, failing on a page larger
// than limit.
func listAll(t *testing.T, limit int, list func(ListOptions) (names []string, next string, err error)) (names []string, pages int) {
	t.Helper()
	cursor := ""
	for {
		page, next, err := list(ListOptions{Limit: limit, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > limit {
			t.Fatalf("page of %d items, limit %d", len(page), limit)
		}
		names = append(names, page...)
		pages++
		if next == "" {
			return names, pages
		}
		if pages > 1000 {
			t.Fatal("pagination does not end")
		}
		cursor = next
	}
}

func dashboardNames(t *testing.T, s *Store, tenantID string) func(ListOptions) ([]string, string, error) {
	return func(opts ListOptions) ([]string, string, error) {
		page, err := s.ListDashboards(ctxFor(t), tenantID, opts)
		var names []string
		for _, d := range page.Items {
			if d.TenantID != tenantID || d.Widgets != nil {
				t.Errorf("listed %+v for tenant %s", d, tenantID)
			}
			names = append(names, d.Name)
		}
		return names, page.Next, err
	}
}

func testDashboardPagination(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	db.tenant(t, "globex")
	var want []string
	for i := range 23 {
		name := fmt.Sprintf("dash-%02d", (i*7)%23) // created out of order
		want = append(want, name)
		if _, err := db.store.CreateDashboard(ctx, "acme", DashboardSpec{Name: name}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.store.CreateDashboard(ctx, "globex", DashboardSpec{Name: "g-" + name}); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(want)

	cases := []struct {
		limit     int
		wantPages int
	}{{1, 23}, {5, 5}, {22, 2}, {23, 1}, {24, 1}}
	for _, c := range cases {
		got, pages := listAll(t, c.limit, dashboardNames(t, db.store, "acme"))
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: listed %v, want %v", c.limit, got, want)
		}
		if pages != c.wantPages {
			t.Errorf("limit %d: %d pages, want %d", c.limit, pages, c.wantPages)
		}
	}

	// Rows created and deleted between pages neither repeat nor hide the others.
	page1, err := db.store.ListDashboards(ctx, "acme", ListOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.store.DeleteDashboard(ctx, "acme", page1.Items[9].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.store.CreateDashboard(ctx, "acme", DashboardSpec{Name: "dash-00a"}); err != nil {
		t.Fatal(err)
	}
	rest, _ := listAll(t, 10, func(opts ListOptions) ([]string, string, error) {
		if opts.Cursor == "" {
			opts.Cursor = page1.Next
		}
		return dashboardNames(t, db.store, "acme")(opts)
	})
	if !slices.Equal(rest, want[10:]) {
		t.Errorf("after changes between pages: %v, want %v", rest, want[10:])
	}

	for _, bad := range []string{"!!", "=", "a b"} {
		if _, err := db.store.ListDashboards(ctx, "acme", ListOptions{Cursor: bad}); !errors.Is(err, ErrInvalidCursor) {
			t.Errorf("cursor %q: %v, want ErrInvalidCursor", bad, err)
		}
	}
	for _, c := range []struct{ in, want int }{{0, DefaultPageSize}, {-3, DefaultPageSize}, {7, 7}, {MaxPageSize + 1, MaxPageSize}, {1 << 30, MaxPageSize}} {
		if got := (ListOptions{Limit: c.in}).limit(); got != c.want {
			t.Errorf("limit(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}

func testDashboardIsolation(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	db.tenant(t, "globex")
	s := db.store

	public := sampleDashboard("shared")
	public.Public = true
	theirs, err := s.CreateDashboard(ctx, "globex", public)
	if err != nil {
		t.Fatal(err)
	}
	managed, err := s.SyncDashboard(ctx, "globex", "globex/ops", sampleDashboard("ops"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateDashboard(ctx, "acme", sampleDashboard("mine")); err != nil {
		t.Fatal(err)
	}
	before := db.count(t, "SELECT count(*) FROM dashboards WHERE tenant_id = 'globex'")

	// Every call acme can make with globex's ids, and with ids nobody has.
	ids := map[string]string{
		"globex's dashboard": theirs.ID,
		"globex's managed":   managed.ID,
		"guessed uuid":       "8d2a1b6e-3c4f-4a5b-9c8d-7e6f5a4b3c2d",
		"not a uuid":         "1 OR 1=1",
		"empty":              "",
	}
	for what, id := range ids {
		calls := map[string]error{
			"get":    func() error { _, err := s.GetDashboard(ctx, "acme", id); return err }(),
			"update": func() error { _, err := s.UpdateDashboard(ctx, "acme", id, sampleDashboard("stolen")); return err }(),
			"delete": s.DeleteDashboard(ctx, "acme", id),
			"rotate": func() error { _, err := s.RotateDashboardShareToken(ctx, "acme", id); return err }(),
		}
		for call, err := range calls {
			var managedErr *ManagedError
			if !errors.Is(err, ErrNotFound) || errors.As(err, &managedErr) {
				t.Errorf("acme %s of %s: %v, want ErrNotFound and nothing more", call, what, err)
			}
		}
	}
	// Syncing an object of the same name for acme makes acme's own row.
	mine, err := s.SyncDashboard(ctx, "acme", "globex/ops", sampleDashboard("ops"))
	if err != nil || mine.ID == managed.ID {
		t.Errorf("acme's sync of globex/ops: %+v, %v; want a row of acme's own", mine, err)
	}
	if err := s.DeleteManagedDashboard(ctx, "acme", "globex/ops"); err != nil {
		t.Fatal(err)
	}

	names, _ := listAll(t, 1, dashboardNames(t, s, "acme"))
	if !slices.Equal(names, []string{"mine"}) {
		t.Errorf("acme lists %v, want only its own", names)
	}
	// globex's cursor means nothing more than a name to acme's list.
	gPage, err := s.ListDashboards(ctx, "globex", ListOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if page, err := s.ListDashboards(ctx, "acme", ListOptions{Cursor: gPage.Next}); err != nil {
		t.Errorf("acme's list from globex's cursor: %v", err)
	} else {
		for _, d := range page.Items {
			if d.TenantID != "acme" {
				t.Errorf("acme's list from globex's cursor serves %+v", d)
			}
		}
	}
	if page, err := s.ListDashboards(ctx, "acme", ListOptions{Cursor: encodeCursor("a")}); err != nil || len(page.Items) != 1 || page.Items[0].Name != "mine" {
		t.Errorf("acme's list after \"a\": %+v, %v; want its own dashboard only", page, err)
	}

	if n := db.count(t, "SELECT count(*) FROM dashboards WHERE tenant_id = 'globex'"); n != before {
		t.Errorf("globex has %d dashboards after acme's attempts, want %d", n, before)
	}
	got, err := s.GetDashboard(ctx, "globex", theirs.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkDashboard(t, "globex's dashboard after acme's attempts", got, "globex", public)
	if got.Version != 1 {
		t.Errorf("globex's dashboard was written: version %d", got.Version)
	}

	// The share token opens globex's dashboard, as globex's: only through the share lookup.
	shared, err := s.GetDashboardByShareToken(ctx, theirs.ShareToken)
	if err != nil || shared.ID != theirs.ID || shared.TenantID != "globex" {
		t.Errorf("share lookup: %+v, %v; want globex's dashboard", shared, err)
	}
	if _, err := s.GetDashboard(ctx, "acme", shared.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("acme get of the shared dashboard's id: %v, want ErrNotFound", err)
	}
}

func testShareTokens(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	s := db.store

	private, err := s.CreateDashboard(ctx, "acme", sampleDashboard("private"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateDashboardShareToken(ctx, "acme", private.ID); !errors.Is(err, ErrNotPublic) {
		t.Errorf("rotating the token of a private dashboard: %v, want ErrNotPublic", err)
	}

	spec := sampleDashboard("public")
	spec.Public = true
	d, err := s.CreateDashboard(ctx, "acme", spec)
	if err != nil {
		t.Fatal(err)
	}
	first := d.ShareToken
	if len(first) != 43 {
		t.Fatalf("share token %q: want 43 base64url characters (32 bytes)", first)
	}
	if again, _ := s.GetDashboard(ctx, "acme", d.ID); again.ShareToken != "" {
		t.Error("GetDashboard returned the share token")
	}

	opens := func(token string) bool {
		t.Helper()
		got, err := s.GetDashboardByShareToken(ctx, token)
		switch {
		case errors.Is(err, ErrNotFound):
			return false
		case err != nil:
			t.Fatal(err)
		}
		if got.ID != d.ID || len(got.Widgets) != len(spec.Widgets) {
			t.Errorf("token opens %+v, want dashboard %s with its widgets", got, d.ID)
		}
		return true
	}
	tokens := []string{first}
	steps := []struct {
		name     string
		do       func() (string, error) // returns a new token, if one was minted
		wantOpen []bool                 // for each token so far, and the new one
	}{
		{"created", func() (string, error) { return "", nil }, []bool{true}},
		{"updated, still public", func() (string, error) {
			up, err := s.UpdateDashboard(ctx, "acme", d.ID, spec)
			return up.ShareToken, err
		}, []bool{true}},
		{"rotated", func() (string, error) { return s.RotateDashboardShareToken(ctx, "acme", d.ID) }, []bool{false, true}},
		{"made private", func() (string, error) {
			p := spec
			p.Public = false
			up, err := s.UpdateDashboard(ctx, "acme", d.ID, p)
			return up.ShareToken, err
		}, []bool{false, false}},
		{"public again", func() (string, error) {
			up, err := s.UpdateDashboard(ctx, "acme", d.ID, spec)
			return up.ShareToken, err
		}, []bool{false, false, true}},
	}
	for _, step := range steps {
		token, err := step.do()
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if token != "" {
			tokens = append(tokens, token)
		}
		if len(tokens) != len(step.wantOpen) {
			t.Fatalf("%s: %d tokens so far, want %d", step.name, len(tokens), len(step.wantOpen))
		}
		for i, tok := range tokens {
			if got := opens(tok); got != step.wantOpen[i] {
				t.Errorf("%s: token %d opens = %v, want %v", step.name, i, got, step.wantOpen[i])
			}
		}
	}
	for _, bad := range []string{"", "x", strings.Repeat("A", 43), tokens[len(tokens)-1] + "A"} {
		if opens(bad) {
			t.Errorf("token %q opens a dashboard", bad)
		}
	}

	// The store keeps hashes only: no token appears in any row of any table.
	for _, tok := range tokens {
		for _, table := range publicTables(t, db) {
			q := fmt.Sprintf("SELECT count(*) FROM %s r WHERE strpos(r::text, $1) > 0", pgx.Identifier{table}.Sanitize())
			if n := db.count(t, q, tok[10:30]); n != 0 {
				t.Errorf("table %s holds (part of) a share token in %d rows", table, n)
			}
		}
	}

	// A tenant being deleted shares nothing.
	if err := s.MarkTenantDeleted(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if opens(tokens[len(tokens)-1]) {
		t.Error("a dashboard of a tenant being deleted opens by share token")
	}
}

func publicTables(t *testing.T, db testDB) []string {
	t.Helper()
	rows, err := db.sql.Query(ctxFor(t), "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func testDashboardSync(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	s := db.store
	const owner = "acme-ns/overview"

	base := sampleDashboard("overview")
	respaced := base
	respaced.Widgets = slices.Clone(base.Widgets)
	respaced.Widgets[0].Query = json.RawMessage("{ \"pipeline\": \"web\",\n \"metric\": \"signups\", \"interval\": \"hour\" }")
	changed := base
	changed.Widgets = base.Widgets[:2]
	public := changed
	public.Public = true

	steps := []struct {
		name      string
		spec      DashboardSpec
		wantWrote bool
		wantToken bool
	}{
		{"first sync creates", base, true, false},
		{"same spec", base, false, false},
		{"same spec, JSON spaced differently", respaced, false, false},
		{"a widget removed", changed, true, false},
		{"made public", public, true, true},
		{"public, unchanged", public, false, false},
	}
	var last Dashboard
	for i, step := range steps {
		time.Sleep(5 * time.Millisecond) // let now() move between transactions
		res, err := s.SyncDashboard(ctx, "acme", owner, step.spec)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if res.Wrote != step.wantWrote || (res.ShareToken != "") != step.wantToken {
			t.Errorf("%s: %+v, want wrote %v, token %v", step.name, res, step.wantWrote, step.wantToken)
		}
		got, err := s.GetDashboard(ctx, "acme", res.ID)
		if err != nil {
			t.Fatal(err)
		}
		checkDashboard(t, step.name, got, "acme", step.spec)
		if got.ManagedBy != owner {
			t.Errorf("%s: managed by %q", step.name, got.ManagedBy)
		}
		if i > 0 {
			moved := got.Version != last.Version || !got.UpdatedAt.Equal(last.UpdatedAt)
			if moved != step.wantWrote || (step.wantWrote && got.Version != last.Version+1) {
				t.Errorf("%s: version %d -> %d, updated_at %v -> %v; want a write %v",
					step.name, last.Version, got.Version, last.UpdatedAt, got.UpdatedAt, step.wantWrote)
			}
			if got.ID != last.ID {
				t.Errorf("%s: the row changed id", step.name)
			}
		}
		if res.ShareToken != "" {
			if shared, err := s.GetDashboardByShareToken(ctx, res.ShareToken); err != nil || shared.ID != res.ID {
				t.Errorf("%s: the synced share token opens %+v, %v", step.name, shared, err)
			}
		}
		last = got
	}
	if n := db.count(t, "SELECT count(*) FROM dashboards"); n != 1 {
		t.Errorf("%d dashboards after syncs of one object, want 1", n)
	}

	// The API cannot change what the object owns, and is told which object to change.
	for call, err := range map[string]error{
		"update": func() error { _, err := s.UpdateDashboard(ctx, "acme", last.ID, base); return err }(),
		"delete": s.DeleteDashboard(ctx, "acme", last.ID),
		"rotate": func() error { _, err := s.RotateDashboardShareToken(ctx, "acme", last.ID); return err }(),
	} {
		var managedErr *ManagedError
		if !errors.As(err, &managedErr) || managedErr.ManagedBy != owner || managedErr.Kind != "Dashboard" {
			t.Errorf("API %s of a managed dashboard: %v, want a ManagedError naming %s", call, err, owner)
		} else if !strings.Contains(err.Error(), owner) {
			t.Errorf("API %s: %q does not name the object", call, err)
		}
	}
	if got, _ := s.GetDashboard(ctx, "acme", last.ID); got.Version != last.Version {
		t.Error("a refused API call wrote the managed dashboard")
	}

	// Another object, or the API, cannot take a name already used.
	if _, err := s.CreateDashboard(ctx, "acme", sampleDashboard("overview")); !errors.Is(err, ErrNameTaken) {
		t.Errorf("API create of a synced name: %v, want ErrNameTaken", err)
	}
	if _, err := s.SyncDashboard(ctx, "acme", "acme-ns/other", sampleDashboard("overview")); !errors.Is(err, ErrNameTaken) {
		t.Errorf("a second object with the same name: %v, want ErrNameTaken", err)
	}
	for _, bad := range []string{"", "no-slash", "ns/", "/name", "NS/name"} {
		var invalidErr *InvalidError
		if _, err := s.SyncDashboard(ctx, "acme", bad, base); !errors.As(err, &invalidErr) {
			t.Errorf("managedBy %q: %v, want an InvalidError", bad, err)
		}
	}
	if _, err := s.SyncDashboard(ctx, "nobody", owner, base); !errors.Is(err, ErrNotFound) {
		t.Errorf("sync for a missing tenant: %v, want ErrNotFound", err)
	}

	for range 2 {
		if err := s.DeleteManagedDashboard(ctx, "acme", owner); err != nil {
			t.Fatal(err)
		}
	}
	if n := db.count(t, "SELECT count(*) FROM dashboards"); n != 0 {
		t.Errorf("%d dashboards after DeleteManagedDashboard, want 0", n)
	}
}
