package metastore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/shoal-dev/shoal/internal/testbackends"
)

// testDB is a fresh database on the shared server, with an open store and a plain
// connection for checking rows behind the store's back.
type testDB struct {
	dsn   string
	store *Store
	sql   *pgx.Conn
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newDB(t *testing.T, pg *testbackends.Postgres) testDB {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
	dsn := pg.CreateDatabase(t, name)
	ctx := ctxFor(t)
	store, err := Open(ctx, Config{DSN: dsn})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(store.Close)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return testDB{dsn: dsn, store: store, sql: conn}
}

func (db testDB) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.sql.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (db testDB) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := db.sql.Exec(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func (db testDB) tenant(t *testing.T, id string) {
	t.Helper()
	if err := db.store.UpsertTenant(context.Background(), TenantRecord{ID: id, Plan: "starter", Isolation: IsolationShared}); err != nil {
		t.Fatal(err)
	}
}

// TestStore runs the store's cases against one server, each in its own database.
func TestStore(t *testing.T) {
	pg := testbackends.StartPostgres(t)
	t.Run("Migrations", func(t *testing.T) { testMigrations(t, pg) })
	t.Run("ConcurrentOpen", func(t *testing.T) { testConcurrentOpen(t, pg) })
	t.Run("UpsertTenant", func(t *testing.T) { testUpsertTenant(t, pg) })
	t.Run("EnsureOwners", func(t *testing.T) { testEnsureOwners(t, pg) })
	t.Run("EnsureIngestKey", func(t *testing.T) { testEnsureIngestKey(t, pg) })
	t.Run("LookupIngestKey", func(t *testing.T) { testLookupIngestKey(t, pg) })
	t.Run("DeleteTenant", func(t *testing.T) { testDeleteTenant(t, pg) })
	t.Run("DSNFile", func(t *testing.T) { testDSNFile(t, pg) })
}

type appliedMigration struct {
	Version   int32
	AppliedAt time.Time
}

func appliedMigrations(t *testing.T, db testDB) []appliedMigration {
	t.Helper()
	rows, err := db.sql.Query(context.Background(), "SELECT version, applied_at FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[appliedMigration])
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func testMigrations(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	embedded, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	first := appliedMigrations(t, db)
	if len(first) != len(embedded) || len(first) == 0 {
		t.Fatalf("schema_migrations has %d rows, want one per embedded migration (%d)", len(first), len(embedded))
	}
	for i, m := range embedded {
		if int(first[i].Version) != m.version {
			t.Errorf("schema_migrations row %d is version %d, want %d", i, first[i].Version, m.version)
		}
	}
	for _, table := range []string{"tenants", "users", "api_keys", "dashboards", "widgets", "data_sources", "alert_rules", "alerts", "audit_log"} {
		if n := db.count(t, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = $1", table); n != 1 {
			t.Errorf("table %s missing after migration", table)
		}
	}

	again, err := Open(ctxFor(t), Config{DSN: db.dsn})
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	again.Close()
	second := appliedMigrations(t, db)
	if fmt.Sprint(second) != fmt.Sprint(first) {
		t.Errorf("second Open changed schema_migrations:\nbefore %v\nafter  %v", first, second)
	}
}

func testConcurrentOpen(t *testing.T, pg *testbackends.Postgres) {
	dsn := pg.CreateDatabase(t, "concurrent_open")
	const openers = 4
	var wg sync.WaitGroup
	errs := make([]error, openers)
	for i := range openers {
		wg.Go(func() {
			s, err := Open(ctxFor(t), Config{DSN: dsn})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
	conn, err := pgx.Connect(ctxFor(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	embedded, _ := migrations()
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(embedded) {
		t.Errorf("schema_migrations has %d rows after concurrent Opens, want %d", n, len(embedded))
	}
}

func testUpsertTenant(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	if _, err := db.store.GetTenant(ctx, "acme"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetTenant of a missing tenant: %v, want ErrNotFound", err)
	}
	base := TenantRecord{ID: "acme", DisplayName: "Acme", Plan: "starter", Isolation: IsolationShared}
	steps := []struct {
		name        string
		rec         TenantRecord
		wantUpdated bool
	}{
		{"create", base, true},
		{"same again", base, false},
		{"plan and display name", TenantRecord{ID: "acme", DisplayName: "Acme Inc", Plan: "pro", Isolation: IsolationShared}, true},
		{"suspended", TenantRecord{ID: "acme", DisplayName: "Acme Inc", Plan: "pro", Isolation: IsolationShared, Suspended: true, SuspendedReason: "unpaid"}, true},
		{"resumed", TenantRecord{ID: "acme", DisplayName: "Acme Inc", Plan: "pro", Isolation: IsolationDedicated, SuspendedReason: "ignored when not suspended"}, true},
		{"lake class", TenantRecord{ID: "acme", DisplayName: "Acme Inc", Plan: "pro", Isolation: IsolationDedicated, LakeClass: "Compliance"}, true},
		{"lake class again", TenantRecord{ID: "acme", DisplayName: "Acme Inc", Plan: "pro", Isolation: IsolationDedicated, LakeClass: "Compliance"}, false},
	}
	var last TenantRecord
	for _, step := range steps {
		time.Sleep(5 * time.Millisecond) // let now() move between transactions
		if err := db.store.UpsertTenant(ctx, step.rec); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		got, err := db.store.GetTenant(ctx, "acme")
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		wantReason := step.rec.SuspendedReason
		if !step.rec.Suspended {
			wantReason = ""
		}
		wantClass := step.rec.LakeClass
		if wantClass == "" {
			wantClass = "Standard"
		}
		if got.LakeClass != wantClass {
			t.Errorf("%s: lake class %q, want %q", step.name, got.LakeClass, wantClass)
		}
		if got.DisplayName != step.rec.DisplayName || got.Plan != step.rec.Plan || got.Isolation != step.rec.Isolation ||
			got.Suspended != step.rec.Suspended || got.SuspendedReason != wantReason || got.DeletedAt != nil {
			t.Errorf("%s: got %+v, want %+v", step.name, got, step.rec)
		}
		if updated := !got.UpdatedAt.Equal(last.UpdatedAt); updated != step.wantUpdated {
			t.Errorf("%s: updated_at moved = %v, want %v", step.name, updated, step.wantUpdated)
		}
		last = got
	}
	if n := db.count(t, "SELECT count(*) FROM tenants"); n != 1 {
		t.Errorf("%d tenant rows, want 1", n)
	}

	for _, bad := range []TenantRecord{
		{Plan: "starter", Isolation: IsolationShared},
		{ID: "x", Isolation: IsolationShared},
		{ID: "x", Plan: "starter", Isolation: "Mixed"},
	} {
		if err := db.store.UpsertTenant(ctx, bad); err == nil {
			t.Errorf("UpsertTenant(%+v) succeeded, want an error", bad)
		}
	}

	// A tenant marked deleted and upserted again is live again.
	if err := db.store.MarkTenantDeleted(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.store.GetTenant(ctx, "acme"); got.DeletedAt == nil {
		t.Error("MarkTenantDeleted left deleted_at empty")
	}
	if err := db.store.UpsertTenant(ctx, base); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.store.GetTenant(ctx, "acme"); got.DeletedAt != nil {
		t.Error("UpsertTenant kept the deletion mark")
	}
	for name, err := range map[string]error{
		"SetSuspended":      db.store.SetSuspended(ctx, "nobody", true, "x"),
		"MarkTenantDeleted": db.store.MarkTenantDeleted(ctx, "nobody"),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of a missing tenant: %v, want ErrNotFound", name, err)
		}
	}
}

func testEnsureOwners(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	db.tenant(t, "globex")

	if err := db.store.EnsureOwners(ctx, "acme", []string{"ann@acme.test", "bob@acme.test"}); err != nil {
		t.Fatal(err)
	}
	// Promoted or demoted by hand (the web UI): the operator must not undo it.
	db.exec(t, "UPDATE users SET role = 'admin' WHERE email = 'bob@acme.test'")
	for range 2 { // idempotent
		if err := db.store.EnsureOwners(ctx, "acme", []string{"ANN@acme.test", "bob@acme.test", "cy@acme.test", " cy@acme.test"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.store.EnsureOwners(ctx, "acme", nil); err != nil {
		t.Fatal(err)
	}
	if err := db.store.EnsureOwners(ctx, "globex", []string{"ann@acme.test"}); err != nil {
		t.Fatal(err)
	}

	rows, err := db.sql.Query(ctx, "SELECT tenant_id || ' ' || email || ' ' || role FROM users ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"acme ann@acme.test owner",
		"acme bob@acme.test admin",
		"acme cy@acme.test owner",
		"globex ann@acme.test owner",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("users:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	if err := db.store.EnsureOwners(ctx, "nobody", []string{"a@b.test"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("EnsureOwners of a missing tenant: %v, want ErrNotFound", err)
	}
	if err := db.store.EnsureOwners(ctx, "acme", []string{"not an email"}); err == nil {
		t.Error("EnsureOwners accepted an invalid email")
	}
}

func lookup(t *testing.T, s *Store, key string) (string, bool, error) {
	t.Helper()
	return s.LookupIngestKey(context.Background(), key)
}

func testEnsureIngestKey(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	db.tenant(t, "globex")

	globexKey, _, err := db.store.EnsureIngestKey(ctx, "globex", "")
	if err != nil {
		t.Fatal(err)
	}
	restored, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}

	// Each step passes what the Secret holds; the current key is what the previous
	// step returned, so steps build on each other.
	const current, revoked = "<current>", "<revoked>"
	steps := []struct {
		name        string
		secret      string
		wantCreated bool
		wantSame    bool // the returned key is the one passed in
	}{
		{"no Secret yet", "", true, false},
		{"Secret holds the active key", current, false, true},
		{"Secret lost", "", true, false},
		{"Secret holds a revoked key", revoked, true, false},
		{"Secret restored with a key unknown here", restored, false, true},
		{"restored key again", current, false, true},
		{"Secret holds another tenant's key", globexKey, true, false},
		{"Secret holds something typed by hand", "hunter2", true, false},
	}
	var active string
	var seen []string
	for _, step := range steps {
		secret := step.secret
		switch secret {
		case current:
			secret = active
		case revoked:
			secret = seen[0]
		}
		key, created, err := db.store.EnsureIngestKey(ctx, "acme", secret)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if created != step.wantCreated {
			t.Errorf("%s: created = %v, want %v", step.name, created, step.wantCreated)
		}
		if (key == secret) != step.wantSame {
			t.Errorf("%s: returned the Secret's key = %v, want %v", step.name, key == secret, step.wantSame)
		}
		if !wellFormedKey(key) {
			t.Errorf("%s: key %q is not well formed", step.name, key)
		}
		if tenant, _, err := lookup(t, db.store, key); err != nil || tenant != "acme" {
			t.Errorf("%s: the returned key looks up as %q, %v; want acme", step.name, tenant, err)
		}
		for _, old := range seen {
			if old == key {
				continue
			}
			if _, _, err := lookup(t, db.store, old); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: a replaced key still authenticates (%v)", step.name, err)
			}
		}
		if n := db.count(t, "SELECT count(*) FROM api_keys WHERE tenant_id = 'acme' AND kind = 'ingest' AND revoked_at IS NULL"); n != 1 {
			t.Errorf("%s: %d active ingest keys, want 1", step.name, n)
		}
		active = key
		seen = append(seen, key)
	}
	if tenant, _, err := lookup(t, db.store, globexKey); err != nil || tenant != "globex" {
		t.Errorf("globex's key looks up as %q, %v after acme's Secret held it", tenant, err)
	}

	// No plaintext key anywhere in the database: every row of every table, as text.
	tables, err := db.sql.Query(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(tables, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range append(seen, globexKey) {
		body := strings.TrimPrefix(key, KeyPrefix)
		for _, table := range names {
			q := fmt.Sprintf("SELECT count(*) FROM %s r WHERE strpos(r::text, $1) > 0", pgx.Identifier{table}.Sanitize())
			if n := db.count(t, q, body[len(body)/2:]); n != 0 {
				t.Errorf("table %s holds (part of) a plaintext key in %d rows", table, n)
			}
		}
	}
	if n := db.count(t, "SELECT count(*) FROM api_keys"); n == 0 {
		t.Error("api_keys is empty: the scan above checked nothing")
	}

	if _, _, err := db.store.EnsureIngestKey(ctx, "nobody", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("EnsureIngestKey of a missing tenant: %v, want ErrNotFound", err)
	}
}

func testLookupIngestKey(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	key, _, err := db.store.EnsureIngestKey(ctx, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	unknown, _ := NewKey()

	steps := []struct {
		name          string
		do            func() error
		key           string
		wantNotFound  bool
		wantSuspended bool
	}{
		{"active key", nil, key, false, false},
		{"unknown key", nil, unknown, true, false},
		{"empty key", nil, "", true, false},
		{"suspended", func() error { return db.store.SetSuspended(ctx, "acme", true, "past_due") }, key, false, true},
		{"resumed", func() error { return db.store.SetSuspended(ctx, "acme", false, "") }, key, false, false},
		{"being deleted", func() error { return db.store.MarkTenantDeleted(ctx, "acme") }, key, true, false},
	}
	for _, step := range steps {
		if step.do != nil {
			if err := step.do(); err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
		}
		tenant, suspended, err := lookup(t, db.store, step.key)
		if step.wantNotFound {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: %q, %v; want ErrNotFound", step.name, tenant, err)
			}
			continue
		}
		if err != nil || tenant != "acme" || suspended != step.wantSuspended {
			t.Errorf("%s: %q, suspended %v, %v; want acme, suspended %v", step.name, tenant, suspended, err, step.wantSuspended)
		}
	}
	got, err := db.store.GetTenant(ctx, "acme")
	if err != nil || got.SuspendedReason != "" {
		t.Errorf("after resume: reason %q, %v; want it cleared", got.SuspendedReason, err)
	}
}

func testDeleteTenant(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	for _, id := range []string{"acme", "globex"} {
		db.tenant(t, id)
		if err := db.store.EnsureOwners(ctx, id, []string{"owner@" + id + ".test"}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.store.EnsureIngestKey(ctx, id, ""); err != nil {
			t.Fatal(err)
		}
		db.exec(t, "INSERT INTO dashboards (tenant_id, name) VALUES ($1, 'main')", id)
		db.exec(t, "INSERT INTO widgets (dashboard_id, type) SELECT id, 'number' FROM dashboards WHERE tenant_id = $1", id)
		db.exec(t, "INSERT INTO data_sources (tenant_id, name, type, credentials, key_id) VALUES ($1, 'crm', 'http', '\\x00', 'k1')", id)
		db.exec(t, "INSERT INTO alert_rules (tenant_id, name) VALUES ($1, 'errors')", id)
		db.exec(t, "INSERT INTO alerts (rule_id, tenant_id, state) SELECT id, tenant_id, 'firing' FROM alert_rules WHERE tenant_id = $1", id)
		if err := db.store.AppendAudit(ctx, AuditEntry{TenantID: id, Actor: "operator", Action: "tenant.created", Details: map[string]string{"plan": "starter"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.store.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if err := db.store.DeleteTenant(ctx, "acme"); err != nil {
		t.Errorf("deleting a deleted tenant: %v, want success", err)
	}

	owned := map[string]string{
		"tenants":      "SELECT count(*) FROM tenants WHERE id = $1",
		"users":        "SELECT count(*) FROM users WHERE tenant_id = $1",
		"api_keys":     "SELECT count(*) FROM api_keys WHERE tenant_id = $1",
		"dashboards":   "SELECT count(*) FROM dashboards WHERE tenant_id = $1",
		"widgets":      "SELECT count(*) FROM widgets w JOIN dashboards d ON d.id = w.dashboard_id WHERE d.tenant_id = $1",
		"data_sources": "SELECT count(*) FROM data_sources WHERE tenant_id = $1",
		"alert_rules":  "SELECT count(*) FROM alert_rules WHERE tenant_id = $1",
		"alerts":       "SELECT count(*) FROM alerts WHERE tenant_id = $1",
	}
	for table, q := range owned {
		if n := db.count(t, q, "acme"); n != 0 {
			t.Errorf("%s: %d rows of the deleted tenant remain", table, n)
		}
		if n := db.count(t, q, "globex"); n == 0 {
			t.Errorf("%s: the other tenant's rows went too", table)
		}
	}
	if n := db.count(t, "SELECT count(*) FROM widgets"); n != 1 {
		t.Errorf("%d widgets remain, want globex's 1", n)
	}
	if n := db.count(t, "SELECT count(*) FROM audit_log WHERE tenant_id = 'acme' AND details->>'plan' = 'starter'"); n != 1 {
		t.Errorf("the deleted tenant's audit log has %d entries, want it kept (1)", n)
	}
}

func testDSNFile(t *testing.T, pg *testbackends.Postgres) {
	dsn := pg.CreateDatabase(t, "dsn_file")
	path := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(path, []byte(dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctxFor(t), Config{DSNFile: path})
	if err != nil {
		t.Fatalf("Open with DSNFile: %v", err)
	}
	defer s.Close()
	if err := s.Ping(ctxFor(t)); err != nil {
		t.Error(err)
	}
	if _, err := Open(ctxFor(t), Config{DSNFile: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("Open with a missing DSN file succeeded")
	}
}

// TestUnavailable stops the server under an open store: calls fail fast with an error
// IsUnavailable recognises, and work again once the server is back.
func TestUnavailable(t *testing.T) {
	pg := testbackends.StartPostgres(t)
	dsn := pg.CreateDatabase(t, "outage")
	ctx := ctxFor(t)
	store, err := Open(ctx, Config{DSN: dsn, ConnectTimeout: metav1.Duration{Duration: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.UpsertTenant(ctx, TenantRecord{ID: "acme", Plan: "starter", Isolation: IsolationShared}); err != nil {
		t.Fatal(err)
	}

	pg.Stop(t)
	for _, call := range []string{"first", "second"} { // the pooled connection, then a new one
		start := time.Now()
		_, err := store.GetTenant(ctx, "acme")
		if !IsUnavailable(err) {
			t.Errorf("%s call with the server down: %v, want an unavailable error", call, err)
		}
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Errorf("%s call with the server down took %s", call, elapsed)
		}
	}

	start := time.Now()
	if _, err := Open(ctx, Config{DSN: dsn}); !IsUnavailable(err) || time.Since(start) > 5*time.Second {
		t.Errorf("Open with the server down: %v after %s, want an unavailable error at once", err, time.Since(start))
	}

	pg.Start(t)
	got, err := store.GetTenant(ctx, "acme")
	if err != nil || got.ID != "acme" {
		t.Fatalf("first call after restart: %+v, %v", got, err)
	}
}

func TestIsUnavailable(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"not found", fmt.Errorf("x: %w", ErrNotFound), false},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"admin shutdown", fmt.Errorf("x: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"connection failure class", &pgconn.PgError{Code: "08006"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"canceled", context.Canceled, false},
	}
	for _, c := range cases {
		if got := IsUnavailable(c.err); got != c.want {
			t.Errorf("%s: IsUnavailable = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name       string
		cfg        Config
		wantFields []string
	}{
		{"dsn", Config{DSN: "postgres://u@h/db"}, nil},
		{"dsn file", Config{DSNFile: "/etc/shoal/dsn"}, nil},
		{"neither", Config{}, []string{"metastore.dsn"}},
		{"both", Config{DSN: "postgres://u@h/db", DSNFile: "/x"}, []string{"metastore.dsnFile"}},
		{"bad dsn", Config{DSN: "postgres://u@h:notaport/db"}, []string{"metastore.dsn"}},
		{"limits", Config{DSN: "postgres://u@h/db", MaxConns: -1, ConnectTimeout: metav1.Duration{Duration: time.Hour}},
			[]string{"metastore.maxConns", "metastore.connectTimeout"}},
	}
	for _, c := range cases {
		errs := c.cfg.Validate(field.NewPath("metastore"))
		var got []string
		for _, e := range errs {
			got = append(got, e.Field)
			if strings.Contains(e.Error(), "notaport") {
				t.Errorf("%s: the error echoes the DSN: %v", c.name, e)
			}
		}
		if strings.Join(got, ",") != strings.Join(c.wantFields, ",") {
			t.Errorf("%s: invalid fields %v, want %v", c.name, got, c.wantFields)
		}
	}
	var cfg Config
	cfg.Default()
	if cfg.MaxConns != DefaultMaxConns || cfg.ConnectTimeout.Duration != DefaultConnectTimeout {
		t.Errorf("defaults: %+v", cfg)
	}
}
