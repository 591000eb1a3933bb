package clickhouse

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestConfigDefaultAndValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // field paths of the expected errors
	}{
		{"minimal", Config{Addr: "ch:9000"}, nil},
		{"missing addr", Config{}, []string{"clickhouse.addr"}},
		{"addr without port", Config{Addr: "ch"}, []string{"clickhouse.addr"}},
		{"both passwords", Config{Addr: "ch:9000", Password: "x", PasswordFile: "/p"}, []string{"clickhouse.password"}},
		{"files without dir", Config{Addr: "ch:9000", UserManagement: UserManagementFiles}, []string{"clickhouse.usersDir"}},
		{"unknown management", Config{Addr: "ch:9000", UserManagement: "ldap"}, []string{"clickhouse.userManagement"}},
		{"bad cluster and db", Config{Addr: "ch:9000", Cluster: "a-b", Database: "x y"}, []string{"clickhouse.database", "clickhouse.cluster"}},
		{"tiny timeout", Config{Addr: "ch:9000", DialTimeout: metav1.Duration{Duration: time.Millisecond}}, []string{"clickhouse.dialTimeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Default()
			errs := cfg.Validate(field.NewPath("clickhouse"))
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("error fields = %v, want %v (%v)", got, tt.want, errs)
			}
		})
	}
	var cfg Config
	cfg.Default()
	if cfg.User != "default" || cfg.Database != "default" || cfg.DialTimeout.Duration != DefaultDialTimeout || cfg.UserManagement != UserManagementAuto {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestPasswordFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(path, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := (&Config{PasswordFile: path}).password()
	if err != nil || got != "s3cret" {
		t.Errorf("password() = %q, %v; want s3cret", got, err)
	}
	if _, err := (&Config{PasswordFile: path + ".missing"}).password(); err == nil {
		t.Error("a missing password file was accepted")
	}
}

func TestUserFile(t *testing.T) {
	got, err := UserFile("tenant_a", "tenant_a", hashHex)
	if err != nil {
		t.Fatal(err)
	}
	want := `<?xml version="1.0"?>
<yandex>
  <users>
    <tenant_a>
      <password_sha256_hex>` + hashHex + `</password_sha256_hex>
      <networks><ip>::/0</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <allow_databases><database>tenant_a</database></allow_databases>
    </tenant_a>
  </users>
</yandex>
`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if _, err := UserFile("a<b", "db", hashHex); err == nil {
		t.Error("an XML-breaking user name was accepted")
	}

	dir := t.TempDir()
	if err := writeUserFile(dir, "tenant_a", got); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "tenant_a.xml" {
		t.Errorf("users dir holds %v, want only tenant_a.xml", entries)
	}
	if err := removeUserFile(dir, "tenant_a"); err != nil {
		t.Fatal(err)
	}
	if err := removeUserFile(dir, "tenant_a"); err != nil {
		t.Errorf("removing twice: %v", err)
	}
}

func TestConfigStringHidesPassword(t *testing.T) {
	cfg := Config{Addr: "ch:9000", User: "admin", Password: "hunter2"}
	for _, s := range []string{cfg.String(), fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", &cfg)} {
		if strings.Contains(s, "hunter2") || !strings.Contains(s, "admin") {
			t.Errorf("config printed as %q", s)
		}
	}
}
