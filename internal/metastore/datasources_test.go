package metastore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shoal-dev/shoal/internal/sealing"
	"github.com/shoal-dev/shoal/internal/testbackends"
)

// TestDataSources runs the data source cases against one server, each in its own database.
func TestDataSources(t *testing.T) {
	pg := testbackends.StartPostgres(t)
	t.Run("CRUD", func(t *testing.T) { testDataSourceCRUD(t, pg) })
	t.Run("Sealing", func(t *testing.T) { testDataSourceSealing(t, pg) })
	t.Run("Isolation", func(t *testing.T) { testDataSourceIsolation(t, pg) })
	t.Run("Sync", func(t *testing.T) { testDataSourceSync(t, pg) })
}

// keyrings: "k1" only; k1 and k2 with k2 current (rotated); k2 only (k1 retired).
func keyrings(t *testing.T) (k1, rotated, retired *sealing.Keyring) {
	t.Helper()
	key := func(b byte) []byte { return bytes.Repeat([]byte{b}, sealing.KeySize) }
	var err error
	if k1, err = sealing.NewKeyring("k1", map[string][]byte{"k1": key(1)}); err != nil {
		t.Fatal(err)
	}
	if rotated, err = sealing.NewKeyring("k2", map[string][]byte{"k1": key(1), "k2": key(2)}); err != nil {
		t.Fatal(err)
	}
	if retired, err = sealing.NewKeyring("k2", map[string][]byte{"k2": key(2)}); err != nil {
		t.Fatal(err)
	}
	return k1, rotated, retired
}

const secretPassword = "correct-horse-battery-staple-0451"

func postgresSource(name string) DataSourceSpec {
	return DataSourceSpec{
		Name: name, Type: DataSourcePostgres,
		Config:      json.RawMessage(`{"host":"db.example.com","port":5432,"database":"crm","query":"SELECT 1"}`),
		Credentials: map[string]string{"username": "reader", "password": secretPassword},
	}
}

// keyIDOf reads the row's key id behind the store's back.
func keyIDOf(t *testing.T, db testDB, id string) string {
	t.Helper()
	var keyID string
	if err := db.sql.QueryRow(ctxFor(t), "SELECT key_id FROM data_sources WHERE id = $1", id).Scan(&keyID); err != nil {
		t.Fatal(err)
	}
	return keyID
}

// noPlaintext fails if any row of any table holds the secret.
func noPlaintext(t *testing.T, db testDB, secret string) {
	t.Helper()
	for _, table := range publicTables(t, db) {
		q := fmt.Sprintf("SELECT count(*) FROM %s r WHERE strpos(r::text, $1) > 0 OR strpos(encode(convert_to(r::text, 'UTF8'), 'escape'), $1) > 0",
			pgx.Identifier{table}.Sanitize())
		if n := db.count(t, q, secret); n != 0 {
			t.Errorf("table %s holds the plaintext secret in %d rows", table, n)
		}
	}
	if n := db.count(t, "SELECT count(*) FROM data_sources WHERE position(convert_to($1, 'UTF8') in coalesce(credentials, '')) > 0", secret); n != 0 {
		t.Errorf("%d credentials columns hold the plaintext secret", n)
	}
}

func testDataSourceCRUD(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	k1, rotated, _ := keyrings(t)
	ds := db.store.DataSources(k1)

	spec := postgresSource("crm")
	created, err := ds.Create(ctx, "acme", spec)
	if err != nil {
		t.Fatal(err)
	}
	if !created.HasCredentials || created.Name != "crm" || created.Type != DataSourcePostgres || created.Version != 1 ||
		!sameJSON(t, created.Config, spec.Config) || created.TenantID != "acme" {
		t.Errorf("created %+v", created)
	}
	if keyIDOf(t, db, created.ID) != "k1" {
		t.Errorf("sealed with key %q, want k1", keyIDOf(t, db, created.ID))
	}
	noPlaintext(t, db, secretPassword)
	if creds, err := ds.Credentials(ctx, "acme", created.ID); err != nil || !maps.Equal(creds, spec.Credentials) {
		t.Errorf("Credentials: %v, %v", creds, err)
	}
	got, err := ds.Get(ctx, "acme", created.ID)
	if err != nil || !got.HasCredentials || !got.UpdatedAt.Equal(created.UpdatedAt) {
		t.Errorf("Get: %+v, %v", got, err)
	}
	if strings.Contains(fmt.Sprintf("%+v", got), secretPassword) {
		t.Error("Get returns the plaintext credentials")
	}

	plain, err := ds.Create(ctx, "acme", DataSourceSpec{Name: "hook", Type: DataSourceWebhook, Config: json.RawMessage(`{"mapping":{"eventType":"order"}}`)})
	if err != nil || plain.HasCredentials {
		t.Fatalf("a source without credentials: %+v, %v", plain, err)
	}
	if creds, err := ds.Credentials(ctx, "acme", plain.ID); err != nil || creds != nil {
		t.Errorf("Credentials of a source without any: %v, %v", creds, err)
	}

	// Updates, with the rotated keyring: every write seals with the current key.
	ds = db.store.DataSources(rotated)
	steps := []struct {
		name      string
		creds     map[string]string
		wantCreds map[string]string
	}{
		{"credentials kept", nil, spec.Credentials},
		{"credentials replaced", map[string]string{"password": "other-" + secretPassword}, map[string]string{"password": "other-" + secretPassword}},
		{"credentials removed", map[string]string{}, nil},
	}
	version := created.Version
	for _, step := range steps {
		up := spec
		up.Config = json.RawMessage(`{"host":"10.0.0.7","database":"crm2"}`)
		up.Credentials = step.creds
		after, err := ds.Update(ctx, "acme", created.ID, up)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if after.Version != version+1 || !sameJSON(t, after.Config, up.Config) || after.HasCredentials != (step.wantCreds != nil) {
			t.Errorf("%s: %+v", step.name, after)
		}
		version = after.Version
		creds, err := ds.Credentials(ctx, "acme", created.ID)
		if err != nil || !maps.Equal(creds, step.wantCreds) {
			t.Errorf("%s: credentials %v, %v; want %v", step.name, creds, err, step.wantCreds)
		}
		if step.wantCreds != nil && keyIDOf(t, db, created.ID) != "k2" {
			t.Errorf("%s: sealed with %q, want the current key k2", step.name, keyIDOf(t, db, created.ID))
		}
	}
	noPlaintext(t, db, secretPassword)

	if _, err := ds.Create(ctx, "acme", postgresSource("crm")); !errors.Is(err, ErrNameTaken) {
		t.Errorf("a taken name: %v, want ErrNameTaken", err)
	}
	if _, err := ds.Create(ctx, "nobody", postgresSource("x")); !errors.Is(err, ErrNotFound) {
		t.Errorf("a missing tenant: %v, want ErrNotFound", err)
	}
	var invalidErr *InvalidError
	if _, err := ds.Create(ctx, "acme", DataSourceSpec{Name: "bad", Type: DataSourceHTTP, Config: json.RawMessage(`{}`)}); !errors.As(err, &invalidErr) {
		t.Errorf("an invalid config: %v, want an InvalidError", err)
	}

	// Pages across the tenant's sources, in name order, without repeats.
	for i := range 7 {
		if _, err := ds.Create(ctx, "acme", postgresSource(fmt.Sprintf("src-%d", 6-i))); err != nil {
			t.Fatal(err)
		}
	}
	names, pages := listAll(t, 3, func(opts ListOptions) ([]string, string, error) {
		page, err := ds.List(ctx, "acme", opts)
		var names []string
		for _, d := range page.Items {
			names = append(names, d.Name)
		}
		return names, page.Next, err
	})
	want := []string{"crm", "hook", "src-0", "src-1", "src-2", "src-3", "src-4", "src-5", "src-6"}
	if !slices.Equal(names, want) || pages != 3 {
		t.Errorf("listed %v in %d pages, want %v in 3", names, pages, want)
	}

	if err := ds.Delete(ctx, "acme", created.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ds.Get(ctx, "acme", created.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
	if err := ds.Delete(ctx, "acme", created.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete twice: %v", err)
	}
}

func testDataSourceSealing(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	db.tenant(t, "globex")
	k1, rotated, retired := keyrings(t)

	var ids []string
	for i := range 3 {
		d, err := db.store.DataSources(k1).Create(ctx, "acme", postgresSource(fmt.Sprintf("src-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.ID)
	}
	victim, err := db.store.DataSources(k1).Create(ctx, "globex", postgresSource("victim"))
	if err != nil {
		t.Fatal(err)
	}

	// A ciphertext copied onto another row, even of the same tenant, does not open.
	db.exec(t, `UPDATE data_sources SET credentials = (SELECT credentials FROM data_sources WHERE id = $1),
		key_id = (SELECT key_id FROM data_sources WHERE id = $1) WHERE id = $2`, ids[0], ids[1])
	db.exec(t, `UPDATE data_sources SET credentials = (SELECT credentials FROM data_sources WHERE id = $1) WHERE id = $2`, ids[0], victim.ID)
	for what, call := range map[string]func() error{
		"same tenant":  func() error { _, err := db.store.DataSources(k1).Credentials(ctx, "acme", ids[1]); return err },
		"other tenant": func() error { _, err := db.store.DataSources(k1).Credentials(ctx, "globex", victim.ID); return err },
	} {
		if err := call(); !errors.Is(err, sealing.ErrOpen) {
			t.Errorf("credentials copied to a row of the %s: %v, want sealing.ErrOpen", what, err)
		}
	}
	db.exec(t, "DELETE FROM data_sources WHERE id = $1", ids[1])
	ids = []string{ids[0], ids[2]}

	// Rotation: the old key still opens; a key the keyring lacks is reported as such.
	if _, err := db.store.DataSources(rotated).Credentials(ctx, "acme", ids[0]); err != nil {
		t.Errorf("the rotated keyring opening a k1 row: %v", err)
	}
	if _, err := db.store.DataSources(retired).Credentials(ctx, "acme", ids[0]); !errors.Is(err, sealing.ErrUnknownKey) {
		t.Errorf("opening a k1 row without k1: %v, want sealing.ErrUnknownKey", err)
	}
	// Reseal moves every row that opens to the current key and reports the one that does
	// not (globex's tampered row).
	n, err := db.store.DataSources(rotated).Reseal(ctx)
	if err == nil || !strings.Contains(err.Error(), victim.ID) {
		t.Errorf("Reseal: %v, want the tampered row reported", err)
	}
	if n != len(ids) {
		t.Errorf("Reseal re-sealed %d rows, want %d", n, len(ids))
	}
	db.exec(t, "DELETE FROM data_sources WHERE id = $1", victim.ID)
	if n, err := db.store.DataSources(rotated).Reseal(ctx); n != 0 || err != nil {
		t.Errorf("Reseal again: %d, %v; want nothing to do", n, err)
	}
	for _, id := range ids {
		if keyIDOf(t, db, id) != "k2" {
			t.Errorf("row %s still sealed with %s", id, keyIDOf(t, db, id))
		}
		creds, err := db.store.DataSources(retired).Credentials(ctx, "acme", id)
		if err != nil || creds["password"] != secretPassword {
			t.Errorf("after Reseal, k2 alone opens %s as %v, %v", id, creds, err)
		}
	}
	noPlaintext(t, db, secretPassword)
}

func testDataSourceIsolation(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	db.tenant(t, "globex")
	k1, _, _ := keyrings(t)
	ds := db.store.DataSources(k1)

	theirs, err := ds.Create(ctx, "globex", postgresSource("crm"))
	if err != nil {
		t.Fatal(err)
	}
	managed, err := ds.Sync(ctx, "globex", "globex/crm2", postgresSource("crm2"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ds.Create(ctx, "acme", postgresSource("crm")); err != nil {
		t.Fatal(err)
	}

	for what, id := range map[string]string{
		"globex's source":  theirs.ID,
		"globex's managed": managed.ID,
		"guessed uuid":     "8d2a1b6e-3c4f-4a5b-9c8d-7e6f5a4b3c2d",
		"not a uuid":       "' OR ''='",
	} {
		for call, err := range map[string]error{
			"get":         func() error { _, err := ds.Get(ctx, "acme", id); return err }(),
			"credentials": func() error { _, err := ds.Credentials(ctx, "acme", id); return err }(),
			"update":      func() error { _, err := ds.Update(ctx, "acme", id, postgresSource("stolen")); return err }(),
			"delete":      ds.Delete(ctx, "acme", id),
		} {
			var managedErr *ManagedError
			if !errors.Is(err, ErrNotFound) || errors.As(err, &managedErr) {
				t.Errorf("acme %s of %s: %v, want ErrNotFound and nothing more", call, what, err)
			}
		}
	}
	page, err := ds.List(ctx, "acme", ListOptions{})
	if err != nil || len(page.Items) != 1 || page.Items[0].TenantID != "acme" {
		t.Errorf("acme lists %+v, %v; want only its own source", page.Items, err)
	}
	for _, id := range []string{theirs.ID, managed.ID} {
		got, err := ds.Get(ctx, "globex", id)
		if err != nil || got.Version != 1 {
			t.Errorf("globex's source %s after acme's attempts: %+v, %v", id, got, err)
		}
		if creds, err := ds.Credentials(ctx, "globex", id); err != nil || creds["password"] != secretPassword {
			t.Errorf("globex's credentials after acme's attempts: %v, %v", creds, err)
		}
	}
}

func testDataSourceSync(t *testing.T, pg *testbackends.Postgres) {
	db := newDB(t, pg)
	ctx := ctxFor(t)
	db.tenant(t, "acme")
	k1, rotated, _ := keyrings(t)
	const owner = "acme-ns/crm"

	base := postgresSource("crm")
	respaced := base
	respaced.Config = json.RawMessage("{\"host\": \"db.example.com\",  \"port\": 5432, \"database\": \"crm\", \"query\": \"SELECT 1\"}")
	newPassword := base
	newPassword.Credentials = map[string]string{"username": "reader", "password": "new-" + secretPassword}
	noCreds := newPassword
	noCreds.Credentials = nil

	steps := []struct {
		name      string
		keys      *sealing.Keyring
		spec      DataSourceSpec
		wantWrote bool
		wantKey   string
	}{
		{"first sync creates", k1, base, true, "k1"},
		{"same spec", k1, base, false, "k1"},
		{"same spec, config spaced differently", k1, respaced, false, "k1"},
		{"credentials changed", k1, newPassword, true, "k1"},
		{"key rotated: sealed again", rotated, newPassword, true, "k2"},
		{"rotated, unchanged", rotated, newPassword, false, "k2"},
		{"credentials removed", rotated, noCreds, true, ""},
		{"no credentials, unchanged", rotated, noCreds, false, ""},
	}
	type rowState struct {
		version     int64
		updatedAt   time.Time
		credentials []byte
	}
	read := func(id string) rowState {
		var s rowState
		if err := db.sql.QueryRow(ctx, "SELECT version, updated_at, credentials FROM data_sources WHERE id = $1", id).
			Scan(&s.version, &s.updatedAt, &s.credentials); err != nil {
			t.Fatal(err)
		}
		return s
	}
	var last rowState
	for i, step := range steps {
		time.Sleep(5 * time.Millisecond)
		res, err := db.store.DataSources(step.keys).Sync(ctx, "acme", owner, step.spec)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if res.Wrote != step.wantWrote {
			t.Errorf("%s: wrote %v, want %v", step.name, res.Wrote, step.wantWrote)
		}
		now := read(res.ID)
		if i > 0 {
			unchanged := now.version == last.version && now.updatedAt.Equal(last.updatedAt) && bytes.Equal(now.credentials, last.credentials)
			if unchanged == step.wantWrote {
				t.Errorf("%s: row %+v -> %+v, want a write %v", step.name, last, now, step.wantWrote)
			}
		}
		last = now
		if got := keyIDOf(t, db, res.ID); got != step.wantKey {
			t.Errorf("%s: key id %q, want %q", step.name, got, step.wantKey)
		}
		creds, err := db.store.DataSources(step.keys).Credentials(ctx, "acme", res.ID)
		if err != nil || !maps.Equal(creds, step.spec.Credentials) {
			t.Errorf("%s: credentials %v, %v", step.name, creds, err)
		}
	}

	ds := db.store.DataSources(rotated)
	page, err := ds.List(ctx, "acme", ListOptions{})
	if err != nil || len(page.Items) != 1 || page.Items[0].ManagedBy != owner {
		t.Fatalf("after syncs: %+v, %v", page.Items, err)
	}
	id := page.Items[0].ID
	for call, err := range map[string]error{
		"update": func() error { _, err := ds.Update(ctx, "acme", id, base); return err }(),
		"delete": ds.Delete(ctx, "acme", id),
	} {
		var managedErr *ManagedError
		if !errors.As(err, &managedErr) || managedErr.ManagedBy != owner || managedErr.Kind != "DataSource" {
			t.Errorf("API %s of a managed source: %v, want a ManagedError naming %s", call, err, owner)
		}
	}
	if _, err := ds.Sync(ctx, "acme", "acme-ns/other", base); !errors.Is(err, ErrNameTaken) {
		t.Errorf("a second object with the same name: %v, want ErrNameTaken", err)
	}
	for range 2 {
		if err := ds.DeleteManaged(ctx, "acme", owner); err != nil {
			t.Fatal(err)
		}
	}
	if n := db.count(t, "SELECT count(*) FROM data_sources"); n != 0 {
		t.Errorf("%d data sources after DeleteManaged, want 0", n)
	}
}

func TestValidateDataSourceConfig(t *testing.T) {
	cases := []struct {
		name       string
		typ        string
		config     string
		wantFields []string
	}{
		{"http", "http", `{"url":"https://api.example.com/v1/orders","recordsPath":"data.items"}`, nil},
		{"http without url", "http", `{}`, []string{"config.url"}},
		{"http empty config", "http", ``, []string{"config.url"}},
		{"http ftp url", "http", `{"url":"ftp://example.com/x"}`, []string{"config.url"}},
		{"http relative url", "http", `{"url":"/orders"}`, []string{"config.url"}},
		{"http url with password", "http", `{"url":"https://u:p@example.com/"}`, []string{"config.url"}},
		{"http url not a string", "http", `{"url":42}`, []string{"config.url"}},
		{"postgres", "postgres", `{"host":"db.internal","port":6432,"database":"crm","cursorColumn":"id","sslMode":"require"}`, nil},
		{"postgres ip", "postgres", `{"host":"10.1.2.3","database":"crm"}`, nil},
		{"postgres missing", "postgres", `{}`, []string{"config.host", "config.database"}},
		{"postgres port in host", "postgres", `{"host":"db:5432","database":"crm"}`, []string{"config.host"}},
		{"postgres bad port", "postgres", `{"host":"db","port":70000,"database":"crm"}`, []string{"config.port"}},
		{"postgres port string", "postgres", `{"host":"db","port":"5432","database":"crm"}`, []string{"config.port"}},
		{"postgres fractional port", "postgres", `{"host":"db","port":54.3,"database":"crm"}`, []string{"config.port"}},
		{"postgres bad database", "postgres", `{"host":"db","database":"crm; drop"}`, []string{"config.database"}},
		{"postgres password in config", "postgres", `{"host":"db","database":"crm","password":"x"}`, []string{"config.password"}},
		{"s3", "s3", `{"bucket":"acme-exports","region":"eu-west-1","endpoint":"http://minio:9000","format":"csv"}`, nil},
		{"s3 bucket only", "s3", `{"bucket":"acme-exports"}`, nil},
		{"s3 bad", "s3", `{"bucket":"Acme_Exports","region":"EU West","endpoint":"minio:9000","format":"xml"}`,
			[]string{"config.bucket", "config.region", "config.endpoint", "config.format"}},
		{"s3 secret key in config", "s3", `{"bucket":"acme-exports","secretAccessKey":"x","accessKeyID":"y"}`,
			[]string{"config.accessKeyID", "config.secretAccessKey"}},
		{"webhook", "webhook", `{"mapping":{"eventType":"order"}}`, nil},
		{"webhook without config", "webhook", ``, nil},
		{"webhook with a url", "webhook", `{"url":"http://hooks.example.com/in"}`, []string{"config.url"}},
		{"webhook unknown field", "webhook", `{"schedule":"@every 5m"}`, []string{"config.schedule"}},
		{"webhook mapping not an object", "webhook", `{"mapping":[]}`, []string{"config.mapping"}},
		{"unknown type", "ftp", `{}`, []string{"type"}},
		{"not an object", "http", `[1,2]`, []string{"config"}},
		{"two objects", "http", `{"url":"http://a.example.com"}{}`, []string{"config"}},
	}
	for _, c := range cases {
		errs := ValidateDataSourceConfig(c.typ, json.RawMessage(c.config))
		var got []string
		for _, e := range errs {
			got = append(got, e.Field)
			if strings.Contains(e.Error(), "secretAccessKey\":\"x") {
				t.Errorf("%s: the error echoes a secret: %v", c.name, e)
			}
		}
		if strings.Join(got, ",") != strings.Join(c.wantFields, ",") {
			t.Errorf("%s: invalid fields %v, want %v (%v)", c.name, got, c.wantFields, errs)
		}
	}
}
