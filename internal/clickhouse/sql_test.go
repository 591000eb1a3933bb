package clickhouse

import (
	"reflect"
	"strings"
	"testing"
)

var (
	v1816 = Version{Major: 18, Minor: 16, Patch: 1}
	v248  = Version{Major: 24, Minor: 8, Patch: 4}
)

const hashHex = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b" // sha256("secret")

func TestParseVersionAndFeatures(t *testing.T) {
	tests := []struct {
		in   string
		want Version
		feat Features
	}{
		{"18.16.1", v1816, Features{}},
		{"19.3.4", Version{19, 3, 4}, Features{LowCardinality: true}},
		{"19.6.2.11", Version{19, 6, 2}, Features{LowCardinality: true, TTL: true}},
		{"20.3.1", Version{20, 3, 1}, Features{LowCardinality: true, TTL: true}},
		{"20.4.2.9", Version{20, 4, 2}, Features{LowCardinality: true, TTL: true, SQLUsers: true}},
		{"24.8.4.13", v248, Features{LowCardinality: true, TTL: true, SQLUsers: true}},
	}
	for _, tt := range tests {
		got, err := ParseVersion(tt.in)
		if err != nil {
			t.Fatalf("ParseVersion(%q): %v", tt.in, err)
		}
		if got != tt.want {
			t.Errorf("ParseVersion(%q) = %v, want %v", tt.in, got, tt.want)
		}
		if f := FeaturesOf(got); f != tt.feat {
			t.Errorf("FeaturesOf(%v) = %+v, want %+v", got, f, tt.feat)
		}
	}
	for _, bad := range []string{"", "18", "x.1", "18.y.1"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) succeeded, want an error", bad)
		}
	}
}

func TestBuilders(t *testing.T) {
	old, cur := NewDialect(v1816, ""), NewDialect(v248, "")
	clustered := NewDialect(v248, "main")
	tests := []struct {
		name  string
		build func() (Statement, error)
		want  string
	}{
		{"create db 18.16", func() (Statement, error) { return old.CreateDatabase("tenant_a") },
			"CREATE DATABASE IF NOT EXISTS `tenant_a`"},
		{"create db 24.8 on cluster", func() (Statement, error) { return clustered.CreateDatabase("tenant_a") },
			"CREATE DATABASE IF NOT EXISTS `tenant_a` ON CLUSTER `main`"},
		{"drop db", func() (Statement, error) { return cur.DropDatabase("tenant_a") },
			"DROP DATABASE IF EXISTS `tenant_a`"},
		{"events 18.16 ignores retention", func() (Statement, error) { return old.CreateEventsTable("tenant_a", 30) },
			"CREATE TABLE IF NOT EXISTS `tenant_a`.`events` (`event_id` String, `event_type` String, `timestamp` DateTime, `received_at` DateTime, `user_id` String, `session_id` String, `properties` String)" +
				" ENGINE = ReplacingMergeTree(`received_at`) PARTITION BY toYYYYMM(`timestamp`) ORDER BY (`event_type`, toDate(`timestamp`), `event_id`)"},
		{"events 24.8 with TTL", func() (Statement, error) { return cur.CreateEventsTable("tenant_a", 30) },
			"CREATE TABLE IF NOT EXISTS `tenant_a`.`events` (`event_id` String, `event_type` LowCardinality(String), `timestamp` DateTime, `received_at` DateTime, `user_id` String, `session_id` String, `properties` String)" +
				" ENGINE = ReplacingMergeTree(`received_at`) PARTITION BY toYYYYMM(`timestamp`) ORDER BY (`event_type`, toDate(`timestamp`), `event_id`) TTL `timestamp` + INTERVAL 30 DAY"},
		{"events 24.8 keep forever", func() (Statement, error) { return clustered.CreateEventsTable("tenant_a", 0) },
			"CREATE TABLE IF NOT EXISTS `tenant_a`.`events` ON CLUSTER `main` (`event_id` String, `event_type` LowCardinality(String), `timestamp` DateTime, `received_at` DateTime, `user_id` String, `session_id` String, `properties` String)" +
				" ENGINE = ReplacingMergeTree(`received_at`) PARTITION BY toYYYYMM(`timestamp`) ORDER BY (`event_type`, toDate(`timestamp`), `event_id`)"},
		{"quarantine 18.16", func() (Statement, error) { return old.CreateQuarantineTable("tenant_a", 30) },
			"CREATE TABLE IF NOT EXISTS `tenant_a`.`quarantine` (`raw` String, `reason` String, `received_at` DateTime, `topic` String, `partition` Int32, `offset` Int64)" +
				" ENGINE = ReplacingMergeTree(`received_at`) PARTITION BY toYYYYMM(`received_at`) ORDER BY (`topic`, `partition`, `offset`)"},
		{"quarantine 24.8", func() (Statement, error) { return cur.CreateQuarantineTable("tenant_a", 7) },
			"CREATE TABLE IF NOT EXISTS `tenant_a`.`quarantine` (`raw` String, `reason` String, `received_at` DateTime, `topic` LowCardinality(String), `partition` Int32, `offset` Int64)" +
				" ENGINE = ReplacingMergeTree(`received_at`) PARTITION BY toYYYYMM(`received_at`) ORDER BY (`topic`, `partition`, `offset`) TTL `received_at` + INTERVAL 7 DAY"},
		{"drop partition", func() (Statement, error) { return old.DropPartition("tenant_a", "events", 202401) },
			"ALTER TABLE `tenant_a`.`events` DROP PARTITION 202401"},
		{"drop user 24.8", func() (Statement, error) { return clustered.DropUser("tenant_a") },
			"DROP USER IF EXISTS `tenant_a` ON CLUSTER `main`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.build()
			if err != nil {
				t.Fatal(err)
			}
			if got.SQL != tt.want {
				t.Errorf("SQL\n got: %s\nwant: %s", got.SQL, tt.want)
			}
			if len(got.Args) != 0 {
				t.Errorf("args = %v, want none", got.Args)
			}
		})
	}
}

func TestCreateUser(t *testing.T) {
	tests := []struct {
		name    string
		dialect Dialect
		want    []Statement
		wantErr string
	}{
		{"18.16 has no SQL users", NewDialect(v1816, ""), nil, "no SQL users"},
		{"24.8", NewDialect(v248, ""), []Statement{
			{SQL: "CREATE USER IF NOT EXISTS `tenant_a` IDENTIFIED WITH sha256_hash BY ?", Args: []any{hashHex}},
			{SQL: "ALTER USER `tenant_a` IDENTIFIED WITH sha256_hash BY ?", Args: []any{hashHex}},
			{SQL: "GRANT SELECT, INSERT ON `tenant_a`.* TO `tenant_a`"},
		}, ""},
		{"24.8 on cluster", NewDialect(v248, "main"), []Statement{
			{SQL: "CREATE USER IF NOT EXISTS `tenant_a` ON CLUSTER `main` IDENTIFIED WITH sha256_hash BY ?", Args: []any{hashHex}},
			{SQL: "ALTER USER `tenant_a` ON CLUSTER `main` IDENTIFIED WITH sha256_hash BY ?", Args: []any{hashHex}},
			{SQL: "GRANT ON CLUSTER `main` SELECT, INSERT ON `tenant_a`.* TO `tenant_a`"},
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.dialect.CreateUser("tenant_a", "tenant_a", PasswordSHA256Hex("secret"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
			for _, st := range got {
				if strings.Contains(st.String(), hashHex) || strings.Contains(st.String(), "secret") {
					t.Errorf("%q shows the secret", st)
				}
			}
		})
	}
}

func TestBuildersRejectBadInput(t *testing.T) {
	d := NewDialect(v248, "")
	tests := []struct {
		name  string
		build func() error
	}{
		{"backtick in db", func() error { _, err := d.CreateDatabase("a`b"); return err }},
		{"dash in db", func() error { _, err := d.CreateEventsTable("tenant-a", 0); return err }},
		{"leading digit", func() error { _, err := d.DropDatabase("1abc"); return err }},
		{"empty", func() error { _, err := d.CreateQuarantineTable("", 0); return err }},
		{"bad cluster", func() error { _, err := NewDialect(v248, "x y").CreateDatabase("ok"); return err }},
		{"bad month", func() error { _, err := d.DropPartition("ok", "events", 202413); return err }},
		{"injected partition", func() error { _, err := d.DropPartition("ok", "events", 99); return err }},
		{"bad user", func() error { _, err := d.CreateUser("u;DROP", "ok", hashHex); return err }},
		{"bad hash", func() error { _, err := d.CreateUser("u", "ok", "' OR 1"); return err }},
		{"too long", func() error { _, err := d.CreateDatabase(strings.Repeat("a", 201)); return err }},
	}
	for _, tt := range tests {
		if tt.build() == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
}
