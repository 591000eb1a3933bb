package metastore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

const (
	// PersonalTokenPrefix starts every personal API token, so the web API tells them from
	// OIDC tokens (JWTs) without parsing, and secret scanners tell them from ingest keys.
	PersonalTokenPrefix = "shp_"
	// MaxPersonalTokensPerUser bounds a user's active (neither revoked nor expired)
	// tokens: enough for every script a person runs, few enough to review.
	MaxPersonalTokensPerUser = 50
	// MaxPersonalTokenNameLen bounds a token's name, in characters.
	MaxPersonalTokenNameLen = 100
	// personalTokensListed caps ListPersonalTokens: revoked tokens stay in the table.
	personalTokensListed = 200
	// lastUsedGranularity is how stale last_used_at may get: lookups write it at most
	// this often per token, so authenticating stays a read.
	lastUsedGranularity = time.Minute

	kindPersonal = "personal"
)

var (
	// ErrTokenRevoked is returned by LookupPersonalToken for a revoked token.
	ErrTokenRevoked = errors.New("token revoked")
	// ErrTokenExpired is returned by LookupPersonalToken for a token past its expiry.
	ErrTokenExpired = errors.New("token expired")
	// ErrTooManyTokens is returned when a user already has MaxPersonalTokensPerUser
	// active tokens.
	ErrTooManyTokens = errors.New("too many active tokens")
)

// PersonalToken describes a personal API token; the secret is not part of it. Prefix is
// the token's first characters, to tell tokens apart in a list.
type PersonalToken struct {
	ID         string
	TenantID   string
	UserID     string
	Name       string
	Prefix     string
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// Identity is who a credential authenticates: a user (with the role the user has now,
// not when a token was made) and the state of the user's tenant, which the caller turns
// into a policy. TokenID is set when the credential is a personal token.
type Identity struct {
	TokenID               string
	User                  User
	TenantSuspended       bool
	TenantSuspendedReason string
	TenantDeleted         bool
}

const tokenColumns = "id::text, tenant_id, user_id::text, name, prefix, created_at, expires_at, last_used_at, revoked_at"

func scanToken(row pgx.Row) (PersonalToken, error) {
	var t PersonalToken
	err := row.Scan(&t.ID, &t.TenantID, &t.UserID, &t.Name, &t.Prefix, &t.CreatedAt, &t.ExpiresAt, &t.LastUsedAt, &t.RevokedAt)
	return t, err
}

// newPersonalToken mints a token: PersonalTokenPrefix then 32 random bytes, base64url.
func newPersonalToken() (string, error) {
	b := make([]byte, keyRandomBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return PersonalTokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// wellFormedPersonalToken reports whether s could be a token newPersonalToken minted, so
// garbage is refused without a query.
func wellFormedPersonalToken(s string) bool {
	body, ok := strings.CutPrefix(s, PersonalTokenPrefix)
	if !ok || len(body) != base64.RawURLEncoding.EncodedLen(keyRandomBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(body)
	return err == nil
}

// CreatePersonalToken mints a token for the tenant's user and returns its description
// and its plaintext. The plaintext exists only in this return value: the store keeps its
// SHA-256, so the caller shows it once. expiresAt nil means the token does not expire;
// otherwise it must be in the future.
func (s *Store) CreatePersonalToken(ctx context.Context, tenantID, userID, name string, expiresAt *time.Time) (PersonalToken, string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return PersonalToken{}, "", fmt.Errorf("metastore: creating a token: the name is empty: %w", ErrInvalidUserInput)
	case utf8.RuneCountInString(name) > MaxPersonalTokenNameLen:
		return PersonalToken{}, "", fmt.Errorf("metastore: creating a token: the name is longer than %d characters: %w", MaxPersonalTokenNameLen, ErrInvalidUserInput)
	case expiresAt != nil && !expiresAt.After(time.Now()):
		return PersonalToken{}, "", fmt.Errorf("metastore: creating a token: the expiry %s is not in the future: %w", expiresAt.Format(time.RFC3339), ErrInvalidUserInput)
	}
	if !validID(userID) {
		return PersonalToken{}, "", fmt.Errorf("metastore: user %q: %w", userID, ErrNotFound)
	}
	plaintext, err := newPersonalToken()
	if err != nil {
		return PersonalToken{}, "", fmt.Errorf("metastore: creating a token: %w", err)
	}
	var tok PersonalToken
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		// The user's row lock makes the count and the insert one step.
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2 FOR UPDATE", tenantID, userID).Scan(&one); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		var active int
		if err := tx.QueryRow(ctx, `
			SELECT count(*) FROM api_keys
			WHERE user_id = $1 AND kind = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`,
			userID, kindPersonal).Scan(&active); err != nil {
			return err
		}
		if active >= MaxPersonalTokensPerUser {
			return ErrTooManyTokens
		}
		tok, err = scanToken(tx.QueryRow(ctx, `
			INSERT INTO api_keys (tenant_id, kind, user_id, name, prefix, hash, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			RETURNING `+tokenColumns,
			tenantID, kindPersonal, userID, name, plaintext[:len(PersonalTokenPrefix)+6], HashKey(plaintext), expiresAt))
		return err
	})
	if err != nil {
		return PersonalToken{}, "", fmt.Errorf("metastore: creating a token for user %q of tenant %q: %w", userID, tenantID, err)
	}
	return tok, plaintext, nil
}

// ListPersonalTokens returns the user's tokens, newest first, revoked and expired ones
// included (at most the newest 200).
func (s *Store) ListPersonalTokens(ctx context.Context, tenantID, userID string) ([]PersonalToken, error) {
	if !validID(userID) {
		return nil, nil
	}
	var list []PersonalToken
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `
			SELECT `+tokenColumns+` FROM api_keys
			WHERE tenant_id = $1 AND user_id = $2 AND kind = $3
			ORDER BY created_at DESC, id
			LIMIT $4`, tenantID, userID, kindPersonal, personalTokensListed)
		if err != nil {
			return err
		}
		list, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (PersonalToken, error) { return scanToken(r) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("metastore: listing the tokens of user %q: %w", userID, err)
	}
	return list, nil
}

// RevokePersonalToken revokes one of the user's tokens. Revoking a revoked token succeeds
// and keeps the first revocation time; a token of another user or tenant is ErrNotFound.
func (s *Store) RevokePersonalToken(ctx context.Context, tenantID, userID, tokenID string) error {
	if !validID(userID) || !validID(tokenID) {
		return fmt.Errorf("metastore: token %q: %w", tokenID, ErrNotFound)
	}
	var affected int64
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, `
			UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
			WHERE id = $1 AND tenant_id = $2 AND user_id = $3 AND kind = $4`,
			tokenID, tenantID, userID, kindPersonal)
		affected = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("metastore: revoking token %q: %w", tokenID, err)
	}
	if affected == 0 {
		return fmt.Errorf("metastore: token %q: %w", tokenID, ErrNotFound)
	}
	return nil
}

// LookupPersonalToken returns who a token authenticates. An unknown token is
// ErrNotFound, a revoked one ErrTokenRevoked, an expired one ErrTokenExpired. The
// tenant's suspension and deletion are reported, not refused: the caller decides. The
// token is found by its hash, so no plaintext comparison can leak timing.
func (s *Store) LookupPersonalToken(ctx context.Context, plaintext string) (Identity, error) {
	if !wellFormedPersonalToken(plaintext) {
		return Identity{}, fmt.Errorf("metastore: personal token: %w", ErrNotFound)
	}
	var (
		id                  Identity
		revoked, expired    bool
		touch               bool
		u                   = &id.User
		tenantDeletedAtNull bool
	)
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		err := c.QueryRow(ctx, `
			SELECT k.id::text, k.revoked_at IS NOT NULL, coalesce(k.expires_at <= now(), false),
				coalesce(k.last_used_at < now() - $3 * interval '1 second', true),
				u.id::text, u.tenant_id, u.email, u.role, u.created_at, u.updated_at,
				t.suspended, t.suspended_reason, t.deleted_at IS NULL
			FROM api_keys k
			JOIN users u ON u.id = k.user_id AND u.tenant_id = k.tenant_id
			JOIN tenants t ON t.id = k.tenant_id
			WHERE k.hash = $1 AND k.kind = $2`,
			HashKey(plaintext), kindPersonal, int(lastUsedGranularity/time.Second)).
			Scan(&id.TokenID, &revoked, &expired, &touch,
				&u.ID, &u.TenantID, &u.Email, &u.Role, &u.CreatedAt, &u.UpdatedAt,
				&id.TenantSuspended, &id.TenantSuspendedReason, &tenantDeletedAtNull)
		if err != nil || revoked || expired || !touch {
			return err
		}
		// Best effort: a failed write must not fail the sign-in.
		_, _ = c.Exec(ctx, "UPDATE api_keys SET last_used_at = now() WHERE id = $1", id.TokenID)
		return nil
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Identity{}, fmt.Errorf("metastore: personal token: %w", ErrNotFound)
	case err != nil:
		return Identity{}, fmt.Errorf("metastore: looking up a personal token: %w", err)
	case revoked:
		return Identity{}, fmt.Errorf("metastore: personal token %s: %w", id.TokenID, ErrTokenRevoked)
	case expired:
		return Identity{}, fmt.Errorf("metastore: personal token %s: %w", id.TokenID, ErrTokenExpired)
	}
	id.TenantDeleted = !tenantDeletedAtNull
	return id, nil
}
