package auth

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/internal/auth/devissuer"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/testbackends"
)

const audience = "shoal-api"

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// issuer is a dev issuer served by an httptest server that counts key set fetches.
type issuer struct {
	*devissuer.Issuer
	keyFetches atomic.Int64
	srv        *httptest.Server
}

func startIssuer(t *testing.T) *issuer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	iss, err := devissuer.New("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	i := &issuer{Issuer: iss}
	h := iss.Handler()
	i.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == devissuer.KeysPath {
			i.keyFetches.Add(1)
		}
		h.ServeHTTP(w, r)
	})}}
	i.srv.Start()
	t.Cleanup(i.srv.Close)
	return i
}

func (i *issuer) token(t *testing.T, c devissuer.Claims) string {
	t.Helper()
	tok, err := i.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func newVerifier(t *testing.T, iss *issuer, minRefresh time.Duration) *OIDCVerifier {
	t.Helper()
	v, err := NewOIDCVerifier(OIDCConfig{
		IssuerURL:             iss.URL(),
		Audience:              audience,
		AllowInsecureHTTP:     true,
		KeyRefreshMinInterval: metav1.Duration{Duration: minRefresh},
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func openStore(t *testing.T, pg *testbackends.Postgres) (*metastore.Store, string) {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "_", "-", "_", " ", "_").Replace(t.Name()))
	dsn := pg.CreateDatabase(t, name)
	store, err := metastore.Open(ctxFor(t), metastore.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	return store, dsn
}

// sqlExec changes rows behind the store's back.
func sqlExec(t *testing.T, dsn, query string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(ctxFor(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(ctxFor(t), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func mustUser(t *testing.T, s *metastore.Store, tenant, email, role string) metastore.User {
	t.Helper()
	u, err := s.AddUser(ctxFor(t), tenant, email, role)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func authenticate(a *Authenticator, token string) (Principal, error) {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/dashboards", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return a.Authenticate(r)
}

// TestAuthenticator runs the authentication cases against a real PostgreSQL and a real
// issuer over HTTP.
func TestAuthenticator(t *testing.T) {
	pg := testbackends.StartPostgres(t)
	t.Run("Credentials", func(t *testing.T) { testCredentials(t, pg) })
	t.Run("KeyRotation", func(t *testing.T) { testKeyRotation(t, pg) })
	t.Run("UnknownKeysRateLimited", func(t *testing.T) { testUnknownKeysRateLimited(t, pg) })
	t.Run("IssuerDown", func(t *testing.T) { testIssuerDown(t, pg) })
}

func testCredentials(t *testing.T, pg *testbackends.Postgres) {
	ctx := ctxFor(t)
	store, dsn := openStore(t, pg)
	for _, id := range []string{"acme", "globex", "initech", "umbrella"} {
		if err := store.UpsertTenant(ctx, metastore.TenantRecord{ID: id, Plan: "starter", Isolation: metastore.IsolationShared}); err != nil {
			t.Fatal(err)
		}
	}
	ann := mustUser(t, store, "acme", "ann@acme.test", metastore.RoleOwner)
	bob := mustUser(t, store, "acme", "Bob@Acme.test", metastore.RoleEditor)
	zed := mustUser(t, store, "globex", "zed@globex.test", metastore.RoleViewer)
	ivy := mustUser(t, store, "initech", "ivy@initech.test", metastore.RoleAdmin)
	uma := mustUser(t, store, "umbrella", "uma@umbrella.test", metastore.RoleOwner)
	if err := store.SetSuspended(ctx, "initech", true, "past_due"); err != nil {
		t.Fatal(err)
	}
	if err := store.MarkTenantDeleted(ctx, "umbrella"); err != nil {
		t.Fatal(err)
	}

	iss := startIssuer(t)
	other := startIssuer(t) // another issuer: its tokens must not be accepted
	// Same issuer URL, keys nobody publishes: a forger who knows the issuer's name.
	forger, err := devissuer.New(iss.URL())
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	a := NewAuthenticator(store, newVerifier(t, iss, time.Millisecond), slog.New(slog.NewTextHandler(&logs, nil)))

	no := false
	yes := true
	claims := func(tenant, email string) devissuer.Claims {
		return devissuer.Claims{Subject: "sub-" + email, Audience: audience, Tenant: tenant, Email: email}
	}
	with := func(c devissuer.Claims, f func(*devissuer.Claims)) devissuer.Claims { f(&c); return c }

	personal := func(u metastore.User, expires *time.Time) (metastore.PersonalToken, string) {
		tok, plaintext, err := store.CreatePersonalToken(ctx, u.TenantID, u.ID, "test", expires)
		if err != nil {
			t.Fatal(err)
		}
		return tok, plaintext
	}
	annTok, annPlain := personal(ann, nil)
	soon := time.Now().Add(time.Hour)
	expiringTok, expiringPlain := personal(bob, &soon)
	revokedTok, revokedPlain := personal(bob, nil)
	if err := store.RevokePersonalToken(ctx, "acme", bob.ID, revokedTok.ID); err != nil {
		t.Fatal(err)
	}
	_, ivyPlain := personal(ivy, nil)
	_, umaPlain := personal(uma, nil)
	// Expired behind the store's back: CreatePersonalToken refuses a past expiry.
	expiredTok, expiredPlain := personal(bob, &soon)
	sqlExec(t, dsn, "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", expiredTok.ID)
	ingestKey, _, err := store.EnsureIngestKey(ctx, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	unknownPersonal := metastore.PersonalTokenPrefix + strings.Repeat("x", 43)

	hs256, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hsJWS, err := hs256.Sign([]byte(`{"iss":"` + iss.URL() + `","aud":"` + audience + `","shoal_tenant":"acme","email":"ann@acme.test","exp":9999999999}`))
	if err != nil {
		t.Fatal(err)
	}
	hsToken, _ := hsJWS.CompactSerialize()

	type want struct {
		user      metastore.User
		role      Role
		method    Method
		tokenID   string
		suspended bool
	}
	cases := []struct {
		name  string
		token string
		want  want  // when err is nil
		err   error // the refusal expected
	}{
		{name: "oidc owner", token: iss.token(t, claims("acme", "ann@acme.test")), want: want{user: ann, role: RoleOwner, method: MethodOIDC}},
		{name: "oidc editor, email in another case", token: iss.token(t, claims("acme", "BOB@acme.TEST")), want: want{user: bob, role: RoleEditor, method: MethodOIDC}},
		{name: "oidc, verified email", token: iss.token(t, with(claims("globex", "zed@globex.test"), func(c *devissuer.Claims) { c.EmailVerified = &yes })),
			want: want{user: zed, role: RoleViewer, method: MethodOIDC}},
		{name: "oidc, audience among several", token: iss.token(t, with(claims("acme", "ann@acme.test"), func(c *devissuer.Claims) {
			c.Extra = map[string]any{"aud": []string{"other", audience}}
		})), want: want{user: ann, role: RoleOwner, method: MethodOIDC}},
		{name: "oidc, suspended tenant", token: iss.token(t, claims("initech", "ivy@initech.test")), want: want{user: ivy, role: RoleAdmin, method: MethodOIDC, suspended: true}},
		{name: "oidc, deleted tenant", token: iss.token(t, claims("umbrella", "uma@umbrella.test")), err: ErrTenantDeleted},
		{name: "expired", token: iss.token(t, with(claims("acme", "ann@acme.test"), func(c *devissuer.Claims) {
			c.IssuedAt, c.Expiry = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Minute)
		})), err: ErrExpired},
		{name: "not yet valid", token: iss.token(t, with(claims("acme", "ann@acme.test"), func(c *devissuer.Claims) { c.NotBefore = time.Now().Add(time.Hour) })), err: ErrInvalidToken},
		{name: "wrong audience", token: iss.token(t, with(claims("acme", "ann@acme.test"), func(c *devissuer.Claims) { c.Audience = "another-api" })), err: ErrWrongAudience},
		{name: "no audience", token: iss.token(t, with(claims("acme", "ann@acme.test"), func(c *devissuer.Claims) { c.Audience = "" })), err: ErrWrongAudience},
		{name: "expired and wrong audience", token: iss.token(t, with(claims("acme", "ann@acme.test"), func(c *devissuer.Claims) {
			c.Audience, c.IssuedAt, c.Expiry = "another-api", time.Now().Add(-2*time.Hour), time.Now().Add(-time.Minute)
		})), err: ErrWrongAudience},
		{name: "another issuer", token: other.token(t, claims("acme", "ann@acme.test")), err: ErrUnknownIssuer},
		{name: "issuer claim rewritten", token: iss.token(t, with(claims("acme", "ann@acme.test"), func(c *devissuer.Claims) {
			c.Extra = map[string]any{"iss": other.URL()}
		})), err: ErrUnknownIssuer},
		{name: "signed by an unknown key", token: func() string {
			tok, err := forger.Sign(claims("acme", "ann@acme.test"))
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}(), err: ErrInvalidToken},
		{name: "signature tampered", token: func() string {
			tok := iss.token(t, claims("acme", "bob@acme.test"))
			parts := strings.Split(tok, ".")
			// Claims of another user under bob's signature.
			parts[1] = strings.Split(iss.token(t, claims("acme", "ann@acme.test")), ".")[1]
			return strings.Join(parts, ".")
		}(), err: ErrInvalidToken},
		{name: "HS256 with a guessed secret", token: hsToken, err: ErrMalformed},
		{name: "tenant claim missing", token: iss.token(t, claims("", "ann@acme.test")), err: ErrMissingClaim},
		{name: "tenant claim under another name", token: iss.token(t, with(claims("acme", "ann@acme.test"), func(c *devissuer.Claims) { c.TenantClaim = "org" })), err: ErrMissingClaim},
		{name: "tenant claim not a string", token: iss.token(t, with(claims("acme", "ann@acme.test"), func(c *devissuer.Claims) {
			c.Extra = map[string]any{"shoal_tenant": []string{"acme"}}
		})), err: ErrMissingClaim},
		{name: "email claim missing", token: iss.token(t, claims("acme", "")), err: ErrMissingClaim},
		{name: "email not verified", token: iss.token(t, with(claims("acme", "ann@acme.test"), func(c *devissuer.Claims) { c.EmailVerified = &no })), err: ErrEmailNotVerified},
		{name: "user unknown", token: iss.token(t, claims("acme", "mallory@acme.test")), err: ErrUnknownUser},
		{name: "user of another tenant", token: iss.token(t, claims("globex", "ann@acme.test")), err: ErrUnknownUser},
		{name: "tenant unknown", token: iss.token(t, claims("nope", "ann@acme.test")), err: ErrUnknownUser},
		{name: "garbage", token: "hello", err: ErrMalformed},
		{name: "three garbage parts", token: "a.b.c", err: ErrMalformed},
		{name: "no credentials", token: "", err: ErrMissingCredentials},
		{name: "ingest key", token: ingestKey, err: ErrIngestKey},
		{name: "personal token", token: annPlain, want: want{user: ann, role: RoleOwner, method: MethodToken, tokenID: annTok.ID}},
		{name: "personal token with expiry", token: expiringPlain, want: want{user: bob, role: RoleEditor, method: MethodToken, tokenID: expiringTok.ID}},
		{name: "personal token, suspended tenant", token: ivyPlain, want: want{user: ivy, role: RoleAdmin, method: MethodToken, suspended: true}},
		{name: "personal token, deleted tenant", token: umaPlain, err: ErrTenantDeleted},
		{name: "personal token revoked", token: revokedPlain, err: ErrRevoked},
		{name: "personal token expired", token: expiredPlain, err: ErrExpired},
		{name: "personal token unknown", token: unknownPersonal, err: ErrUnknownToken},
		{name: "personal token malformed", token: "shp_abc", err: ErrUnknownToken},
	}
	for _, c := range cases {
		p, err := authenticate(a, c.token)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%s: %+v, %v; want %v", c.name, p, err, c.err)
			} else if HTTPStatus(err) != http.StatusUnauthorized {
				t.Errorf("%s: status %d, want 401", c.name, HTTPStatus(err))
			}
			if p != (Principal{}) {
				t.Errorf("%s: refused, but returned principal %+v", c.name, p)
			}
			continue
		}
		w := c.want
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if p.UserID != w.user.ID || p.TenantID != w.user.TenantID || p.Email != w.user.Email || p.Role != w.role ||
			p.Method != w.method || p.TenantSuspended != w.suspended || (w.tokenID != "" && p.TokenID != w.tokenID) {
			t.Errorf("%s: principal %+v, want user %s of %s as %s by %s (suspended %v)", c.name, p, w.user.Email, w.user.TenantID, w.role, w.method, w.suspended)
		}
		if w.method == MethodOIDC && (p.Subject == "" || p.TokenID != "") || w.method == MethodToken && p.Subject != "" {
			t.Errorf("%s: subject %q, token id %q do not fit method %s", c.name, p.Subject, p.TokenID, p.Method)
		}
	}

	// The token's role follows the user's role in the store.
	if _, err := store.SetUserRole(ctx, "acme", bob.ID, metastore.RoleViewer); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{expiringPlain, iss.token(t, claims("acme", "bob@acme.test"))} {
		if p, err := authenticate(a, tok); err != nil || p.Role != RoleViewer {
			t.Errorf("after bob's demotion: %+v, %v; want viewer", p, err)
		}
	}
	// Refusals are logged with their detail; no credential ends up in the log.
	for _, needle := range []string{"reason=\"token expired\"", "another-api", "mallory@acme.test"} {
		if !strings.Contains(logs.String(), needle) {
			t.Errorf("the log lacks %q", needle)
		}
	}
	for _, secret := range []string{annPlain, revokedPlain, ingestKey} {
		if strings.Contains(logs.String(), strings.TrimPrefix(strings.TrimPrefix(secret, "shp_"), "shk_")) {
			t.Error("a credential was logged")
		}
	}
}

// testKeyRotation rotates the issuer's key under a running verifier: tokens of the new
// key verify without a restart, tokens of a key dropped from the key set stop verifying,
// tokens of a key in its grace period keep verifying.
func testKeyRotation(t *testing.T, pg *testbackends.Postgres) {
	ctx := ctxFor(t)
	store, _ := openStore(t, pg)
	if err := store.UpsertTenant(ctx, metastore.TenantRecord{ID: "acme", Plan: "starter", Isolation: metastore.IsolationShared}); err != nil {
		t.Fatal(err)
	}
	ann := mustUser(t, store, "acme", "ann@acme.test", metastore.RoleOwner)
	iss := startIssuer(t)
	a := NewAuthenticator(store, newVerifier(t, iss, time.Millisecond), nil)

	tokens := map[string]string{}
	sign := func(name string) func() error {
		return func() error {
			tok, err := iss.Token("acme", "ann@acme.test", audience, 0)
			tokens[name] = tok
			return err
		}
	}
	rotate := func(grace time.Duration) func() error {
		return func() error {
			_, err := iss.Rotate(grace)
			time.Sleep(5 * time.Millisecond) // past the verifier's refresh interval
			return err
		}
	}
	steps := []struct {
		name  string
		do    func() error
		token string
		want  error
	}{
		{"first key", sign("k1"), "k1", nil},
		{"rotated with grace: new key", func() error {
			if err := rotate(time.Hour)(); err != nil {
				return err
			}
			return sign("k2")()
		}, "k2", nil},
		{"rotated with grace: old key", nil, "k1", nil},
		{"rotated without grace: new key", func() error {
			if err := rotate(0)(); err != nil {
				return err
			}
			return sign("k3")()
		}, "k3", nil},
		{"rotated without grace: dropped key", nil, "k2", ErrInvalidToken},
		{"rotated without grace: key still in its grace period", nil, "k1", nil},
	}
	for _, s := range steps {
		if s.do != nil {
			if err := s.do(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
		p, err := authenticate(a, tokens[s.token])
		switch {
		case s.want != nil && !errors.Is(err, s.want):
			t.Errorf("%s: %+v, %v; want %v", s.name, p, err, s.want)
		case s.want == nil && (err != nil || p.UserID != ann.ID):
			t.Errorf("%s: %+v, %v; want ann", s.name, p, err)
		}
	}
	if n := iss.keyFetches.Load(); n < 3 {
		t.Errorf("%d key set fetches, want one per rotation at least (3)", n)
	}
}

// testUnknownKeysRateLimited sends tokens with key ids the issuer never published: they
// are refused without a key set fetch each.
func testUnknownKeysRateLimited(t *testing.T, pg *testbackends.Postgres) {
	ctx := ctxFor(t)
	store, _ := openStore(t, pg)
	if err := store.UpsertTenant(ctx, metastore.TenantRecord{ID: "acme", Plan: "starter", Isolation: metastore.IsolationShared}); err != nil {
		t.Fatal(err)
	}
	mustUser(t, store, "acme", "ann@acme.test", metastore.RoleOwner)
	iss := startIssuer(t)
	a := NewAuthenticator(store, newVerifier(t, iss, time.Hour), nil)
	good, _ := iss.Token("acme", "ann@acme.test", audience, 0)
	if _, err := authenticate(a, good); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		forger, err := devissuer.New(iss.URL())
		if err != nil {
			t.Fatal(err)
		}
		forged, _ := forger.Token("acme", "ann@acme.test", audience, 0)
		if _, err := authenticate(a, forged); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("forged token: %v, want ErrInvalidToken", err)
		}
	}
	if n := iss.keyFetches.Load(); n != 1 {
		t.Errorf("%d key set fetches for one good and 20 forged tokens, want 1", n)
	}
	if _, err := authenticate(a, good); err != nil {
		t.Errorf("the good token after the forged ones: %v", err)
	}
}

// testIssuerDown starts the verifier while the issuer is unreachable: tokens get a 503,
// and verify once the issuer is back, without a restart.
func testIssuerDown(t *testing.T, pg *testbackends.Postgres) {
	ctx := ctxFor(t)
	store, _ := openStore(t, pg)
	if err := store.UpsertTenant(ctx, metastore.TenantRecord{ID: "acme", Plan: "starter", Isolation: metastore.IsolationShared}); err != nil {
		t.Fatal(err)
	}
	mustUser(t, store, "acme", "ann@acme.test", metastore.RoleOwner)
	iss := startIssuer(t)
	addr := iss.srv.Listener.Addr().String()
	iss.srv.Close()
	v := newVerifier(t, iss, time.Millisecond)
	a := NewAuthenticator(store, v, nil)
	tok, _ := iss.Token("acme", "ann@acme.test", audience, 0)

	_, err := authenticate(a, tok)
	if !errors.Is(err, ErrUnavailable) || HTTPStatus(err) != http.StatusServiceUnavailable {
		t.Fatalf("issuer down: %v (status %d), want ErrUnavailable, 503", err, HTTPStatus(err))
	}
	if err := v.Discover(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Discover with the issuer down: %v", err)
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	back := &httptest.Server{Listener: ln, Config: &http.Server{Handler: iss.Handler()}}
	back.Start()
	defer back.Close()
	time.Sleep(5 * time.Millisecond) // past the retry interval
	if err := v.Discover(ctx); err != nil {
		t.Errorf("Discover with the issuer back: %v", err)
	}
	if p, err := authenticate(a, tok); err != nil || p.TenantID != "acme" {
		t.Errorf("issuer back: %+v, %v", p, err)
	}
}
