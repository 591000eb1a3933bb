package sealing

import (
	"encoding/base64"
	"fmt"
	"os"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Config lists the sealing keys. Rotating is: add a new key, make it current, re-seal
// (updates re-seal with the current key), and remove the old key once nothing uses it.
type Config struct {
	// CurrentKeyID names the key new secrets are sealed with. Defaults to the only key
	// when there is one.
	CurrentKeyID string `json:"currentKeyID,omitempty"`
	// Keys open secrets; the current one also seals them.
	Keys []KeyConfig `json:"keys,omitempty"`
}

// KeyConfig is one key: 32 random bytes, base64-encoded (standard or URL alphabet,
// padded or not). Exactly one of File and Value is set.
type KeyConfig struct {
	// ID names the key; it is stored with every ciphertext, so it must never be reused
	// for different key material.
	ID string `json:"id"`
	// File holds the base64 key, typically a mounted Secret, so keys stay out of the
	// platform config. Read when the keyring is loaded.
	File string `json:"file,omitempty"`
	// Value is the base64 key inline; for development only.
	Value string `json:"value,omitempty"`
}

// Default fills in every unset field that has a default.
func (c *Config) Default() {
	if c.CurrentKeyID == "" && len(c.Keys) == 1 {
		c.CurrentKeyID = c.Keys[0].ID
	}
}

// Validate reports every invalid field, each error naming its path under path. Key
// values are never echoed. Key files are read by Load, not here.
func (c *Config) Validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	keysPath := path.Child("keys")
	if len(c.Keys) == 0 {
		errs = append(errs, field.Required(keysPath, "at least one key seals and opens secrets"))
	}
	seen := map[string]bool{}
	for i, key := range c.Keys {
		p := keysPath.Index(i)
		switch msg := validKeyID(key.ID); {
		case msg != "":
			errs = append(errs, field.Invalid(p.Child("id"), key.ID, msg))
		case seen[key.ID]:
			errs = append(errs, field.Duplicate(p.Child("id"), key.ID))
		}
		seen[key.ID] = true
		switch {
		case key.File == "" && key.Value == "":
			errs = append(errs, field.Required(p.Child("file"), "set file or value"))
		case key.File != "" && key.Value != "":
			errs = append(errs, field.Forbidden(p.Child("value"), "set only one of file and value"))
		case key.Value != "":
			if _, err := decodeKey(key.Value); err != nil {
				errs = append(errs, field.Invalid(p.Child("value"), "(redacted)", err.Error()))
			}
		}
	}
	if c.CurrentKeyID == "" {
		if len(c.Keys) > 1 {
			errs = append(errs, field.Required(path.Child("currentKeyID"), "name the key that seals new secrets"))
		}
	} else if !seen[c.CurrentKeyID] {
		errs = append(errs, field.Invalid(path.Child("currentKeyID"), c.CurrentKeyID, "must be the id of one of the keys"))
	}
	return errs
}

// Load validates a defaulted copy of cfg, reads the key files and builds the keyring.
func Load(cfg Config) (*Keyring, error) {
	cfg.Keys = append([]KeyConfig(nil), cfg.Keys...)
	cfg.Default()
	if errs := cfg.Validate(nil); len(errs) > 0 {
		return nil, fmt.Errorf("sealing config: %w", errs.ToAggregate())
	}
	keys := make(map[string][]byte, len(cfg.Keys))
	for _, key := range cfg.Keys {
		encoded := key.Value
		if key.File != "" {
			data, err := os.ReadFile(key.File)
			if err != nil {
				return nil, fmt.Errorf("sealing config: key %q: %w", key.ID, err)
			}
			encoded = string(data)
		}
		raw, err := decodeKey(encoded)
		if err != nil {
			return nil, fmt.Errorf("sealing config: key %q: %w", key.ID, err)
		}
		keys[key.ID] = raw
	}
	return NewKeyring(cfg.CurrentKeyID, keys)
}

// decodeKey accepts the base64 alphabets people produce (openssl rand -base64 32, or URL
// safe), with or without padding, and surrounding whitespace from a file.
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		raw, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(raw) != KeySize {
			return nil, fmt.Errorf("decodes to %d bytes, want %d", len(raw), KeySize)
		}
		return raw, nil
	}
	return nil, fmt.Errorf("not base64")
}

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// validKeyID returns why id cannot name a key, or "". Ids are stored in a text column
// and appear in logs, so they are kept short and plain.
func validKeyID(id string) string {
	if !keyIDPattern.MatchString(id) {
		return "must be 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit"
	}
	return ""
}
