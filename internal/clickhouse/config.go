package clickhouse

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Defaults of Config.
const (
	DefaultUser        = "default"
	DefaultDatabase    = "default"
	DefaultDialTimeout = 5 * time.Second
)

// How per-tenant users are managed (Config.UserManagement).
const (
	// UserManagementAuto uses SQL users where the server has them, users.d files otherwise.
	UserManagementAuto = "auto"
	// UserManagementSQL always uses CREATE USER and GRANT; servers without them are an error.
	UserManagementSQL = "sql"
	// UserManagementFiles always writes users.d files, also on servers with SQL users
	// (for installations whose admin user has no access_management).
	UserManagementFiles = "files"
)

// Config says how the operator reaches a ClickHouse server with admin rights.
type Config struct {
	// Addr is host:port of the native protocol (9000 by convention); the HTTP interface is
	// not used because old servers do not speak it in the form the client needs.
	Addr string `json:"addr"`
	// User is the admin user; default "default".
	User string `json:"user,omitempty"`
	// Password of User. Prefer PasswordFile; both set is an error.
	Password string `json:"password,omitempty"`
	// PasswordFile holds the password (a mounted Secret); a trailing newline is ignored.
	PasswordFile string `json:"passwordFile,omitempty"`
	// Database the admin session starts in; default "default".
	Database string `json:"database,omitempty"`
	// UsersDir is the server's users.d directory, writable by the operator, where per-tenant
	// users are written as files on servers without SQL users (or with UserManagement files).
	UsersDir string `json:"usersDir,omitempty"`
	// UserManagement is auto (default), sql or files.
	UserManagement string `json:"userManagement,omitempty"`
	// DialTimeout bounds connecting and acquiring a connection; default 5s.
	DialTimeout metav1.Duration `json:"dialTimeout,omitempty"`
	// Cluster, if set, adds ON CLUSTER to every DDL statement.
	Cluster string `json:"cluster,omitempty"`
}

// Default fills in every unset field that has a default.
func (c *Config) Default() {
	if c.User == "" {
		c.User = DefaultUser
	}
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.UserManagement == "" {
		c.UserManagement = UserManagementAuto
	}
	if c.DialTimeout.Duration == 0 {
		c.DialTimeout.Duration = DefaultDialTimeout
	}
}

// Validate reports every invalid field at once, each under path. It expects defaults filled.
func (c *Config) Validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.Addr == "" {
		errs = append(errs, field.Required(path.Child("addr"), "host:port of the native protocol"))
	} else if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
		errs = append(errs, field.Invalid(path.Child("addr"), c.Addr, "must be host:port"))
	}
	if c.Password != "" && c.PasswordFile != "" {
		errs = append(errs, field.Forbidden(path.Child("password"), "set password or passwordFile, not both"))
	}
	if err := ValidateIdentifier(c.Database); err != nil {
		errs = append(errs, field.Invalid(path.Child("database"), c.Database, err.Error()))
	}
	if c.Cluster != "" {
		if err := ValidateIdentifier(c.Cluster); err != nil {
			errs = append(errs, field.Invalid(path.Child("cluster"), c.Cluster, err.Error()))
		}
	}
	switch c.UserManagement {
	case UserManagementAuto, UserManagementSQL:
	case UserManagementFiles:
		if c.UsersDir == "" {
			errs = append(errs, field.Required(path.Child("usersDir"), "userManagement files writes users into it"))
		}
	default:
		errs = append(errs, field.NotSupported(path.Child("userManagement"), c.UserManagement,
			[]string{UserManagementAuto, UserManagementSQL, UserManagementFiles}))
	}
	if d := c.DialTimeout.Duration; d < 100*time.Millisecond || d > 5*time.Minute {
		errs = append(errs, field.Invalid(path.Child("dialTimeout"), d.String(), "must be between 100ms and 5m"))
	}
	return errs
}

// password returns the admin password, reading PasswordFile when set.
func (c *Config) password() (string, error) {
	if c.PasswordFile == "" {
		return c.Password, nil
	}
	data, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("reading the ClickHouse password file: %w", err)
	}
	return strings.TrimRight(string(data), "\r\n"), nil
}

// String shows the config without its password, so logging it leaks nothing.
func (c Config) String() string {
	pw := ""
	if c.Password != "" {
		pw = "<redacted>"
	}
	return fmt.Sprintf("{Addr:%s User:%s Password:%s PasswordFile:%s Database:%s UsersDir:%s UserManagement:%s DialTimeout:%s Cluster:%s}",
		c.Addr, c.User, pw, c.PasswordFile, c.Database, c.UsersDir, c.UserManagement, c.DialTimeout.Duration, c.Cluster)
}
