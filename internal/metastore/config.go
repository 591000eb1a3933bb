package metastore

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Defaults.
const (
	DefaultMaxConns       = 8
	DefaultConnectTimeout = 5 * time.Second
)

// Config says how to reach the metadata database.
type Config struct {
	// DSN is a PostgreSQL connection string, as a URL or key=value pairs. Exactly one of
	// DSN and DSNFile is set.
	DSN string `json:"dsn,omitempty"`
	// DSNFile is a file holding the DSN, typically a mounted Secret, so the password
	// stays out of the platform config. Read at Open.
	DSNFile string `json:"dsnFile,omitempty"`
	// MaxConns caps the open connections to the database. Default 8.
	MaxConns int32 `json:"maxConns,omitempty"`
	// ConnectTimeout bounds one connection attempt, so an unreachable database is
	// reported in bounded time instead of hanging a reconcile. Default 5s.
	ConnectTimeout metav1.Duration `json:"connectTimeout,omitempty"`
}

// Default fills in every unset field that has a default.
func (c *Config) Default() {
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.ConnectTimeout.Duration == 0 {
		c.ConnectTimeout.Duration = DefaultConnectTimeout
	}
}

// Validate reports every invalid field, each error naming its path under path. Unset
// fields with defaults are valid. The DSN's value is never echoed: it may hold a password.
func (c *Config) Validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case c.DSN == "" && c.DSNFile == "":
		errs = append(errs, field.Required(path.Child("dsn"), "set dsn or dsnFile"))
	case c.DSN != "" && c.DSNFile != "":
		errs = append(errs, field.Forbidden(path.Child("dsnFile"), "set only one of dsn and dsnFile"))
	case c.DSN != "":
		if _, err := pgx.ParseConfig(c.DSN); err != nil {
			errs = append(errs, field.Invalid(path.Child("dsn"), "(redacted)", "not a PostgreSQL connection string"))
		}
	}
	if c.MaxConns < 0 || c.MaxConns > 1000 {
		errs = append(errs, field.Invalid(path.Child("maxConns"), c.MaxConns, "must be between 1 and 1000"))
	}
	if d := c.ConnectTimeout.Duration; d != 0 && (d < 100*time.Millisecond || d > 5*time.Minute) {
		errs = append(errs, field.Invalid(path.Child("connectTimeout"), d.String(), "must be between 100ms and 5m"))
	}
	return errs
}

// dsn returns the connection string, reading DSNFile if that is how it is given.
func (c *Config) dsn() (string, error) {
	if c.DSNFile == "" {
		return c.DSN, nil
	}
	data, err := os.ReadFile(c.DSNFile)
	if err != nil {
		return "", fmt.Errorf("reading the DSN file: %w", err)
	}
	dsn := strings.TrimSpace(string(data))
	if dsn == "" {
		return "", fmt.Errorf("the DSN file %s is empty", c.DSNFile)
	}
	return dsn, nil
}
