// Package clickhouse is Shoal's ClickHouse adapter: a database per tenant with its events
// and quarantine tables, a ClickHouse user limited to it under Shared isolation, and the
// export of a tenant's tables for archiving. It speaks the native protocol, reads the
// server version at connect and builds SQL that the version understands (18.16 up to
// current releases).
package clickhouse

import (
	"context"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// TenantDB is what a tenant gets in ClickHouse: its database with the tables, and under
// Shared isolation a user limited to it.
type TenantDB struct {
	// Database is the tenant's database (naming.Database).
	Database string
	// User is the ClickHouse user limited to Database (naming.ClickHouseUser). Empty
	// means Shoal manages no user: a Dedicated installation defines its own, so only the
	// database and its tables are created and dropped.
	User string
	// Password of User. Only its SHA-256 leaves the operator. Must be empty without User.
	Password string
	// RetentionDays deletes raw events older than this through TTL where the server has it;
	// 0 keeps them. Servers without TTL need DropPartitionsBefore.
	RetentionDays int
}

func (s TenantDB) validate() error {
	if err := ValidateIdentifier(s.Database); err != nil {
		return fmt.Errorf("tenant database: %w", err)
	}
	if s.User == "" {
		// A password without a user is a caller's mix-up, not something to ignore.
		if s.Password != "" {
			return fmt.Errorf("tenant database %s: password given without a user", s.Database)
		}
	} else {
		if err := ValidateIdentifier(s.User); err != nil {
			return fmt.Errorf("tenant user: %w", err)
		}
		if s.Password == "" {
			return fmt.Errorf("tenant user %s: empty password", s.User)
		}
	}
	if s.RetentionDays < 0 {
		return fmt.Errorf("tenant database %s: negative retention %d days", s.Database, s.RetentionDays)
	}
	return nil
}

// Client provisions tenant databases on one ClickHouse server (or cluster).
type Client struct {
	conn    driver.Conn
	addr    string
	version Version
	dialect Dialect
	// sqlUsers is the resolved user management: true for CREATE USER, false for users.d.
	sqlUsers bool
	usersDir string
}

// New connects, reads the server version and chooses how users are managed. cfg is
// defaulted and validated here, so a zero DialTimeout is fine.
func New(ctx context.Context, cfg Config) (*Client, error) {
	cfg.Default()
	conn, err := Dial(cfg, 8)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, addr: cfg.Addr, usersDir: cfg.UsersDir}
	var raw string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&raw); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("reading the version of ClickHouse at %s as %s: %w", cfg.Addr, cfg.User, err)
	}
	if c.version, err = ParseVersion(raw); err != nil {
		_ = conn.Close()
		return nil, err
	}
	c.dialect = NewDialect(c.version, cfg.Cluster)
	switch cfg.UserManagement {
	case UserManagementSQL:
		if !c.dialect.Features.SQLUsers {
			_ = conn.Close()
			return nil, fmt.Errorf("userManagement sql: ClickHouse %s at %s has no SQL users (20.4 or later needed); use files with usersDir", c.version, cfg.Addr)
		}
		c.sqlUsers = true
	case UserManagementFiles:
		c.sqlUsers = false
	default:
		c.sqlUsers = c.dialect.Features.SQLUsers
	}
	return c, nil
}

// Dial opens a native-protocol connection pool of at most maxOpen connections with cfg
// (defaulted and validated here; the password read from PasswordFile when set). It does
// not contact the server: the first query does.
func Dial(cfg Config, maxOpen int) (driver.Conn, error) {
	cfg.Default()
	if errs := cfg.Validate(nil); len(errs) > 0 {
		return nil, fmt.Errorf("invalid ClickHouse config: %w", errs.ToAggregate())
	}
	password, err := cfg.password()
	if err != nil {
		return nil, err
	}
	conn, err := ch.Open(&ch.Options{
		Addr:     []string{cfg.Addr},
		Protocol: ch.Native,
		Auth:     ch.Auth{Database: cfg.Database, Username: cfg.User, Password: password},
		// Bounds dialing and waiting for a pooled connection, so an outage surfaces as an
		// error within DialTimeout instead of hanging the caller.
		DialTimeout: cfg.DialTimeout.Duration,
		// A DDL statement or a batch insert takes well under this; a hung server must not
		// hold a reconcile or a partition for longer than a retry would.
		ReadTimeout:     time.Minute,
		MaxOpenConns:    maxOpen,
		MaxIdleConns:    max(maxOpen/2, 1),
		ConnMaxLifetime: 10 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to ClickHouse at %s: %w", cfg.Addr, err)
	}
	return conn, nil
}

// Close releases the connections.
func (c *Client) Close() error { return c.conn.Close() }

// Version is the server version read at connect.
func (c *Client) Version() Version { return c.version }

// Dialect is the SQL builder for the server.
func (c *Client) Dialect() Dialect { return c.dialect }

// exec runs one statement, wrapping errors with what was being done. The SQL is in the
// message (it never holds secrets: they are in Args); the args are not.
func (c *Client) exec(ctx context.Context, what string, st Statement) error {
	if err := c.conn.Exec(ctx, st.SQL, st.Args...); err != nil {
		return fmt.Errorf("ClickHouse at %s: %s: %w", c.addr, what, err)
	}
	return nil
}

// EnsureTenantDatabase creates what the tenant needs, if missing: database, events and
// quarantine tables, and the user when spec.User is set. It is idempotent and also
// repairs drift (a dropped table or a deleted user comes back). An existing table keeps
// its definition.
func (c *Client) EnsureTenantDatabase(ctx context.Context, spec TenantDB) error {
	if err := spec.validate(); err != nil {
		return err
	}
	d := c.dialect
	steps := []struct {
		what  string
		build func() (Statement, error)
	}{
		{"creating database " + spec.Database, func() (Statement, error) { return d.CreateDatabase(spec.Database) }},
		{"creating table " + spec.Database + "." + EventsTable, func() (Statement, error) {
			return d.CreateEventsTable(spec.Database, spec.RetentionDays)
		}},
		{"creating table " + spec.Database + "." + QuarantineTable, func() (Statement, error) {
			return d.CreateQuarantineTable(spec.Database, spec.RetentionDays)
		}},
	}
	for _, s := range steps {
		st, err := s.build()
		if err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
		if err := c.exec(ctx, s.what, st); err != nil {
			return err
		}
	}
	if spec.User == "" {
		return nil
	}
	return c.ensureUser(ctx, spec)
}

func (c *Client) ensureUser(ctx context.Context, spec TenantDB) error {
	hash := PasswordSHA256Hex(spec.Password)
	if !c.sqlUsers {
		if c.usersDir == "" {
			return fmt.Errorf("user %s: ClickHouse %s has no SQL users and no usersDir is configured", spec.User, c.version)
		}
		content, err := UserFile(spec.User, spec.Database, hash)
		if err != nil {
			return fmt.Errorf("user %s: %w", spec.User, err)
		}
		return writeUserFile(c.usersDir, spec.User, content)
	}
	sts, err := c.dialect.CreateUser(spec.User, spec.Database, hash)
	if err != nil {
		return fmt.Errorf("user %s: %w", spec.User, err)
	}
	for _, st := range sts {
		if err := c.exec(ctx, "granting "+spec.User+" access to "+spec.Database, st); err != nil {
			return err
		}
	}
	return nil
}

// DatabaseStatus reports whether the tenant's database and its events table exist, for
// drift checks.
func (c *Client) DatabaseStatus(ctx context.Context, db string) (exists, eventsTable bool, err error) {
	if err := ValidateIdentifier(db); err != nil {
		return false, false, err
	}
	var n uint64
	if err := c.conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", db).Scan(&n); err != nil {
		return false, false, fmt.Errorf("ClickHouse at %s: looking up database %s: %w", c.addr, db, err)
	}
	if n == 0 {
		return false, false, nil
	}
	if err := c.conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", db, EventsTable).Scan(&n); err != nil {
		return true, false, fmt.Errorf("ClickHouse at %s: looking up table %s.%s: %w", c.addr, db, EventsTable, err)
	}
	return true, n > 0, nil
}

// DropTenantDatabase drops the tenant's database and, when spec.User is set, its user;
// what is already gone is fine. Only spec.Database and spec.User are read.
func (c *Client) DropTenantDatabase(ctx context.Context, spec TenantDB) error {
	if spec.User != "" {
		if err := ValidateIdentifier(spec.User); err != nil {
			return fmt.Errorf("tenant user: %w", err)
		}
	}
	st, err := c.dialect.DropDatabase(spec.Database)
	if err != nil {
		return fmt.Errorf("dropping database: %w", err)
	}
	if err := c.exec(ctx, "dropping database "+spec.Database, st); err != nil {
		return err
	}
	if spec.User == "" {
		return nil
	}
	// A user may exist both ways if userManagement changed: remove both where possible.
	if c.usersDir != "" {
		if err := removeUserFile(c.usersDir, spec.User); err != nil {
			return err
		}
	}
	if c.sqlUsers {
		st, err := c.dialect.DropUser(spec.User)
		if err != nil {
			return fmt.Errorf("dropping user: %w", err)
		}
		return c.exec(ctx, "dropping user "+spec.User, st)
	}
	return nil
}

// DropPartitionsBefore drops the monthly partitions of the tenant's events and quarantine
// tables that lie wholly before month's month. It is how retention is enforced on servers
// without TTL; on others it is harmless. Returns the number of partitions dropped.
func (c *Client) DropPartitionsBefore(ctx context.Context, db string, month time.Time) (int, error) {
	if err := ValidateIdentifier(db); err != nil {
		return 0, err
	}
	cutoff := uint32(month.UTC().Year()*100 + int(month.UTC().Month()))
	rows, err := c.conn.Query(ctx, "SELECT DISTINCT table, toUInt32(partition) AS p FROM system.parts"+
		" WHERE database = ? AND table IN (?, ?) AND active AND toUInt32(partition) < ? ORDER BY table, p",
		db, EventsTable, QuarantineTable, cutoff)
	if err != nil {
		return 0, fmt.Errorf("ClickHouse at %s: listing partitions of %s: %w", c.addr, db, err)
	}
	type part struct {
		table string
		month uint32
	}
	var parts []part
	for rows.Next() {
		var p part
		if err := rows.Scan(&p.table, &p.month); err != nil {
			_ = rows.Close()
			return 0, fmt.Errorf("ClickHouse at %s: reading partitions of %s: %w", c.addr, db, err)
		}
		parts = append(parts, p)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("ClickHouse at %s: reading partitions of %s: %w", c.addr, db, err)
	}
	_ = rows.Close()
	for i, p := range parts {
		st, err := c.dialect.DropPartition(db, p.table, int(p.month))
		if err != nil {
			return i, err
		}
		if err := c.exec(ctx, fmt.Sprintf("dropping partition %d of %s.%s", p.month, db, p.table), st); err != nil {
			return i, err
		}
	}
	return len(parts), nil
}

// IsUnavailable reports whether err means the server could not be reached or the
// connection broke: worth retrying later, unlike an error the server returned.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var ex *ch.Exception
	if errors.As(err, &ex) {
		// Server-side network trouble (e.g. a replica it needs is down).
		return ex.Code == 209 || ex.Code == 210 // SOCKET_TIMEOUT, NETWORK_ERROR
	}
	var netErr net.Error
	switch {
	case errors.Is(err, ch.ErrAcquireConnTimeout),
		errors.Is(err, ch.ErrConnectionClosed),
		errors.Is(err, sqldriver.ErrBadConn),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr):
		return true
	}
	return false
}
