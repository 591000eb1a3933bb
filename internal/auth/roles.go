package auth

import (
	"fmt"
	"strings"

	"github.com/shoal-dev/shoal/internal/metastore"
)

// Role is a user's role in a tenant. Each role may do everything the roles below it may.
type Role string

// Roles, highest first.
const (
	RoleOwner  Role = metastore.RoleOwner
	RoleAdmin  Role = metastore.RoleAdmin
	RoleEditor Role = metastore.RoleEditor
	RoleViewer Role = metastore.RoleViewer
)

// rank orders roles; 0 is not a role.
func (r Role) rank() int {
	switch r {
	case RoleOwner:
		return 4
	case RoleAdmin:
		return 3
	case RoleEditor:
		return 2
	case RoleViewer:
		return 1
	}
	return 0
}

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// AtLeast reports whether r is other or above it. An invalid role is below everything.
func (r Role) AtLeast(other Role) bool { return r.Valid() && r.rank() >= other.rank() }

// ParseRole accepts the four role names, as stored and as the API takes them.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !r.Valid() {
		return "", fmt.Errorf("role %q is not one of owner, admin, editor, viewer", s)
	}
	return r, nil
}

// Action is something the web API does on a request's behalf.
type Action string

// Actions. Each endpoint checks one.
const (
	ActionReadMetrics       Action = "metrics.read"
	ActionReadDashboards    Action = "dashboards.read"
	ActionWriteDashboards   Action = "dashboards.write"
	ActionReadDataSources   Action = "datasources.read"
	ActionManageDataSources Action = "datasources.manage"
	ActionReadAlerts        Action = "alerts.read"
	ActionManageAlertRules  Action = "alerts.manage"
	ActionManageOwnTokens   Action = "tokens.manage-own"
	ActionReadUsers         Action = "users.read"
	ActionManageUsers       Action = "users.manage"
	ActionManageOwners      Action = "owners.manage"
	ActionReadSubscription  Action = "subscription.read"
)

// Permission is one row of the permission table.
type Permission struct {
	Action Action
	// What the action covers, for the docs.
	Description string
	// MinRole is the lowest role allowed; every role above it is allowed too.
	MinRole Role
	// BlockedWhenSuspended actions are refused while the tenant is suspended (typically
	// unpaid): they change what the platform runs or stores for the tenant. Reads stay
	// allowed so the tenant can see its data and its subscription, and managing users and
	// tokens stays allowed so a leaked token can always be revoked.
	BlockedWhenSuspended bool
}

// Permissions returns the permission table, in the order the docs show it.
func Permissions() []Permission {
	return []Permission{
		{ActionReadMetrics, "Query metrics and raw events", RoleViewer, false},
		{ActionReadDashboards, "List and view dashboards", RoleViewer, false},
		{ActionWriteDashboards, "Create, update and delete dashboards", RoleEditor, true},
		{ActionReadDataSources, "List and view data sources (never their credentials)", RoleEditor, false},
		{ActionManageDataSources, "Create and delete data sources", RoleAdmin, true},
		{ActionReadAlerts, "View alert rules and active and recent alerts", RoleViewer, false},
		{ActionManageAlertRules, "Create, update and delete alert rules", RoleEditor, true},
		{ActionManageOwnTokens, "Create, list and revoke one's own personal API tokens", RoleViewer, false},
		{ActionReadUsers, "List the tenant's users and their roles", RoleAdmin, false},
		{ActionManageUsers, "Change the roles of users other than owners, up to admin", RoleAdmin, false},
		{ActionManageOwners, "Grant or take away the owner role (never from the last owner)", RoleOwner, false},
		{ActionReadSubscription, "View the plan, subscription state, limits and usage", RoleAdmin, false},
	}
}

func permission(a Action) (Permission, bool) {
	for _, p := range Permissions() {
		if p.Action == a {
			return p, true
		}
	}
	return Permission{}, false
}

// Allowed reports whether the role may perform the action. Unknown roles and actions are
// never allowed. It does not know about suspension: Authorize does.
func Allowed(role Role, action Action) bool {
	p, ok := permission(action)
	return ok && role.AtLeast(p.MinRole)
}

// Authorize checks that the principal may perform the action now: its role allows it,
// and its tenant is not suspended if the action is blocked while suspended. The errors
// are 403s (ErrForbidden, ErrTenantSuspended).
func Authorize(p Principal, action Action) error {
	perm, ok := permission(action)
	if !ok || !p.Role.AtLeast(perm.MinRole) {
		return &Error{Reason: ReasonForbidden, Err: fmt.Errorf("role %q may not %s", p.Role, action)}
	}
	if p.TenantSuspended && perm.BlockedWhenSuspended {
		return &Error{Reason: ReasonTenantSuspended, Err: fmt.Errorf("tenant %q is suspended (%s): %s refused", p.TenantID, p.TenantSuspendedReason, action)}
	}
	return nil
}

// AuthorizeRoleChange checks that the principal may move a user from role from to role
// to: admins manage roles below owner, and only owners grant or take away the owner
// role. The store enforces separately that the last owner keeps the role.
func AuthorizeRoleChange(p Principal, from, to Role) error {
	if !from.Valid() || !to.Valid() {
		return &Error{Reason: ReasonForbidden, Err: fmt.Errorf("role change %q to %q: not roles", from, to)}
	}
	action := ActionManageUsers
	if from == RoleOwner || to == RoleOwner {
		action = ActionManageOwners
	}
	return Authorize(p, action)
}

// PermissionsMarkdown renders the permission table as Markdown, one row per action and a
// column per role, for the docs.
func PermissionsMarkdown() string {
	roles := []Role{RoleOwner, RoleAdmin, RoleEditor, RoleViewer}
	var b strings.Builder
	b.WriteString("| Action | Description |")
	for _, r := range roles {
		fmt.Fprintf(&b, " %s |", r)
	}
	b.WriteString(" While suspended |\n|---|---|")
	for range roles {
		b.WriteString(":---:|")
	}
	b.WriteString(":---:|\n")
	for _, p := range Permissions() {
		fmt.Fprintf(&b, "| `%s` | %s |", p.Action, p.Description)
		for _, r := range roles {
			mark := " "
			if Allowed(r, p.Action) {
				mark = "✓"
			}
			fmt.Fprintf(&b, " %s |", mark)
		}
		suspended := "allowed"
		if p.BlockedWhenSuspended {
			suspended = "refused"
		}
		fmt.Fprintf(&b, " %s |\n", suspended)
	}
	return b.String()
}
