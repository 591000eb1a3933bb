package metastore

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shoal-dev/shoal/internal/testbackends"
)

// TestPersonalTokens runs the personal-token cases against one server, each in its own
// database.
func TestPersonalTokens(t *testing.T) {
	pg := testbackends.StartPostgres(t)
	t.Run("Lifecycle", func(t *testing.T) { testTokenLifecycle(t, pg) })
	t.Run("Create", func(t *testing.T) { testCreateToken(t, pg) })
	t.Run("Limit", func(t *testing.T) { testTokenLimit(t, pg) })
}

// testTokenLifecycle walks one token from creation to revocation, with the tenant and
// user changing around it; the steps build on each other.
func testTokenLifecycle(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	db.tenant(t, "globex")
	ann := db.user(t, "acme", "ann@acme.test", RoleOwner)
	bob := db.user(t, "acme", "bob@acme.test", RoleEditor)
	zed := db.user(t, "globex", "zed@globex.test", RoleOwner)

	tok, plaintext, err := db.store.CreatePersonalToken(ctx, "acme", bob.ID, "  ci script ", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !wellFormedPersonalToken(plaintext) || !strings.HasPrefix(plaintext, tok.Prefix) || len(tok.Prefix) != len(PersonalTokenPrefix)+6 {
		t.Errorf("token %q with display prefix %q: want a well-formed token starting with its 10-character prefix", plaintext, tok.Prefix)
	}
	if tok.Name != "ci script" || tok.UserID != bob.ID || tok.TenantID != "acme" || tok.ExpiresAt != nil || tok.RevokedAt != nil || tok.LastUsedAt != nil {
		t.Errorf("created %+v", tok)
	}
	if n := db.count(t, "SELECT count(*) FROM api_keys WHERE id = $1 AND hash = $2 AND kind = 'personal'", tok.ID, HashKey(plaintext)); n != 1 {
		t.Error("the token's row does not hold its SHA-256")
	}
	ingestKey, _, err := db.store.EnsureIngestKey(ctx, "acme", "")
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name          string
		do            func() error
		token         string
		want          error
		wantRole      string
		wantSuspended bool
		wantDeleted   bool
	}{
		{name: "fresh token", token: plaintext, wantRole: RoleEditor},
		{name: "role changed", do: func() error { _, err := db.store.SetUserRole(ctx, "acme", bob.ID, RoleViewer); return err },
			token: plaintext, wantRole: RoleViewer},
		{name: "unknown token", token: PersonalTokenPrefix + strings.Repeat("A", 43), want: ErrNotFound},
		{name: "malformed", token: "shp_short", want: ErrNotFound},
		{name: "empty", token: "", want: ErrNotFound},
		{name: "ingest key", token: ingestKey, want: ErrNotFound},
		{name: "tenant suspended", do: func() error { return db.store.SetSuspended(ctx, "acme", true, "past_due") },
			token: plaintext, wantRole: RoleViewer, wantSuspended: true},
		{name: "tenant resumed", do: func() error { return db.store.SetSuspended(ctx, "acme", false, "") },
			token: plaintext, wantRole: RoleViewer},
		{name: "revoked by another user", do: func() error { return db.store.RevokePersonalToken(ctx, "acme", ann.ID, tok.ID) },
			token: plaintext, wantRole: RoleViewer},
		{name: "revoked through another tenant", do: func() error { return db.store.RevokePersonalToken(ctx, "globex", zed.ID, tok.ID) },
			token: plaintext, wantRole: RoleViewer},
		{name: "expired", do: func() error {
			_, err := db.sql.Exec(ctx, "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", tok.ID)
			return err
		}, token: plaintext, want: ErrTokenExpired},
		{name: "expiry extended", do: func() error {
			_, err := db.sql.Exec(ctx, "UPDATE api_keys SET expires_at = now() + interval '1 hour' WHERE id = $1", tok.ID)
			return err
		}, token: plaintext, wantRole: RoleViewer},
		{name: "revoked", do: func() error { return db.store.RevokePersonalToken(ctx, "acme", bob.ID, tok.ID) },
			token: plaintext, want: ErrTokenRevoked},
		{name: "revoked again", do: func() error { return db.store.RevokePersonalToken(ctx, "acme", bob.ID, tok.ID) },
			token: plaintext, want: ErrTokenRevoked},
	}
	for _, s := range steps {
		if s.do != nil {
			err := s.do()
			wantDoErr := strings.HasPrefix(s.name, "revoked by") || strings.HasPrefix(s.name, "revoked through")
			if wantDoErr != errors.Is(err, ErrNotFound) || (!wantDoErr && err != nil) {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
		id, err := db.store.LookupPersonalToken(ctx, s.token)
		if s.want != nil {
			if !errors.Is(err, s.want) {
				t.Errorf("%s: %+v, %v; want %v", s.name, id, err, s.want)
			}
			continue
		}
		if err != nil || id.TokenID != tok.ID || id.User.ID != bob.ID || id.User.TenantID != "acme" || id.User.Role != s.wantRole ||
			id.TenantSuspended != s.wantSuspended || id.TenantDeleted != s.wantDeleted {
			t.Errorf("%s: %+v, %v; want bob as %s, suspended %v", s.name, id, err, s.wantRole, s.wantSuspended)
		}
		if s.wantSuspended && id.TenantSuspendedReason != "past_due" {
			t.Errorf("%s: suspension reason %q, want past_due", s.name, id.TenantSuspendedReason)
		}
	}

	list, err := db.store.ListPersonalTokens(ctx, "acme", bob.ID)
	if err != nil || len(list) != 1 {
		t.Fatalf("tokens of bob: %+v, %v; want the one token", list, err)
	}
	if got := list[0]; got.ID != tok.ID || got.RevokedAt == nil || got.LastUsedAt == nil || got.ExpiresAt == nil || got.Prefix != tok.Prefix {
		t.Errorf("listed %+v: want it revoked, used, expiring, with its prefix", got)
	}
	for _, other := range [][2]string{{"acme", ann.ID}, {"globex", bob.ID}, {"acme", "x"}} {
		if l, err := db.store.ListPersonalTokens(ctx, other[0], other[1]); err != nil || len(l) != 0 {
			t.Errorf("tokens of %v: %+v, %v; want none", other, l, err)
		}
	}

	// A second token: the tenant's deletion is reported, and the user's deletion removes it.
	_, second, err := db.store.CreatePersonalToken(ctx, "acme", bob.ID, "second", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.store.MarkTenantDeleted(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if id, err := db.store.LookupPersonalToken(ctx, second); err != nil || !id.TenantDeleted {
		t.Errorf("tenant being deleted: %+v, %v; want TenantDeleted", id, err)
	}
	db.exec(t, "DELETE FROM users WHERE id = $1", bob.ID)
	if _, err := db.store.LookupPersonalToken(ctx, second); !errors.Is(err, ErrNotFound) {
		t.Errorf("token of a deleted user: %v, want ErrNotFound", err)
	}

	assertNoPlaintext(t, db, []string{plaintext, second})
}

// assertNoPlaintext scans every row of every table, as text, for (half of) each token.
func assertNoPlaintext(t *testing.T, db testDB, tokens []string) {
	t.Helper()
	ctx := ctxFor(t)
	rows, err := db.sql.Query(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) < 5 {
		t.Fatalf("only %d tables to scan", len(tables))
	}
	for _, tok := range tokens {
		body := strings.TrimPrefix(tok, PersonalTokenPrefix)
		for _, table := range tables {
			q := fmt.Sprintf("SELECT count(*) FROM %s r WHERE strpos(r::text, $1) > 0", pgx.Identifier{table}.Sanitize())
			if n := db.count(t, q, body[len(body)/2:]); n != 0 {
				t.Errorf("table %s holds (part of) a plaintext token in %d rows", table, n)
			}
		}
	}
}

func testCreateToken(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	db.tenant(t, "globex")
	ann := db.user(t, "acme", "ann@acme.test", RoleViewer)
	soon := time.Now().Add(time.Hour)
	past := time.Now().Add(-time.Second)

	cases := []struct {
		name    string
		tenant  string
		userID  string
		token   string
		expires *time.Time
		want    error
	}{
		{"no expiry", "acme", ann.ID, "a", nil, nil},
		{"expiring", "acme", ann.ID, "b", &soon, nil},
		{"expiry in the past", "acme", ann.ID, "c", &past, ErrInvalidUserInput},
		{"empty name", "acme", ann.ID, "  ", nil, ErrInvalidUserInput},
		{"long name", "acme", ann.ID, strings.Repeat("é", MaxPersonalTokenNameLen+1), nil, ErrInvalidUserInput},
		{"longest name", "acme", ann.ID, strings.Repeat("é", MaxPersonalTokenNameLen), nil, nil},
		{"user of another tenant", "globex", ann.ID, "d", nil, ErrNotFound},
		{"unknown user", "acme", "00000000-0000-0000-0000-000000000000", "e", nil, ErrNotFound},
		{"malformed user id", "acme", "ann", "f", nil, ErrNotFound},
	}
	for _, c := range cases {
		tok, plaintext, err := db.store.CreatePersonalToken(ctx, c.tenant, c.userID, c.token, c.expires)
		if c.want != nil {
			if !errors.Is(err, c.want) || plaintext != "" {
				t.Errorf("%s: %q, %v; want %v and no token", c.name, plaintext, err, c.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if (c.expires == nil) != (tok.ExpiresAt == nil) || (c.expires != nil && !tok.ExpiresAt.Equal(c.expires.Truncate(time.Microsecond))) {
			t.Errorf("%s: expires %v, want %v", c.name, tok.ExpiresAt, c.expires)
		}
		if id, err := db.store.LookupPersonalToken(ctx, plaintext); err != nil || id.User.ID != ann.ID {
			t.Errorf("%s: looks up as %+v, %v", c.name, id, err)
		}
	}
	if n := db.count(t, "SELECT count(*) FROM api_keys WHERE kind = 'personal'"); n != 3 {
		t.Errorf("%d personal tokens stored, want 3", n)
	}
}

func testTokenLimit(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	ann := db.user(t, "acme", "ann@acme.test", RoleEditor)
	var first PersonalToken
	for i := range MaxPersonalTokensPerUser {
		tok, _, err := db.store.CreatePersonalToken(ctx, "acme", ann.ID, fmt.Sprint("t", i), nil)
		if err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		if i == 0 {
			first = tok
		}
	}
	if _, _, err := db.store.CreatePersonalToken(ctx, "acme", ann.ID, "one too many", nil); !errors.Is(err, ErrTooManyTokens) {
		t.Fatalf("token over the limit: %v, want ErrTooManyTokens", err)
	}
	if err := db.store.RevokePersonalToken(ctx, "acme", ann.ID, first.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.store.CreatePersonalToken(ctx, "acme", ann.ID, "replacement", nil); err != nil {
		t.Errorf("token after revoking one: %v", err)
	}
}
