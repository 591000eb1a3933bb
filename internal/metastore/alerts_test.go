package metastore

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/internal/testbackends"
)

// TestAlerts runs the alert cases against one server, each in its own database.
func TestAlerts(t *testing.T) {
	pg := testbackends.StartPostgres(t)
	t.Run("Rules", func(t *testing.T) { testAlertRules(t, pg) })
	t.Run("FireResolve", func(t *testing.T) { testFireResolve(t, pg) })
	t.Run("Isolation", func(t *testing.T) { testAlertIsolation(t, pg) })
	t.Run("EnabledRules", func(t *testing.T) { testEnabledAlertRules(t, pg) })
}

func sampleRule(name string) AlertRuleSpec {
	return AlertRuleSpec{
		Name:      name,
		Query:     json.RawMessage(`{"pipeline":"web","metric":"errors"}`),
		Condition: AlertCondition{Operator: OpGreater, Threshold: 100, Window: metav1.Duration{Duration: 5 * time.Minute}},
		Enabled:   true,
	}
}

func testAlertRules(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	s := db.store

	spec := sampleRule("errors")
	created, err := s.CreateAlertRule(ctx, "acme", spec)
	if err != nil {
		t.Fatal(err)
	}
	if created.Name != spec.Name || created.Condition != spec.Condition || !created.Enabled || !sameJSON(t, created.Query, spec.Query) || created.TenantID != "acme" {
		t.Errorf("created %+v", created)
	}
	updated := spec
	updated.Name = "errors-high"
	updated.Condition = AlertCondition{Operator: OpLessOrEqual, Threshold: -0.5, Window: metav1.Duration{Duration: time.Hour}}
	updated.Enabled = false
	got, err := s.UpdateAlertRule(ctx, "acme", created.ID, updated)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != updated.Name || got.Condition != updated.Condition || got.Enabled || got.ID != created.ID {
		t.Errorf("updated %+v, want %+v", got, updated)
	}
	if again, err := s.GetAlertRule(ctx, "acme", created.ID); err != nil || again.Condition != updated.Condition {
		t.Errorf("Get after update: %+v, %v", again, err)
	}

	if _, err := s.CreateAlertRule(ctx, "acme", updated); !errors.Is(err, ErrNameTaken) {
		t.Errorf("a taken name: %v, want ErrNameTaken", err)
	}
	if _, err := s.CreateAlertRule(ctx, "nobody", spec); !errors.Is(err, ErrNotFound) {
		t.Errorf("a missing tenant: %v, want ErrNotFound", err)
	}

	cases := []struct {
		name       string
		edit       func(*AlertRuleSpec)
		wantFields []string
	}{
		{"no name", func(r *AlertRuleSpec) { r.Name = "" }, []string{"name"}},
		{"no query", func(r *AlertRuleSpec) { r.Query = nil }, []string{"query"}},
		{"query not an object", func(r *AlertRuleSpec) { r.Query = json.RawMessage(`"x"`) }, []string{"query"}},
		{"operator", func(r *AlertRuleSpec) { r.Condition.Operator = ">" }, []string{"condition.operator"}},
		{"threshold", func(r *AlertRuleSpec) { r.Condition.Threshold = math.Inf(1) }, []string{"condition.threshold"}},
		{"short window", func(r *AlertRuleSpec) { r.Condition.Window.Duration = time.Second }, []string{"condition.window"}},
		{"long window", func(r *AlertRuleSpec) { r.Condition.Window.Duration = 8 * 24 * time.Hour }, []string{"condition.window"}},
	}
	for i, c := range cases {
		spec := sampleRule(fmt.Sprintf("r%d", i))
		c.edit(&spec)
		_, err := s.CreateAlertRule(ctx, "acme", spec)
		var invalidErr *InvalidError
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

	for i := range 5 {
		if _, err := s.CreateAlertRule(ctx, "acme", sampleRule(fmt.Sprintf("rule-%d", 4-i))); err != nil {
			t.Fatal(err)
		}
	}
	names, pages := listAll(t, 2, func(opts ListOptions) ([]string, string, error) {
		page, err := s.ListAlertRules(ctx, "acme", opts)
		var names []string
		for _, r := range page.Items {
			names = append(names, r.Name)
		}
		return names, page.Next, err
	})
	if want := []string{"errors-high", "rule-0", "rule-1", "rule-2", "rule-3", "rule-4"}; !slices.Equal(names, want) || pages != 3 {
		t.Errorf("listed %v in %d pages, want %v in 3", names, pages, want)
	}

	if err := s.DeleteAlertRule(ctx, "acme", created.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAlertRule(ctx, "acme", created.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting twice: %v, want ErrNotFound", err)
	}
	if _, err := s.UpdateAlertRule(ctx, "acme", created.ID, spec); !errors.Is(err, ErrNotFound) {
		t.Errorf("updating a deleted rule: %v, want ErrNotFound", err)
	}
}

func testFireResolve(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	s := db.store
	rule, err := s.CreateAlertRule(ctx, "acme", sampleRule("errors"))
	if err != nil {
		t.Fatal(err)
	}

	fire := func(v float64) func() (Alert, bool, error) {
		return func() (Alert, bool, error) { return s.FireAlert(ctx, rule, v) }
	}
	resolve := func() (Alert, bool, error) { return s.ResolveAlert(ctx, rule) }
	// Each step: the call, whether it changed something, which alert it returns (an index
	// into the alerts seen, -1 for none, len for a new one) and its state.
	steps := []struct {
		name      string
		call      func() (Alert, bool, error)
		wantDid   bool
		wantAlert int
		wantState string
		wantValue float64
	}{
		{"fire", fire(150), true, 0, AlertFiring, 150},
		{"fire while firing", fire(170), false, 0, AlertFiring, 150},
		{"fire again", fire(190), false, 0, AlertFiring, 150},
		{"resolve", resolve, true, 0, AlertResolved, 150},
		{"resolve again", resolve, false, -1, "", 0},
		{"fire anew", fire(120), true, 1, AlertFiring, 120},
		{"resolve the new one", resolve, true, 1, AlertResolved, 120},
	}
	var ids []string
	for _, step := range steps {
		alert, did, err := step.call()
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if did != step.wantDid {
			t.Errorf("%s: changed = %v, want %v", step.name, did, step.wantDid)
		}
		if step.wantAlert < 0 {
			if alert.ID != "" {
				t.Errorf("%s: returned %+v, want none", step.name, alert)
			}
			continue
		}
		if step.wantAlert == len(ids) {
			ids = append(ids, alert.ID)
		}
		if alert.ID != ids[step.wantAlert] || alert.State != step.wantState || alert.Value != step.wantValue ||
			alert.RuleID != rule.ID || alert.RuleName != "errors" || alert.TenantID != "acme" ||
			(alert.ResolvedAt != nil) != (step.wantState == AlertResolved) {
			t.Errorf("%s: %+v, want alert %d %s with value %v", step.name, alert, step.wantAlert, step.wantState, step.wantValue)
		}
	}
	if n := db.count(t, "SELECT count(*) FROM alerts"); n != 2 {
		t.Errorf("%d alert rows, want 2", n)
	}

	// One firing at a time, even when the evaluator races itself.
	errs := make(chan error, 8)
	fired := make(chan bool, 8)
	for range 8 {
		go func() {
			_, did, err := s.FireAlert(ctx, rule, 1)
			errs <- err
			fired <- did
		}()
	}
	firedCount := 0
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
		if <-fired {
			firedCount++
		}
	}
	if firedCount != 1 || db.count(t, "SELECT count(*) FROM alerts WHERE state = 'firing'") != 1 {
		t.Errorf("8 concurrent fires: %d reported firing, want 1", firedCount)
	}

	// Active first, then recent, newest first; old resolved alerts and the limit bound it.
	db.exec(t, "UPDATE alerts SET fired_at = fired_at - interval '30 days', resolved_at = resolved_at - interval '30 days' WHERE id = $1", ids[0])
	list, err := s.ListAlerts(ctx, "acme", AlertListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].State != AlertFiring || list[1].ID != ids[1] {
		t.Errorf("ListAlerts: %+v, want the firing alert then the recent resolved one", list)
	}
	if list, _ := s.ListAlerts(ctx, "acme", AlertListOptions{ResolvedSince: time.Now().Add(-60 * 24 * time.Hour)}); len(list) != 3 {
		t.Errorf("ListAlerts over 60 days: %d alerts, want 3", len(list))
	}
	if list, _ := s.ListAlerts(ctx, "acme", AlertListOptions{Limit: 1}); len(list) != 1 || list[0].State != AlertFiring {
		t.Errorf("ListAlerts limit 1: %+v, want the firing alert", list)
	}

	// Disabling the rule resolves its alert; a disabled rule does not fire.
	disabled := sampleRule("errors")
	disabled.Enabled = false
	if _, err := s.UpdateAlertRule(ctx, "acme", rule.ID, disabled); err != nil {
		t.Fatal(err)
	}
	if n := db.count(t, "SELECT count(*) FROM alerts WHERE state = 'firing'"); n != 0 {
		t.Errorf("%d firing alerts after the rule was disabled, want 0", n)
	}
	if _, _, err := s.FireAlert(ctx, rule, 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("firing a disabled rule: %v, want ErrNotFound", err)
	}
}

func testAlertIsolation(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	db.tenant(t, "globex")
	s := db.store
	theirs, err := s.CreateAlertRule(ctx, "globex", sampleRule("errors"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.FireAlert(ctx, theirs, 500); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAlertRule(ctx, "acme", sampleRule("mine")); err != nil {
		t.Fatal(err)
	}

	for what, id := range map[string]string{
		"globex's rule": theirs.ID,
		"guessed uuid":  "8d2a1b6e-3c4f-4a5b-9c8d-7e6f5a4b3c2d",
		"not a uuid":    "x' OR 1=1 --",
	} {
		forged := theirs
		forged.ID, forged.TenantID = id, "acme"
		for call, err := range map[string]error{
			"get":    func() error { _, err := s.GetAlertRule(ctx, "acme", id); return err }(),
			"update": func() error { _, err := s.UpdateAlertRule(ctx, "acme", id, sampleRule("stolen")); return err }(),
			"delete": s.DeleteAlertRule(ctx, "acme", id),
			"fire":   func() error { _, _, err := s.FireAlert(ctx, forged, 1); return err }(),
		} {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("acme %s of %s: %v, want ErrNotFound", call, what, err)
			}
		}
		if _, resolved, err := s.ResolveAlert(ctx, forged); resolved || err != nil {
			t.Errorf("acme resolve of %s: resolved %v, %v; want nothing done", what, resolved, err)
		}
	}
	page, err := s.ListAlertRules(ctx, "acme", ListOptions{})
	if err != nil || len(page.Items) != 1 || page.Items[0].Name != "mine" {
		t.Errorf("acme lists rules %+v, %v", page.Items, err)
	}
	if list, err := s.ListAlerts(ctx, "acme", AlertListOptions{}); err != nil || len(list) != 0 {
		t.Errorf("acme lists alerts %+v, %v; want none", list, err)
	}
	list, err := s.ListAlerts(ctx, "globex", AlertListOptions{})
	if err != nil || len(list) != 1 || list[0].State != AlertFiring || list[0].Value != 500 {
		t.Errorf("globex's alerts after acme's attempts: %+v, %v", list, err)
	}
	if got, err := s.GetAlertRule(ctx, "globex", theirs.ID); err != nil || got.Name != "errors" {
		t.Errorf("globex's rule after acme's attempts: %+v, %v", got, err)
	}
}

func testEnabledAlertRules(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	s := db.store
	var want []string
	for _, tenant := range []string{"acme", "globex", "initech", "hooli"} {
		db.tenant(t, tenant)
		for i := range 4 {
			spec := sampleRule(fmt.Sprintf("r%d", i))
			spec.Enabled = i != 3
			r, err := s.CreateAlertRule(ctx, tenant, spec)
			if err != nil {
				t.Fatal(err)
			}
			if spec.Enabled && tenant != "initech" && tenant != "hooli" {
				want = append(want, tenant+"/"+r.Name)
			}
		}
	}
	if err := s.SetSuspended(ctx, "initech", true, "past_due"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkTenantDeleted(ctx, "hooli"); err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)

	for _, limit := range []int{1, 2, 5, 100} {
		got, _ := listAll(t, limit, func(opts ListOptions) ([]string, string, error) {
			page, err := s.ListEnabledAlertRules(ctx, opts)
			var names []string
			for _, r := range page.Items {
				if !r.Enabled {
					t.Errorf("listed disabled rule %+v", r)
				}
				names = append(names, r.TenantID+"/"+r.Name)
			}
			return names, page.Next, err
		})
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: listed %v, want %v", limit, got, want)
		}
	}
	if _, err := s.ListEnabledAlertRules(ctx, ListOptions{Cursor: encodeCursor("not-a-uuid")}); !errors.Is(err, ErrInvalidCursor) {
		t.Errorf("a bad cursor: %v, want ErrInvalidCursor", err)
	}
}

func TestAlertConditionBreached(t *testing.T) {
	cases := []struct {
		op    string
		value float64
		want  bool
	}{
		{OpGreater, 11, true}, {OpGreater, 10, false},
		{OpGreaterOrEqual, 10, true}, {OpGreaterOrEqual, 9.9, false},
		{OpLess, 9, true}, {OpLess, 10, false},
		{OpLessOrEqual, 10, true}, {OpLessOrEqual, 10.1, false},
		{OpEqual, 10, true}, {OpEqual, 10.5, false},
		{OpNotEqual, 10.5, true}, {OpNotEqual, 10, false},
		{"bogus", 1e9, false},
		{OpGreater, math.NaN(), false},
	}
	for _, c := range cases {
		cond := AlertCondition{Operator: c.op, Threshold: 10}
		if got := cond.Breached(c.value); got != c.want {
			t.Errorf("%v %s 10: %v, want %v", c.value, c.op, got, c.want)
		}
	}
}
