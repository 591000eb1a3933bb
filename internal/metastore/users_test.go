package metastore

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/shoal-dev/shoal/internal/testbackends"
)

// TestUsers runs the user cases against one server, each in its own database.
func TestUsers(t *testing.T) {
	pg := testbackends.StartPostgres(t)
	t.Run("ListUsers", func(t *testing.T) { testListUsers(t, pg) })
	t.Run("FindAndGet", func(t *testing.T) { testFindAndGetUser(t, pg) })
	t.Run("SetUserRole", func(t *testing.T) { testSetUserRole(t, pg) })
	t.Run("LastOwnerConcurrent", func(t *testing.T) { testLastOwnerConcurrent(t, pg) })
}

func (db testDB) user(t *testing.T, tenantID, email, role string) User {
	t.Helper()
	u, err := db.store.AddUser(ctxFor(t), tenantID, email, role)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func testListUsers(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	db.tenant(t, "globex")
	// Mixed case: the order is by lowercased email.
	emails := []string{"Dora@acme.test", "al@acme.test", "Bea@acme.test", "cy@acme.test", "eve@acme.test", "Fay@acme.test", "gus@acme.test"}
	for _, e := range emails {
		db.user(t, "acme", e, RoleViewer)
	}
	db.user(t, "globex", "zed@globex.test", RoleOwner)
	want := "al@acme.test Bea@acme.test cy@acme.test Dora@acme.test eve@acme.test Fay@acme.test gus@acme.test"

	for _, tc := range []struct {
		limit     int
		wantPages int
	}{
		{limit: 1, wantPages: 7},
		{limit: 3, wantPages: 3},
		{limit: 7, wantPages: 1},
		{limit: 0, wantPages: 1}, // the default page size
		{limit: 100000, wantPages: 1},
	} {
		t.Run(fmt.Sprint("limit ", tc.limit), func(t *testing.T) {
			var got []string
			cursor, pages := "", 0
			for {
				users, next, err := db.store.ListUsers(ctx, "acme", cursor, tc.limit)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if tc.limit > 0 && len(users) > tc.limit {
					t.Errorf("page %d has %d users, limit %d", pages, len(users), tc.limit)
				}
				for _, u := range users {
					if u.TenantID != "acme" {
						t.Errorf("user %s of tenant %s listed for acme", u.Email, u.TenantID)
					}
					got = append(got, u.Email)
				}
				if next == "" {
					break
				}
				if pages > 10 {
					t.Fatal("pagination does not end")
				}
				cursor = next
			}
			if strings.Join(got, " ") != want {
				t.Errorf("listed %v, want %s", got, want)
			}
			if pages != tc.wantPages {
				t.Errorf("%d pages, want %d", pages, tc.wantPages)
			}
		})
	}

	for _, bad := range []string{"x", "eyJlIjoiYSJ9", "%%%"} {
		if _, _, err := db.store.ListUsers(ctx, "acme", bad, 2); !errors.Is(err, ErrInvalidUserInput) {
			t.Errorf("cursor %q: %v, want ErrInvalidUserInput", bad, err)
		}
	}
	if users, next, err := db.store.ListUsers(ctx, "nobody", "", 10); err != nil || len(users) != 0 || next != "" {
		t.Errorf("users of a missing tenant: %v, %q, %v; want none", users, next, err)
	}
}

func testFindAndGetUser(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	db.tenant(t, "globex")
	ann := db.user(t, "acme", "Ann@Acme.test", RoleEditor)
	annGlobex := db.user(t, "globex", "ann@acme.test", RoleViewer)

	finds := []struct {
		tenant, email string
		wantID        string // "" wants ErrNotFound
	}{
		{"acme", "Ann@Acme.test", ann.ID},
		{"acme", "ann@acme.test", ann.ID},
		{"acme", " ANN@ACME.TEST ", ann.ID},
		{"globex", "ANN@acme.test", annGlobex.ID},
		{"acme", "bob@acme.test", ""},
		{"initech", "ann@acme.test", ""},
		{"acme", "", ""},
	}
	for _, f := range finds {
		u, err := db.store.FindUserByEmail(ctx, f.tenant, f.email)
		switch {
		case f.wantID == "" && !errors.Is(err, ErrNotFound):
			t.Errorf("FindUserByEmail(%s, %q) = %+v, %v; want ErrNotFound", f.tenant, f.email, u, err)
		case f.wantID != "" && (err != nil || u.ID != f.wantID || u.TenantID != f.tenant):
			t.Errorf("FindUserByEmail(%s, %q) = %+v, %v; want user %s", f.tenant, f.email, u, err, f.wantID)
		}
	}
	if u, _ := db.store.FindUserByEmail(ctx, "acme", "ann@acme.test"); u.Email != "Ann@Acme.test" || u.Role != RoleEditor {
		t.Errorf("found %+v: want the email as stored and role editor", u)
	}

	// IdentityByEmail: the same match, with the tenant's state.
	if err := db.store.SetSuspended(ctx, "globex", true, "past_due"); err != nil {
		t.Fatal(err)
	}
	if err := db.store.MarkTenantDeleted(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	identities := []struct {
		tenant, email          string
		wantID                 string // "" wants ErrNotFound
		wantSuspended, wantDel bool
	}{
		{"acme", "ANN@acme.TEST", ann.ID, false, true},
		{"globex", "ann@acme.test", annGlobex.ID, true, false},
		{"globex", "bob@acme.test", "", false, false},
		{"initech", "ann@acme.test", "", false, false},
	}
	for _, c := range identities {
		id, err := db.store.IdentityByEmail(ctx, c.tenant, c.email)
		switch {
		case c.wantID == "" && !errors.Is(err, ErrNotFound):
			t.Errorf("IdentityByEmail(%s, %q) = %+v, %v; want ErrNotFound", c.tenant, c.email, id, err)
		case c.wantID != "" && (err != nil || id.User.ID != c.wantID || id.TenantSuspended != c.wantSuspended ||
			id.TenantDeleted != c.wantDel || id.TokenID != ""):
			t.Errorf("IdentityByEmail(%s, %q) = %+v, %v; want %s suspended=%v deleted=%v", c.tenant, c.email, id, err, c.wantID, c.wantSuspended, c.wantDel)
		}
	}
	if err := db.store.UpsertTenant(ctx, TenantRecord{ID: "acme", Plan: "starter", Isolation: IsolationShared}); err != nil {
		t.Fatal(err)
	}

	gets := []struct {
		tenant, id string
		found      bool
	}{
		{"acme", ann.ID, true},
		{"globex", ann.ID, false}, // another tenant's user is not found, not forbidden
		{"acme", annGlobex.ID, false},
		{"acme", "not-a-uuid", false},
		{"acme", "00000000-0000-0000-0000-000000000000", false},
	}
	for _, g := range gets {
		u, err := db.store.GetUser(ctx, g.tenant, g.id)
		if g.found != (err == nil) || (!g.found && !errors.Is(err, ErrNotFound)) || (g.found && (u.ID != ann.ID || u.Email != ann.Email || u.Role != ann.Role || u.TenantID != "acme")) {
			t.Errorf("GetUser(%s, %s) = %+v, %v; want found=%v", g.tenant, g.id, u, err, g.found)
		}
	}

	adds := []struct {
		tenant, email, role string
		want                error
	}{
		{"acme", "ANN@acme.test", RoleViewer, ErrUserExists},
		{"acme", "bob@acme.test", "superuser", ErrInvalidUserInput},
		{"acme", "not an email", RoleViewer, ErrInvalidUserInput},
		{"initech", "bob@acme.test", RoleViewer, ErrNotFound},
		{"acme", "bob@acme.test", RoleViewer, nil},
	}
	for _, a := range adds {
		if _, err := db.store.AddUser(ctx, a.tenant, a.email, a.role); !errors.Is(err, a.want) || (a.want == nil && err != nil) {
			t.Errorf("AddUser(%s, %q, %s) = %v, want %v", a.tenant, a.email, a.role, err, a.want)
		}
	}
}

func testSetUserRole(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	db.tenant(t, "globex")
	users := map[string]User{
		"ann": db.user(t, "acme", "ann@acme.test", RoleOwner),
		"bob": db.user(t, "acme", "bob@acme.test", RoleOwner),
		"cy":  db.user(t, "acme", "cy@acme.test", RoleAdmin),
		"zed": db.user(t, "globex", "zed@globex.test", RoleOwner),
	}
	// Steps build on each other: the owners are ann and bob at first.
	steps := []struct {
		who, role string
		tenant    string // "" is acme
		want      error
	}{
		{"bob", RoleAdmin, "", nil},
		{"ann", RoleAdmin, "", ErrLastOwner},
		{"ann", RoleViewer, "", ErrLastOwner},
		{"ann", RoleOwner, "", nil}, // no change
		{"cy", RoleOwner, "", nil},
		{"ann", RoleViewer, "", nil},
		{"cy", RoleEditor, "", ErrLastOwner},
		{"zed", RoleViewer, "globex", ErrLastOwner},
		{"zed", RoleViewer, "", ErrNotFound}, // globex's user through acme
		{"bob", "root", "", ErrInvalidUserInput},
		{"bob", RoleEditor, "initech", ErrNotFound},
		{"bob", RoleEditor, "", nil},
	}
	wantRoles := map[string]string{"ann": RoleViewer, "bob": RoleEditor, "cy": RoleOwner, "zed": RoleOwner}
	for i, s := range steps {
		tenant := s.tenant
		if tenant == "" {
			tenant = "acme"
		}
		u, err := db.store.SetUserRole(ctx, tenant, users[s.who].ID, s.role)
		if !errors.Is(err, s.want) || (s.want == nil && err != nil) {
			t.Errorf("step %d: %s to %s in %s: %v, want %v", i, s.who, s.role, tenant, err, s.want)
			continue
		}
		if err == nil && u.Role != s.role {
			t.Errorf("step %d: returned role %s, want %s", i, u.Role, s.role)
		}
	}
	for who, role := range wantRoles {
		if n := db.count(t, "SELECT count(*) FROM users WHERE id = $1 AND role = $2", users[who].ID, role); n != 1 {
			t.Errorf("%s is not %s at the end", who, role)
		}
	}
	if _, err := db.store.SetUserRole(ctx, "acme", "nope", RoleViewer); !errors.Is(err, ErrNotFound) {
		t.Errorf("malformed user id: %v, want ErrNotFound", err)
	}
}

// testLastOwnerConcurrent has two owners demote each other at the same moment, many
// times: exactly one demotion may succeed each time, or the tenant would be left without
// an owner.
func testLastOwnerConcurrent(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	const rounds = 20
	for round := range rounds {
		tenant := fmt.Sprintf("t%d", round)
		db.tenant(t, tenant)
		owners := []User{
			db.user(t, tenant, "ann@acme.test", RoleOwner),
			db.user(t, tenant, "bob@acme.test", RoleOwner),
		}
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			errs  = make([]error, len(owners))
		)
		for i, o := range owners {
			wg.Go(func() {
				<-start
				_, errs[i] = db.store.SetUserRole(ctx, tenant, o.ID, RoleAdmin)
			})
		}
		close(start)
		wg.Wait()
		ok, last := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrLastOwner):
				last++
			default:
				t.Errorf("round %d: unexpected error %v", round, err)
			}
		}
		if ok != 1 || last != 1 {
			t.Errorf("round %d: %d demotions succeeded and %d were refused as the last owner; want 1 and 1", round, ok, last)
		}
		if n := db.count(t, "SELECT count(*) FROM users WHERE tenant_id = $1 AND role = 'owner'", tenant); n != 1 {
			t.Errorf("round %d: %d owners left, want 1", round, n)
		}
	}
}
