// Package metastore is Shoal's metadata store on PostgreSQL: tenants, their users, hashed
// API keys, dashboards, data sources, alerts and the audit log. The schema is embedded and
// migrated when the store is opened.
package metastore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned when the tenant or key asked for does not exist.
var ErrNotFound = errors.New("not found")

// Store is an open metadata store; safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to the database and applies the schema migrations this binary carries
// that it does not have yet. Opening is safe from several processes at once.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg.Default()
	if errs := cfg.Validate(nil); len(errs) > 0 {
		return nil, fmt.Errorf("metastore config: %w", errs.ToAggregate())
	}
	dsn, err := cfg.dsn()
	if err != nil {
		return nil, fmt.Errorf("metastore config: %w", err)
	}
	poolConfig, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse error can quote the DSN, password included.
		return nil, errors.New("metastore config: the DSN is not a PostgreSQL connection string")
	}
	poolConfig.ConnConfig.ConnectTimeout = cfg.ConnectTimeout.Duration
	poolConfig.MaxConns = cfg.MaxConns
	// Connections are made when first needed, so Open reports an unreachable server
	// through the migration's error rather than a pool-level one.
	poolConfig.MinConns = 0
	pool, err := pgxpool.NewWithConfig(ctx, poolConfig)
	if err != nil {
		return nil, fmt.Errorf("metastore: creating connection pool: %w", err)
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the pool's connections; calls after Close fail.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	err := s.pool.Ping(ctx)
	if err != nil {
		return fmt.Errorf("metastore: ping: %w", err)
	}
	return nil
}

// inTx runs fn in a transaction, committed if fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// withConn runs fn on a pooled connection. The pool pings a connection that sat idle
// before handing it out, so a server restart costs no failed call.
func (s *Store) withConn(ctx context.Context, fn func(*pgx.Conn) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	return fn(conn.Conn())
}

// IsUnavailable reports whether err means the database could not be reached or went away
// (refused, reset, timed out, shutting down, too many connections): a retry later may
// succeed. Errors about the request itself (constraint violations, ErrNotFound) are not.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", // admin_shutdown, crash_shutdown, cannot_connect_now
			"53300": // too_many_connections
			return true
		}
		return len(pgErr.Code) == 5 && pgErr.Code[:2] == "08" // connection exception class
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}
