package clickhouse

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/internal/testbackends"
)

func newTestClient(t *testing.T, srv *testbackends.ClickHouse) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := New(ctx, Config{
		Addr: srv.Addr, User: srv.User, Password: srv.Password, UsersDir: srv.UsersDir,
		DialTimeout: metav1.Duration{Duration: 2 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// tenantConn connects as a tenant user straight through the driver.
func tenantConn(t *testing.T, addr, user, password, db string) driver.Conn {
	t.Helper()
	conn, err := ch.Open(&ch.Options{Addr: []string{addr}, Auth: ch.Auth{Database: db, Username: user, Password: password}, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// eventually polls f every 200 ms until it returns nil, failing after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestTenantDatabaseLifecycle(t *testing.T) {
	srv := testbackends.StartClickHouse(t)
	c := newTestClient(t, srv)
	ctx := context.Background()
	t.Logf("server %s, features %+v, sql users %v", c.Version(), c.Dialect().Features, c.sqlUsers)

	a := TenantDB{Database: "tenant_a", User: "tenant_a", Password: "pw-a", RetentionDays: 30}
	b := TenantDB{Database: "tenant_b", User: "tenant_b", Password: "pw-b", RetentionDays: 30}
	for _, spec := range []TenantDB{a, a, b} { // twice: idempotent
		if err := c.EnsureTenantDatabase(ctx, spec); err != nil {
			t.Fatalf("ensure %s: %v", spec.Database, err)
		}
	}

	// The events table has the expected columns.
	rows, err := c.conn.Query(ctx, "SELECT name, type FROM system.columns WHERE database = ? AND table = ? ORDER BY name", a.Database, EventsTable)
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, name+" "+typ)
	}
	_ = rows.Close()
	eventType := "String"
	if c.Dialect().Features.LowCardinality {
		eventType = "LowCardinality(String)"
	}
	want := []string{"event_id String", "event_type " + eventType, "properties String", "received_at DateTime",
		"session_id String", "timestamp DateTime", "user_id String"}
	sort.Strings(want)
	if strings.Join(cols, ",") != strings.Join(want, ",") {
		t.Errorf("events columns = %v, want %v", cols, want)
	}

	// Insert with explicit columns; the same event twice collapses after OPTIMIZE FINAL.
	insert := "INSERT INTO `tenant_a`.`events` (event_id, event_type, timestamp, received_at, user_id, session_id, properties) VALUES"
	ts := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for i, id := range []string{"0190c3f4-0000-7000-8000-000000000001", "0190c3f4-0000-7000-8000-000000000001", "0190c3f4-0000-7000-8000-000000000002"} {
		batch, err := c.conn.PrepareBatch(ctx, insert)
		if err != nil {
			t.Fatal(err)
		}
		if err := batch.Append(id, "page_view", ts, ts.Add(time.Duration(i)*time.Second), "u1", "s1", `{"path":"/"}`); err != nil {
			t.Fatal(err)
		}
		if err := batch.Send(); err != nil { // one part per insert, so the duplicate is in another part
			t.Fatal(err)
		}
	}
	count := func() uint64 {
		var n uint64
		if err := c.conn.QueryRow(ctx, "SELECT count() FROM `tenant_a`.`events`").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 3 {
		t.Fatalf("%d rows before dedup, want 3", n)
	}
	if err := c.conn.Exec(ctx, "OPTIMIZE TABLE `tenant_a`.`events` FINAL"); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2 {
		t.Errorf("%d rows after OPTIMIZE FINAL, want 2 (duplicate event_id collapsed)", n)
	}

	// A record quarantined twice (redelivered after a crash) collapses the same way.
	for i := range 2 {
		batch, err := c.conn.PrepareBatch(ctx, "INSERT INTO `tenant_a`.`quarantine` (raw, reason, received_at, topic, partition, offset) VALUES")
		if err != nil {
			t.Fatal(err)
		}
		if err := batch.Append("{bad", "not JSON", ts.Add(time.Duration(i)*time.Second), "shoal-events-a", int32(0), int64(42)); err != nil {
			t.Fatal(err)
		}
		if err := batch.Send(); err != nil {
			t.Fatal(err)
		}
	}
	var quarantined uint64
	if err := c.conn.QueryRow(ctx, "SELECT count() FROM `tenant_a`.`quarantine` FINAL").Scan(&quarantined); err != nil || quarantined != 1 {
		t.Errorf("quarantine count FINAL = %d (err %v), want 1", quarantined, err)
	}

	// The tenant user reads its own database and is refused the other tenant's.
	own := tenantConn(t, srv.Addr, a.User, a.Password, a.Database)
	eventually(t, 30*time.Second, "tenant_a reading its events", func() error {
		var n uint64
		return own.QueryRow(ctx, "SELECT count() FROM `tenant_a`.`events`").Scan(&n)
	})
	var n uint64
	err = own.QueryRow(ctx, "SELECT count() FROM `tenant_b`.`events`").Scan(&n)
	var ex *ch.Exception
	if !errors.As(err, &ex) || (ex.Code != 291 && ex.Code != 497) { // ACCESS_DENIED (18.16 / SQL users)
		t.Errorf("tenant_a reading tenant_b: err = %v, want access denied", err)
	}

	// Drift: a dropped events table is reported and restored.
	if err := c.conn.Exec(ctx, "DROP TABLE `tenant_a`.`events`"); err != nil {
		t.Fatal(err)
	}
	exists, events, err := c.DatabaseStatus(ctx, a.Database)
	if err != nil || !exists || events {
		t.Errorf("after DROP TABLE: status = %v, %v, %v; want true, false, nil", exists, events, err)
	}
	if err := c.EnsureTenantDatabase(ctx, a); err != nil {
		t.Fatal(err)
	}
	if exists, events, err = c.DatabaseStatus(ctx, a.Database); err != nil || !exists || !events {
		t.Errorf("after ensure: status = %v, %v, %v; want true, true, nil", exists, events, err)
	}

	// Drop removes database and user, and is idempotent.
	for range 2 {
		if err := c.DropTenantDatabase(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if exists, _, err := c.DatabaseStatus(ctx, b.Database); err != nil || exists {
		t.Errorf("after drop: exists = %v, %v; want false", exists, err)
	}
	if _, err := os.Stat(filepath.Join(srv.UsersDir, b.User+".xml")); !os.IsNotExist(err) {
		t.Errorf("user file of %s still there: %v", b.User, err)
	}
	eventually(t, 30*time.Second, "tenant_b refused after drop", func() error {
		// A new connection each time: a pooled one stays logged in.
		gone, err := ch.Open(&ch.Options{Addr: []string{srv.Addr}, Auth: ch.Auth{Username: b.User, Password: b.Password}, DialTimeout: 2 * time.Second})
		if err != nil {
			return err
		}
		defer func() { _ = gone.Close() }()
		var one uint8
		if err := gone.QueryRow(ctx, "SELECT 1").Scan(&one); err == nil {
			return errors.New("tenant_b still logs in")
		}
		return nil
	})
}

func TestDropPartitionsBefore(t *testing.T) {
	srv := testbackends.StartClickHouse(t)
	c := newTestClient(t, srv)
	ctx := context.Background()
	spec := TenantDB{Database: "tenant_r", User: "tenant_r", Password: "pw"}
	if err := c.EnsureTenantDatabase(ctx, spec); err != nil {
		t.Fatal(err)
	}
	insert := "INSERT INTO `tenant_r`.`events` (event_id, event_type, timestamp, received_at, user_id, session_id, properties) VALUES"
	batch, err := c.conn.PrepareBatch(ctx, insert)
	if err != nil {
		t.Fatal(err)
	}
	for i, month := range []time.Month{time.January, time.February, time.March} {
		ts := time.Date(2026, month, 15, 0, 0, 0, 0, time.UTC)
		if err := batch.Append(string(rune('a'+i)), "t", ts, ts, "", "", "{}"); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	dropped, err := c.DropPartitionsBefore(ctx, spec.Database, time.Date(2026, time.March, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if dropped != 2 {
		t.Errorf("dropped %d partitions, want 2 (January and February)", dropped)
	}
	var left []string
	rows, err := c.conn.Query(ctx, "SELECT event_id FROM `tenant_r`.`events` ORDER BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		left = append(left, id)
	}
	_ = rows.Close()
	if strings.Join(left, ",") != "c" {
		t.Errorf("events left = %v, want only March's c", left)
	}
}

func TestOutage(t *testing.T) {
	srv := testbackends.StartClickHouse(t)
	c := newTestClient(t, srv)
	spec := TenantDB{Database: "tenant_o", User: "tenant_o", Password: "pw"}
	ctx := context.Background()
	if err := c.EnsureTenantDatabase(ctx, spec); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	start := time.Now()
	octx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, _, err := c.DatabaseStatus(octx, spec.Database)
	if err == nil {
		t.Fatal("DatabaseStatus succeeded with the server stopped")
	}
	t.Logf("with the server down: %v", err)
	if !IsUnavailable(err) {
		t.Errorf("IsUnavailable(%v) = false, want true", err)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("the error took %s, want it within the dial timeout", took)
	}
	// A fresh client cannot connect either, and says so the same way.
	if _, err := New(octx, Config{Addr: srv.Addr, User: srv.User, Password: srv.Password, DialTimeout: metav1.Duration{Duration: time.Second}}); !IsUnavailable(err) {
		t.Errorf("New with the server down: IsUnavailable(%v) = false", err)
	}

	srv.Restart(t)
	eventually(t, 30*time.Second, "ensure after restart", func() error { return c.EnsureTenantDatabase(ctx, spec) })
	exists, events, err := c.DatabaseStatus(ctx, spec.Database)
	if err != nil || !exists || !events {
		t.Errorf("after restart: status = %v, %v, %v; want true, true, nil", exists, events, err)
	}
}

func TestIsUnavailable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("boom"), false},
		{&ch.Exception{Code: 291, Message: "Access denied"}, false},
		{&ch.Exception{Code: 210, Message: "Connection refused"}, true},
		{ch.ErrAcquireConnTimeout, true},
		{context.DeadlineExceeded, true},
	}
	for _, tt := range tests {
		if got := IsUnavailable(tt.err); got != tt.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestUserManagementChoices covers the user modes on the server at hand and a rotated
// password converging through Ensure.
func TestUserManagementChoices(t *testing.T) {
	srv := testbackends.StartClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := Config{Addr: srv.Addr, User: srv.User, Password: srv.Password}

	c, err := New(ctx, base) // auto, no usersDir
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	spec := TenantDB{Database: "tenant_u", User: "tenant_u", Password: "first"}
	err = c.EnsureTenantDatabase(ctx, spec)
	if c.Dialect().Features.SQLUsers {
		if err != nil {
			t.Fatalf("auto with SQL users: %v", err)
		}
	} else {
		if err == nil || !strings.Contains(err.Error(), "no usersDir") {
			t.Fatalf("auto without SQL users or usersDir: err = %v, want one naming usersDir", err)
		}
		sqlCfg := base
		sqlCfg.UserManagement = UserManagementSQL
		if _, err := New(ctx, sqlCfg); err == nil || !strings.Contains(err.Error(), "no SQL users") {
			t.Errorf("userManagement sql on %s: err = %v, want one saying there are no SQL users", c.Version(), err)
		}
	}

	files := base
	files.UserManagement, files.UsersDir = UserManagementFiles, srv.UsersDir
	fc, err := New(ctx, files)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = fc.Close() }()
	login := func(password string) error {
		conn, err := ch.Open(&ch.Options{Addr: []string{srv.Addr}, Auth: ch.Auth{Database: spec.Database, Username: spec.User, Password: password}, DialTimeout: 2 * time.Second})
		if err != nil {
			return err
		}
		defer func() { _ = conn.Close() }()
		var n uint64
		return conn.QueryRow(ctx, "SELECT count() FROM `tenant_u`.`events`").Scan(&n)
	}
	if err := fc.EnsureTenantDatabase(ctx, spec); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "login with the first password", func() error { return login("first") })

	spec.Password = "second"
	if err := fc.EnsureTenantDatabase(ctx, spec); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "login with the rotated password", func() error { return login("second") })
	if err := login("first"); err == nil {
		t.Error("the old password still logs in after rotation")
	}
}

func TestTenantDBValidate(t *testing.T) {
	tests := []struct {
		name string
		spec TenantDB
		want string // part of the error; empty for valid
	}{
		{"with user", TenantDB{Database: "tenant_a", User: "tenant_a", Password: "pw"}, ""},
		{"without user (Dedicated)", TenantDB{Database: "tenant_a"}, ""},
		{"bad database", TenantDB{Database: "tenant-a"}, "tenant database"},
		{"bad user", TenantDB{Database: "tenant_a", User: "a b", Password: "pw"}, "tenant user"},
		{"user without password", TenantDB{Database: "tenant_a", User: "tenant_a"}, "empty password"},
		{"password without user", TenantDB{Database: "tenant_a", Password: "pw"}, "without a user"},
		{"negative retention", TenantDB{Database: "tenant_a", RetentionDays: -1}, "negative retention"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("validate = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("validate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestTenantDatabaseWithoutUser is a Dedicated tenant: database and tables only, and a
// drop that touches no user.
func TestTenantDatabaseWithoutUser(t *testing.T) {
	srv := testbackends.StartClickHouse(t)
	c := newTestClient(t, srv)
	ctx := context.Background()
	users := func() []string {
		var names []string
		entries, err := os.ReadDir(srv.UsersDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			names = append(names, "file "+e.Name())
		}
		if c.Dialect().Features.SQLUsers {
			rows, err := c.conn.Query(ctx, "SELECT name FROM system.users WHERE name LIKE 'tenant%'")
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = rows.Close() }()
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					t.Fatal(err)
				}
				names = append(names, "sql "+n)
			}
		}
		sort.Strings(names)
		return names
	}

	// A Shared tenant's user must survive the Dedicated tenant's drop.
	shared := TenantDB{Database: "tenant_s", User: "tenant_s", Password: "pw"}
	if err := c.EnsureTenantDatabase(ctx, shared); err != nil {
		t.Fatal(err)
	}
	before := users()
	if len(before) == 0 {
		t.Fatal("the Shared tenant's user is not listed: the check below could not fail")
	}

	dedicated := TenantDB{Database: "tenant_d", RetentionDays: 30}
	for range 2 { // idempotent
		if err := c.EnsureTenantDatabase(ctx, dedicated); err != nil {
			t.Fatal(err)
		}
	}
	if exists, events, err := c.DatabaseStatus(ctx, dedicated.Database); err != nil || !exists || !events {
		t.Fatalf("status = %v, %v, %v; want true, true, nil", exists, events, err)
	}
	var n uint64
	if err := c.conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name IN (?, ?)",
		dedicated.Database, EventsTable, QuarantineTable).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d tenant tables (%v), want events and quarantine", n, err)
	}
	if after := users(); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("users after ensuring a tenant without user = %v, want unchanged %v", after, before)
	}

	for range 2 {
		if err := c.DropTenantDatabase(ctx, dedicated); err != nil {
			t.Fatal(err)
		}
	}
	if exists, _, err := c.DatabaseStatus(ctx, dedicated.Database); err != nil || exists {
		t.Errorf("after drop: exists = %v, %v; want false", exists, err)
	}
	if after := users(); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("users after dropping a tenant without user = %v, want unchanged %v", after, before)
	}
	if exists, _, err := c.DatabaseStatus(ctx, shared.Database); err != nil || !exists {
		t.Errorf("the Shared tenant's database: exists = %v, %v; want true", exists, err)
	}
}
