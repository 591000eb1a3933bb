package clickhouse

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// PasswordSHA256Hex is how ClickHouse stores a password: lower-case hex of its SHA-256.
func PasswordSHA256Hex(password string) string {
	sum := sha256.Sum256([]byte(password))
	return hex.EncodeToString(sum[:])
}

// UserFile is the users.d file content of a user limited to one database. The server
// merges every users.d/*.xml into its users and re-reads them on its own (18.16 checks the
// files every few seconds), so no restart is needed. <yandex> is the root every version
// accepts. Names are validated identifiers and the hash is hex, so nothing needs escaping.
func UserFile(user, db, passwordSHA256Hex string) ([]byte, error) {
	if _, err := quoteAll(user, db); err != nil {
		return nil, err
	}
	if !sha256Hex.MatchString(passwordSHA256Hex) {
		return nil, fmt.Errorf("password hash must be 64 lower-case hex digits")
	}
	return fmt.Appendf(nil, `<?xml version="1.0"?>
<yandex>
  <users>
    <%[1]s>
      <password_sha256_hex>%[3]s</password_sha256_hex>
      <networks><ip>::/0</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <allow_databases><database>%[2]s</database></allow_databases>
    </%[1]s>
  </users>
</yandex>
`, user, db, passwordSHA256Hex), nil
}

// userFilePath is where a user's file lives in dir.
func userFilePath(dir, user string) string { return filepath.Join(dir, user+".xml") }

// writeUserFile writes the user's file atomically (temp file, then rename) so the server
// never reads half a file; an identical file is left alone so the server does not reload.
// The temp name does not end in .xml, so the server never merges it.
func writeUserFile(dir, user string, content []byte) error {
	path := userFilePath(dir, user)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, content) {
		return nil
	}
	tmp, err := os.CreateTemp(dir, "."+user+".*.tmp")
	if err != nil {
		return fmt.Errorf("writing the users.d file of %s: %w", user, err)
	}
	tmpName := tmp.Name()
	defer func() { _ = os.Remove(tmpName) }() // no-op after the rename
	if _, err := tmp.Write(content); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("writing the users.d file of %s: %w", user, err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("writing the users.d file of %s: %w", user, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the users.d file of %s: %w", user, err)
	}
	// The server runs as its own user and must read the file; it holds a password hash,
	// never the password.
	if err := os.Chmod(tmpName, 0o644); err != nil {
		return fmt.Errorf("writing the users.d file of %s: %w", user, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("installing the users.d file of %s: %w", user, err)
	}
	return nil
}

// removeUserFile deletes the user's file; a missing file is fine.
func removeUserFile(dir, user string) error {
	if err := os.Remove(userFilePath(dir, user)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the users.d file of %s: %w", user, err)
	}
	return nil
}
