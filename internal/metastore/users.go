package metastore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Roles, highest first. The web API decides what each may do; the store only keeps them.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleEditor = "editor"
	RoleViewer = "viewer"
)

// Roles lists the valid roles, highest first.
var Roles = []string{RoleOwner, RoleAdmin, RoleEditor, RoleViewer}

// Paging limits of ListUsers.
const (
	DefaultUserPageSize = 50
	MaxUserPageSize     = 500
)

var (
	// ErrLastOwner is returned when a change would leave a tenant without an owner.
	ErrLastOwner = errors.New("the last owner of a tenant cannot be demoted")
	// ErrUserExists is returned when a user with that email is already in the tenant.
	ErrUserExists = errors.New("user already exists")
	// ErrInvalidUserInput is returned for a user or token request the store refuses
	// before touching the database: an unknown role, an email that is not an address, a
	// bad cursor, an expiry in the past.
	ErrInvalidUserInput = errors.New("invalid input")
)

// User is a user of one tenant. The same person in two tenants is two users.
type User struct {
	ID        string
	TenantID  string
	Email     string
	Role      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

const userColumns = "id::text, tenant_id, email, role, created_at, updated_at"

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.TenantID, &u.Email, &u.Role, &u.CreatedAt, &u.UpdatedAt)
	return u, err
}

// userCursor is where a page of ListUsers ends: users are ordered by lowercased email,
// then id.
type userCursor struct {
	Email string `json:"e"`
	ID    string `json:"i"`
}

func (c userCursor) encode() string {
	b, _ := json.Marshal(c) // two strings: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeUserCursor(s string) (userCursor, error) {
	var c userCursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &c) != nil || !validID(c.ID) {
		return userCursor{}, fmt.Errorf("cursor %q: %w", s, ErrInvalidUserInput)
	}
	return c, nil
}

// ListUsers returns a page of the tenant's users ordered by email, and the cursor of the
// next page ("" on the last one). cursor is "" for the first page or a value a previous
// call returned; limit 0 means DefaultUserPageSize and is capped at MaxUserPageSize.
// Cursors are opaque to callers but not secret: they hold the last email of the page.
func (s *Store) ListUsers(ctx context.Context, tenantID, cursor string, limit int) (users []User, next string, err error) {
	switch {
	case limit <= 0:
		limit = DefaultUserPageSize
	case limit > MaxUserPageSize:
		limit = MaxUserPageSize
	}
	var (
		after   userCursor
		afterID pgtype.UUID // NULL on the first page
	)
	if cursor != "" {
		if after, err = decodeUserCursor(cursor); err != nil {
			return nil, "", fmt.Errorf("metastore: listing users: %w", err)
		}
		_ = afterID.Scan(after.ID) // checked by decodeUserCursor
	}
	err = s.withConn(ctx, func(c *pgx.Conn) error {
		// One row more than the page tells whether there is a next page.
		rows, err := c.Query(ctx, `
			SELECT `+userColumns+` FROM users
			WHERE tenant_id = $1 AND ($2 = '' OR (lower(email), id) > ($2, $3))
			ORDER BY lower(email), id
			LIMIT $4`, tenantID, after.Email, afterID, limit+1)
		if err != nil {
			return err
		}
		users, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) { return scanUser(r) })
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("metastore: listing users of tenant %q: %w", tenantID, err)
	}
	if len(users) > limit {
		users = users[:limit]
		last := users[limit-1]
		next = userCursor{Email: strings.ToLower(last.Email), ID: last.ID}.encode()
	}
	return users, next, nil
}

// GetUser returns the tenant's user with that id. A user of another tenant is
// ErrNotFound, exactly like a user that does not exist.
func (s *Store) GetUser(ctx context.Context, tenantID, userID string) (User, error) {
	if !validID(userID) {
		return User{}, fmt.Errorf("metastore: user %q: %w", userID, ErrNotFound)
	}
	var u User
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		var err error
		u, err = scanUser(c.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE tenant_id = $1 AND id = $2", tenantID, userID))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, fmt.Errorf("metastore: user %q: %w", userID, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("metastore: reading user %q: %w", userID, err)
	}
	return u, nil
}

// FindUserByEmail returns the tenant's user with that email, compared case-insensitively
// as sign-in does.
func (s *Store) FindUserByEmail(ctx context.Context, tenantID, email string) (User, error) {
	var u User
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		var err error
		u, err = scanUser(c.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE tenant_id = $1 AND lower(email) = lower($2)",
			tenantID, strings.TrimSpace(email)))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, fmt.Errorf("metastore: user with that email in tenant %q: %w", tenantID, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("metastore: finding a user by email: %w", err)
	}
	return u, nil
}

// AddUser adds a user to the tenant with the given role. ErrUserExists if the email (in any
// case) is already a user of the tenant, ErrNotFound if the tenant does not exist.
func (s *Store) AddUser(ctx context.Context, tenantID, email, role string) (User, error) {
	email = strings.TrimSpace(email)
	if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email {
		return User{}, fmt.Errorf("metastore: adding a user: %q is not an email address: %w", email, ErrInvalidUserInput)
	}
	if !slices.Contains(Roles, role) {
		return User{}, fmt.Errorf("metastore: adding a user: role %q: %w", role, ErrInvalidUserInput)
	}
	var u User
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		var err error
		u, err = scanUser(c.QueryRow(ctx, `
			INSERT INTO users (tenant_id, email, role) VALUES ($1, $2, $3)
			RETURNING `+userColumns, tenantID, email, role))
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return User{}, fmt.Errorf("metastore: user %q in tenant %q: %w", email, tenantID, ErrUserExists)
		case "23503": // foreign_key_violation
			return User{}, fmt.Errorf("metastore: tenant %q: %w", tenantID, ErrNotFound)
		}
	}
	if err != nil {
		return User{}, fmt.Errorf("metastore: adding user to tenant %q: %w", tenantID, err)
	}
	return u, nil
}

// SetUserRole changes a user's role and returns the updated user. Demoting the tenant's
// only owner fails with ErrLastOwner: the check and the change run under the tenant's row
// lock, so two owners demoting each other at once cannot both succeed. Setting the role
// a user already has changes nothing (updated_at stays).
func (s *Store) SetUserRole(ctx context.Context, tenantID, userID, role string) (User, error) {
	if !slices.Contains(Roles, role) {
		return User{}, fmt.Errorf("metastore: setting a role: role %q: %w", role, ErrInvalidUserInput)
	}
	if !validID(userID) {
		return User{}, fmt.Errorf("metastore: user %q: %w", userID, ErrNotFound)
	}
	var u User
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// Serialises with every other role change and EnsureOwners of the tenant; in
		// READ COMMITTED each statement below then sees what they committed.
		if err := lockTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		var err error
		u, err = scanUser(tx.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE tenant_id = $1 AND id = $2", tenantID, userID))
		if err != nil {
			return err
		}
		if u.Role == role {
			return nil
		}
		if u.Role == RoleOwner {
			var owners int
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM users WHERE tenant_id = $1 AND role = 'owner'", tenantID).Scan(&owners); err != nil {
				return err
			}
			if owners <= 1 {
				return ErrLastOwner
			}
		}
		u, err = scanUser(tx.QueryRow(ctx, `
			UPDATE users SET role = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2
			RETURNING `+userColumns, tenantID, userID, role))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, fmt.Errorf("metastore: user %q: %w", userID, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("metastore: setting the role of user %q in tenant %q: %w", userID, tenantID, err)
	}
	return u, nil
}

// IdentityByEmail returns the tenant's user with that email (case-insensitive) together
// with the tenant's state, in one query: what signing in with an OIDC token needs. A
// missing tenant and a missing user are both ErrNotFound.
func (s *Store) IdentityByEmail(ctx context.Context, tenantID, email string) (Identity, error) {
	var (
		id         Identity
		u          = &id.User
		tenantLive bool
	)
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `
			SELECT u.id::text, u.tenant_id, u.email, u.role, u.created_at, u.updated_at,
				t.suspended, t.suspended_reason, t.deleted_at IS NULL
			FROM users u JOIN tenants t ON t.id = u.tenant_id
			WHERE u.tenant_id = $1 AND lower(u.email) = lower($2)`, tenantID, strings.TrimSpace(email)).
			Scan(&u.ID, &u.TenantID, &u.Email, &u.Role, &u.CreatedAt, &u.UpdatedAt,
				&id.TenantSuspended, &id.TenantSuspendedReason, &tenantLive)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Identity{}, fmt.Errorf("metastore: user with that email in tenant %q: %w", tenantID, ErrNotFound)
	}
	if err != nil {
		return Identity{}, fmt.Errorf("metastore: finding a user by email: %w", err)
	}
	id.TenantDeleted = !tenantLive
	return id, nil
}
