package metastore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLockKey is the advisory lock taken while migrating, so operators starting at
// the same time apply each migration once. The value is arbitrary but fixed forever.
const migrationLockKey int64 = 0x73686f616c6d6967 // "shoalmig"

// migration is one embedded file, named <version>_<name>.sql.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations lists the embedded migrations in version order.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var list []migration
	seen := map[int]string{}
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), ".sql")
		if !ok {
			continue
		}
		num, name, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("migration file %s: want <version>_<name>.sql", e.Name())
		}
		if other, dup := seen[version]; dup {
			return nil, fmt.Errorf("migration files %s and %s share version %d", other, e.Name(), version)
		}
		seen[version] = e.Name()
		data, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		list = append(list, migration{version: version, name: name, sql: string(data)})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].version < list[j].version })
	return list, nil
}

// migrate applies the migrations the database lacks, each in its own transaction together
// with its schema_migrations row, holding an advisory lock for the whole run.
func (s *Store) migrate(ctx context.Context) error {
	list, err := migrations()
	if err != nil {
		return fmt.Errorf("metastore: reading embedded migrations: %w", err)
	}
	err = s.withConn(ctx, func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
			return fmt.Errorf("taking the migration lock: %w", err)
		}
		// A session lock: released here, or by the server if the connection dies.
		defer func() { _, _ = c.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockKey) }()

		if _, err := c.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("creating schema_migrations: %w", err)
		}
		rows, err := c.Query(ctx, "SELECT version FROM schema_migrations")
		if err != nil {
			return fmt.Errorf("reading schema_migrations: %w", err)
		}
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return fmt.Errorf("reading schema_migrations: %w", err)
		}
		done := map[int]bool{}
		for _, v := range applied {
			done[int(v)] = true
		}
		for _, m := range list {
			if done[m.version] {
				continue
			}
			err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
				// No arguments: the simple protocol runs the file's statements in one go.
				if _, err := tx.Exec(ctx, m.sql); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
				return err
			})
			if err != nil {
				return fmt.Errorf("applying migration %d (%s): %w", m.version, m.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("metastore: migrating: %w", err)
	}
	return nil
}
