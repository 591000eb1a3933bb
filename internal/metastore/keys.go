package metastore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// KeyPrefix starts every key Shoal mints, so a leaked key is recognisable (secret
	// scanners) and a key typed by hand is not mistaken for one.
	KeyPrefix = "shk_"
	// keyRandomBytes of crypto/rand make a key: 256 bits, beyond guessing.
	keyRandomBytes = 32
	// keyDisplayLen is how much of a key is stored in clear to tell keys apart in a UI.
	keyDisplayLen = len(KeyPrefix) + 6

	kindIngest = "ingest"
)

// NewKey mints a random API key: KeyPrefix then 32 random bytes, base64url.
func NewKey() (string, error) {
	b := make([]byte, keyRandomBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// HashKey is what the store keeps of a key: its SHA-256. Keys carry 256 random bits, so a
// fast unsalted hash is enough; lookups are by hash, never by comparing plaintexts.
func HashKey(plaintext string) []byte {
	sum := sha256.Sum256([]byte(plaintext))
	return sum[:]
}

// wellFormedKey reports whether s looks like a key NewKey mints. Only such keys are
// adopted from a Secret, so a short value typed by hand never becomes a credential.
func wellFormedKey(s string) bool {
	body, ok := strings.CutPrefix(s, KeyPrefix)
	if !ok {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	return err == nil && len(raw) >= keyRandomBytes
}

// EnsureIngestKey keeps exactly one active ingest key for the tenant and makes it the key
// in the tenant's Secret, whose plaintext the caller passes (empty when the Secret is
// missing). The store keeps only hashes, so the plaintext exists in the Secret alone:
//
//   - the Secret's key is the tenant's active ingest key: it is returned, created=false;
//   - the Secret's key is unknown here (a Secret restored from a backup, or a database
//     restored to before the key): its hash is adopted, created=false, so clients using
//     the Secret keep working;
//   - the Secret is missing, or holds a key that cannot be adopted (revoked, belonging to
//     something else, or not a key Shoal mints): a new key is minted and returned with
//     created=true, and the caller must write it to the Secret.
//
// In every case the tenant's other ingest keys are revoked.
func (s *Store) EnsureIngestKey(ctx context.Context, tenantID string, existingPlaintext string) (plaintext string, created bool, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		plaintext, created = existingPlaintext, false
		if existingPlaintext != "" {
			adopt, err := adoptableKey(ctx, tx, tenantID, existingPlaintext)
			if err != nil {
				return err
			}
			if !adopt {
				plaintext = ""
			}
		}
		if plaintext == "" {
			if plaintext, err = NewKey(); err != nil {
				return err
			}
			created = true
		}
		hash := HashKey(plaintext)
		if _, err := tx.Exec(ctx, `
			UPDATE api_keys SET revoked_at = now()
			WHERE tenant_id = $1 AND kind = $2 AND revoked_at IS NULL AND hash <> $3`,
			tenantID, kindIngest, hash); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO api_keys (tenant_id, kind, name, prefix, hash) VALUES ($1, $2, 'ingest', $3, $4)
			ON CONFLICT (hash) DO NOTHING`,
			tenantID, kindIngest, plaintext[:min(len(plaintext), keyDisplayLen)], hash)
		return err
	})
	if err != nil {
		return "", false, fmt.Errorf("metastore: ensuring the ingest key of tenant %q: %w", tenantID, err)
	}
	return plaintext, created, nil
}

// adoptableKey reports whether plaintext can be (or already is) the tenant's active ingest
// key.
func adoptableKey(ctx context.Context, tx pgx.Tx, tenantID, plaintext string) (bool, error) {
	var (
		owner, kind string
		revokedAt   *time.Time
	)
	err := tx.QueryRow(ctx, "SELECT tenant_id, kind, revoked_at FROM api_keys WHERE hash = $1", HashKey(plaintext)).
		Scan(&owner, &kind, &revokedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return wellFormedKey(plaintext), nil
	case err != nil:
		return false, err
	}
	// A revoked key stays revoked: it may have been revoked because it leaked.
	return owner == tenantID && kind == kindIngest && revokedAt == nil, nil
}

// LookupIngestKey returns the tenant an ingest key belongs to and whether it is
// suspended. Unknown and revoked keys, and keys of tenants being deleted, give
// ErrNotFound. The key is found by its hash, so no plaintext comparison can leak timing.
func (s *Store) LookupIngestKey(ctx context.Context, plaintext string) (tenantID string, suspended bool, err error) {
	err = s.withConn(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `
			SELECT t.id, t.suspended
			FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
			WHERE k.hash = $1 AND k.kind = $2 AND k.revoked_at IS NULL AND t.deleted_at IS NULL`,
			HashKey(plaintext), kindIngest).Scan(&tenantID, &suspended)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, fmt.Errorf("metastore: ingest key: %w", ErrNotFound)
	}
	if err != nil {
		return "", false, fmt.Errorf("metastore: looking up an ingest key: %w", err)
	}
	return tenantID, suspended, nil
}
