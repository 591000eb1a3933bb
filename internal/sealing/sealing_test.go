package sealing

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func mustKeyring(t *testing.T, current string, keys map[string][]byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(current, keys)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := mustKeyring(t, "k1", map[string][]byte{"k1": key(1)})
	plaintext := []byte(`{"password":"hunter2"}`)
	aad := []byte("acme/1")

	id, ct, err := k.Seal(plaintext, aad)
	if err != nil {
		t.Fatal(err)
	}
	if id != "k1" {
		t.Errorf("sealed with key %q, want k1", id)
	}
	if bytes.Contains(ct, plaintext) || bytes.Contains(ct, []byte("hunter2")) {
		t.Error("the ciphertext contains the plaintext")
	}
	_, ct2, err := k.Seal(plaintext, aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(ct, ct2) {
		t.Error("two seals of the same plaintext are equal: the nonce is not random")
	}

	flipped := func(i int) []byte {
		c := bytes.Clone(ct)
		c[i] ^= 1
		return c
	}
	cases := []struct {
		name    string
		keyID   string
		ct      []byte
		aad     []byte
		wantErr error
	}{
		{"round trip", "k1", ct, aad, nil},
		{"nonce tampered", "k1", flipped(0), aad, ErrOpen},
		{"body tampered", "k1", flipped(len(ct) / 2), aad, ErrOpen},
		{"tag tampered", "k1", flipped(len(ct) - 1), aad, ErrOpen},
		{"truncated", "k1", ct[:len(ct)-1], aad, ErrOpen},
		{"too short", "k1", ct[:10], aad, ErrOpen},
		{"empty", "k1", nil, aad, ErrOpen},
		{"wrong aad (copied to another row)", "k1", ct, []byte("acme/2"), ErrOpen},
		{"missing aad", "k1", ct, nil, ErrOpen},
		{"unknown key id", "k0", ct, aad, ErrUnknownKey},
	}
	for _, c := range cases {
		got, err := k.Open(c.keyID, c.ct, c.aad)
		if c.wantErr == nil {
			if err != nil || !bytes.Equal(got, plaintext) {
				t.Errorf("%s: %q, %v; want the plaintext", c.name, got, err)
			}
			continue
		}
		if !errors.Is(err, c.wantErr) || got != nil {
			t.Errorf("%s: %q, %v; want %v", c.name, got, err, c.wantErr)
		}
	}
}

func TestRotation(t *testing.T) {
	old := mustKeyring(t, "k1", map[string][]byte{"k1": key(1)})
	aad := []byte("acme/1")
	oldID, oldCT, err := old.Seal([]byte("secret"), aad)
	if err != nil {
		t.Fatal(err)
	}

	rotated := mustKeyring(t, "k2", map[string][]byte{"k1": key(1), "k2": key(2)})
	if got, err := rotated.Open(oldID, oldCT, aad); err != nil || string(got) != "secret" {
		t.Errorf("the rotated keyring opens the old ciphertext as %q, %v", got, err)
	}
	newID, newCT, err := rotated.Seal([]byte("secret"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if newID != "k2" || rotated.CurrentKeyID() != "k2" {
		t.Errorf("sealed with %q (current %q), want k2", newID, rotated.CurrentKeyID())
	}
	if _, err := old.Open(newID, newCT, aad); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("the old keyring opening a k2 ciphertext: %v, want ErrUnknownKey", err)
	}
	// A ciphertext presented under the wrong id must not open with the other key.
	if _, err := rotated.Open("k1", newCT, aad); !errors.Is(err, ErrOpen) {
		t.Errorf("a k2 ciphertext opened as k1: %v, want ErrOpen", err)
	}

	retired := mustKeyring(t, "k2", map[string][]byte{"k2": key(2)})
	if _, err := retired.Open(oldID, oldCT, aad); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("opening with a retired key: %v, want ErrUnknownKey", err)
	}
	if got := strings.Join(rotated.KeyIDs(), ","); got != "k1,k2" {
		t.Errorf("KeyIDs = %s", got)
	}
}

func TestNewKeyringErrors(t *testing.T) {
	cases := []struct {
		name    string
		current string
		keys    map[string][]byte
	}{
		{"no keys", "k1", nil},
		{"current missing", "k2", map[string][]byte{"k1": key(1)}},
		{"short key", "k1", map[string][]byte{"k1": key(1)[:16]}},
		{"bad id", "k 1", map[string][]byte{"k 1": key(1)}},
	}
	for _, c := range cases {
		if _, err := NewKeyring(c.current, c.keys); err == nil {
			t.Errorf("%s: NewKeyring succeeded", c.name)
		}
	}
}

func TestConfig(t *testing.T) {
	k1 := base64.StdEncoding.EncodeToString(key(1))
	k2url := base64.RawURLEncoding.EncodeToString(key(0xfb)) // uses the URL alphabet
	short := base64.StdEncoding.EncodeToString(key(1)[:31])

	cases := []struct {
		name       string
		cfg        Config
		wantFields []string
	}{
		{"one inline key, current defaulted", Config{Keys: []KeyConfig{{ID: "k1", Value: k1}}}, nil},
		{"file key", Config{CurrentKeyID: "k1", Keys: []KeyConfig{{ID: "k1", File: "/etc/shoal/k1"}}}, nil},
		{"no keys", Config{}, []string{"sealing.keys"}},
		{"two keys, no current", Config{Keys: []KeyConfig{{ID: "k1", Value: k1}, {ID: "k2", Value: k2url}}}, []string{"sealing.currentKeyID"}},
		{"current unknown", Config{CurrentKeyID: "k9", Keys: []KeyConfig{{ID: "k1", Value: k1}}}, []string{"sealing.currentKeyID"}},
		{"bad entries", Config{CurrentKeyID: "k1", Keys: []KeyConfig{
			{ID: "k1", Value: k1},
			{ID: "k1", Value: k1},
			{ID: "", Value: k1},
			{ID: "k3"},
			{ID: "k4", Value: k1, File: "/f"},
			{ID: "k5", Value: short},
			{ID: "k6", Value: "not base64!"},
		}}, []string{
			"sealing.keys[1].id", "sealing.keys[2].id", "sealing.keys[3].file",
			"sealing.keys[4].value", "sealing.keys[5].value", "sealing.keys[6].value",
		}},
	}
	for _, c := range cases {
		cfg := c.cfg
		cfg.Default()
		var got []string
		for _, e := range cfg.Validate(field.NewPath("sealing")) {
			got = append(got, e.Field)
			if strings.Contains(e.Error(), k1) || strings.Contains(e.Error(), short) {
				t.Errorf("%s: the error echoes a key: %v", c.name, e)
			}
		}
		if strings.Join(got, ",") != strings.Join(c.wantFields, ",") {
			t.Errorf("%s: invalid fields %v, want %v", c.name, got, c.wantFields)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	fileKey, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "k2")
	if err := os.WriteFile(path, []byte(fileKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inline := base64.StdEncoding.EncodeToString(key(1))
	cfg := Config{CurrentKeyID: "k2", Keys: []KeyConfig{{ID: "k1", Value: inline}, {ID: "k2", File: path}}}
	k, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	id, ct, err := k.Seal([]byte("x"), nil)
	if err != nil || id != "k2" {
		t.Fatalf("Seal: %q, %v", id, err)
	}
	// The file key is what the file says: a keyring built from its bytes opens it.
	raw, _ := base64.StdEncoding.DecodeString(fileKey)
	if got, err := mustKeyring(t, "k2", map[string][]byte{"k2": raw}).Open(id, ct, nil); err != nil || string(got) != "x" {
		t.Errorf("opening with the file's key: %q, %v", got, err)
	}

	for name, bad := range map[string]Config{
		"missing file": {Keys: []KeyConfig{{ID: "k1", File: filepath.Join(dir, "missing")}}},
		"invalid":      {Keys: []KeyConfig{{ID: "k1", Value: "short"}}},
	} {
		if _, err := Load(bad); err == nil {
			t.Errorf("%s: Load succeeded", name)
		}
	}
	if err := os.WriteFile(path, []byte("dG9vIHNob3J0"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(cfg); err == nil || strings.Contains(err.Error(), "dG9vIHNob3J0") {
		t.Errorf("Load with a short key file: %v, want an error not echoing the key", err)
	}
}

// A platform without keys has a nil keyring: sealing refuses with ErrNoKeys instead of
// panicking, so data sources without credentials still work.
func TestNilKeyring(t *testing.T) {
	var k *Keyring
	if _, _, err := k.Seal([]byte("secret"), nil); !errors.Is(err, ErrNoKeys) {
		t.Errorf("Seal: %v, want ErrNoKeys", err)
	}
	if _, err := k.Open("k1", []byte("x"), nil); !errors.Is(err, ErrNoKeys) {
		t.Errorf("Open: %v, want ErrNoKeys", err)
	}
	if k.CurrentKeyID() != "" || k.KeyIDs() != nil {
		t.Error("a nil keyring has keys")
	}
}
