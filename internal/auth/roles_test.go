package auth

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestAllowed(t *testing.T) {
	// The expected table, written out independently of Permissions: o, a, e, v mark the
	// roles allowed.
	want := map[Action]string{
		ActionReadMetrics:       "oaev",
		ActionReadDashboards:    "oaev",
		ActionWriteDashboards:   "oae",
		ActionReadDataSources:   "oae",
		ActionManageDataSources: "oa",
		ActionReadAlerts:        "oaev",
		ActionManageAlertRules:  "oae",
		ActionManageOwnTokens:   "oaev",
		ActionReadUsers:         "oa",
		ActionManageUsers:       "oa",
		ActionManageOwners:      "o",
		ActionReadSubscription:  "oa",
	}
	letters := map[Role]string{RoleOwner: "o", RoleAdmin: "a", RoleEditor: "e", RoleViewer: "v"}
	if n := len(Permissions()); n != len(want) {
		t.Errorf("%d actions in the table, %d expected here", n, len(want))
	}
	for _, p := range Permissions() {
		if _, ok := want[p.Action]; !ok {
			t.Errorf("action %s is not in the expected table", p.Action)
		}
	}
	for action, allowed := range want {
		for role, letter := range letters {
			if got := Allowed(role, action); got != strings.Contains(allowed, letter) {
				t.Errorf("Allowed(%s, %s) = %v, want %v", role, action, got, !got)
			}
		}
		for _, bad := range []Role{"", "root", "Owner"} {
			if Allowed(bad, action) {
				t.Errorf("Allowed(%q, %s) = true for a role that does not exist", bad, action)
			}
		}
	}
	for role := range letters {
		if Allowed(role, "everything") {
			t.Errorf("Allowed(%s, an unknown action) = true", role)
		}
	}
}

func TestRoleOrder(t *testing.T) {
	order := []Role{RoleViewer, RoleEditor, RoleAdmin, RoleOwner}
	for i, r := range order {
		for j, other := range order {
			if got := r.AtLeast(other); got != (i >= j) {
				t.Errorf("%s.AtLeast(%s) = %v", r, other, got)
			}
		}
		if parsed, err := ParseRole(string(r)); err != nil || parsed != r {
			t.Errorf("ParseRole(%s) = %q, %v", r, parsed, err)
		}
	}
	for _, bad := range []string{"", "OWNER", "superuser"} {
		if _, err := ParseRole(bad); err == nil {
			t.Errorf("ParseRole(%q) succeeded", bad)
		}
	}
}

func TestAuthorize(t *testing.T) {
	cases := []struct {
		role      Role
		suspended bool
		action    Action
		want      error
	}{
		{RoleViewer, false, ActionReadMetrics, nil},
		{RoleViewer, false, ActionWriteDashboards, ErrForbidden},
		{RoleEditor, false, ActionWriteDashboards, nil},
		{RoleEditor, true, ActionWriteDashboards, ErrTenantSuspended},
		{RoleOwner, true, ActionManageDataSources, ErrTenantSuspended},
		{RoleOwner, true, ActionManageAlertRules, ErrTenantSuspended},
		{RoleViewer, true, ActionReadDashboards, nil},
		{RoleAdmin, true, ActionReadSubscription, nil},
		{RoleViewer, true, ActionManageOwnTokens, nil},
		{RoleAdmin, true, ActionManageUsers, nil},
		{RoleViewer, true, ActionManageDataSources, ErrForbidden}, // the role is checked first
		{"", false, ActionReadMetrics, ErrForbidden},
		{RoleOwner, false, "unknown", ErrForbidden},
	}
	for _, c := range cases {
		err := Authorize(Principal{TenantID: "acme", Role: c.role, TenantSuspended: c.suspended}, c.action)
		if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("Authorize(%s, suspended %v, %s) = %v, want %v", c.role, c.suspended, c.action, err, c.want)
		}
		if c.want != nil && !IsForbidden(err) {
			t.Errorf("Authorize(%s, %s): %v is not a 403", c.role, c.action, err)
		}
	}
}

func TestAuthorizeRoleChange(t *testing.T) {
	cases := []struct {
		actor    Role
		from, to Role
		allowed  bool
	}{
		{RoleOwner, RoleOwner, RoleAdmin, true},
		{RoleOwner, RoleViewer, RoleOwner, true},
		{RoleAdmin, RoleViewer, RoleAdmin, true},
		{RoleAdmin, RoleAdmin, RoleViewer, true},
		{RoleAdmin, RoleViewer, RoleOwner, false},
		{RoleAdmin, RoleOwner, RoleAdmin, false},
		{RoleEditor, RoleViewer, RoleEditor, false},
		{RoleViewer, RoleViewer, RoleViewer, false},
		{RoleOwner, RoleViewer, "root", false},
	}
	for _, c := range cases {
		err := AuthorizeRoleChange(Principal{Role: c.actor}, c.from, c.to)
		if (err == nil) != c.allowed {
			t.Errorf("%s moving a user from %s to %s: %v, want allowed=%v", c.actor, c.from, c.to, err, c.allowed)
		}
	}
}

// TestPermissionsDoc keeps the table in doc.go what PermissionsMarkdown generates.
func TestPermissionsDoc(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for line := range strings.SplitSeq(strings.TrimSuffix(PermissionsMarkdown(), "\n"), "\n") {
		lines = append(lines, "//\t"+line)
	}
	if !strings.Contains(string(doc), strings.Join(lines, "\n")+"\n") {
		t.Errorf("doc.go's permission table is not PermissionsMarkdown's; paste this:\n%s", strings.Join(lines, "\n"))
	}
	if n := strings.Count(PermissionsMarkdown(), "\n"); n != len(Permissions())+2 {
		t.Errorf("the Markdown table has %d lines, want a header, a rule and %d rows", n, len(Permissions()))
	}
}
