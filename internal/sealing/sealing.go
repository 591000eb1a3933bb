// Package sealing encrypts small secrets (data source credentials) for storage with
// AES-256-GCM under named keys. The key id is stored next to each ciphertext, so keys can
// be rotated without a flag day: new secrets are sealed with the current key while older
// keys stay in the keyring to open what they sealed.
package sealing

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
)

// KeySize is the length of every key: AES-256.
const KeySize = 32

var (
	// ErrUnknownKey is returned by Open for a key id the keyring does not hold, typically
	// a key retired from the config while ciphertext sealed with it remains.
	ErrUnknownKey = errors.New("unknown sealing key")
	// ErrOpen is returned by Open when the ciphertext does not authenticate: tampered,
	// truncated, sealed with another key of the same id, or with another AAD (copied from
	// another row).
	ErrOpen = errors.New("ciphertext does not open")
	// ErrNoKeys is returned by a nil Keyring, a platform configured without keys.
	ErrNoKeys = errors.New("no sealing keys are configured (platform config: sealing.keys)")
)

// Keyring holds the keys that open ciphertext and the one that seals it. Safe for
// concurrent use; it is never modified after construction.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
}

// NewKeyring builds a keyring from raw 32-byte keys by id; current names the key Seal
// uses. The keys are copied.
func NewKeyring(current string, keys map[string][]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("sealing: no keys")
	}
	k := &Keyring{current: current, aeads: make(map[string]cipher.AEAD, len(keys))}
	for id, raw := range keys {
		if msgs := validKeyID(id); msgs != "" {
			return nil, fmt.Errorf("sealing: key id %q %s", id, msgs)
		}
		if len(raw) != KeySize {
			return nil, fmt.Errorf("sealing: key %q is %d bytes, want %d", id, len(raw), KeySize)
		}
		block, err := aes.NewCipher(append([]byte(nil), raw...))
		if err != nil {
			return nil, fmt.Errorf("sealing: key %q: %w", id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("sealing: key %q: %w", id, err)
		}
		k.aeads[id] = aead
	}
	if _, ok := k.aeads[current]; !ok {
		return nil, fmt.Errorf("sealing: the current key %q is not among the keys", current)
	}
	return k, nil
}

// CurrentKeyID is the id of the key Seal uses.
// A nil Keyring stands for a platform without keys: it seals and opens nothing, with
// ErrNoKeys, so what holds no secret still works.
func (k *Keyring) CurrentKeyID() string {
	if k == nil {
		return ""
	}
	return k.current
}

// KeyIDs lists the ids of the keys the keyring can open with, sorted.
func (k *Keyring) KeyIDs() []string {
	if k == nil {
		return nil
	}
	ids := make([]string, 0, len(k.aeads))
	for id := range k.aeads {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Seal encrypts plaintext with the current key and a random nonce. aad is authenticated
// but not stored: Open must be given the same bytes, so binding a ciphertext to its owner
// (tenant and row id) makes a ciphertext copied elsewhere fail to open. The result is the
// key id to store with the ciphertext, and nonce || sealed bytes.
func (k *Keyring) Seal(plaintext, aad []byte) (keyID string, ciphertext []byte, err error) {
	if k == nil {
		return "", nil, ErrNoKeys
	}
	aead := k.aeads[k.current]
	// Random 96-bit nonces are safe for far more secrets than a metadata store holds
	// under one key (NIST's bound is 2^32 messages).
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", nil, fmt.Errorf("sealing: reading a nonce: %w", err)
	}
	return k.current, aead.Seal(nonce, nonce, plaintext, aad), nil
}

// Open decrypts what Seal returned, with the key keyID names and the same aad.
func (k *Keyring) Open(keyID string, ciphertext, aad []byte) ([]byte, error) {
	if k == nil {
		return nil, ErrNoKeys
	}
	aead, ok := k.aeads[keyID]
	if !ok {
		return nil, fmt.Errorf("sealing: key %q: %w", keyID, ErrUnknownKey)
	}
	if len(ciphertext) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("sealing: %d bytes are too short: %w", len(ciphertext), ErrOpen)
	}
	n := aead.NonceSize()
	plaintext, err := aead.Open(nil, ciphertext[:n], ciphertext[n:], aad)
	if err != nil {
		// GCM's error says nothing more than "authentication failed".
		return nil, fmt.Errorf("sealing: key %q: %w", keyID, ErrOpen)
	}
	return plaintext, nil
}

// GenerateKey returns a new random key, base64-encoded as Config expects it.
func GenerateKey() (string, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("sealing: reading random bytes: %w", err)
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}
