package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/shoal-dev/shoal/internal/auth/devissuer"
)

func TestParseJWKS(t *testing.T) {
	iss, err := devissuer.New("http://issuer.test")
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	iss.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, devissuer.KeysPath, nil))
	var served struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &served); err != nil || len(served.Keys) != 1 {
		t.Fatalf("served key set %s: %v", rec.Body, err)
	}
	sig := served.Keys[0]
	enc := map[string]any{}
	for k, v := range sig {
		enc[k] = v
	}
	enc["use"], enc["kid"] = "enc", "enc-key"
	docs := []struct {
		name     string
		keys     []any
		wantKids []string
		wantErr  bool
	}{
		{"signing key", []any{sig}, []string{sig["kid"].(string)}, false},
		{"encryption key skipped", []any{enc, sig}, []string{sig["kid"].(string)}, false},
		{"unknown key type skipped", []any{map[string]any{"kty": "XYZ", "kid": "odd"}, sig}, []string{sig["kid"].(string)}, false},
		{"empty", []any{}, nil, false},
	}
	for _, d := range docs {
		body, _ := json.Marshal(map[string]any{"keys": d.keys})
		keys, err := parseJWKS(body)
		var kids []string
		for _, k := range keys {
			kids = append(kids, k.KeyID)
			if !k.IsPublic() {
				t.Errorf("%s: key %s is not public", d.name, k.KeyID)
			}
		}
		if (err != nil) != d.wantErr || strings.Join(kids, ",") != strings.Join(d.wantKids, ",") {
			t.Errorf("%s: keys %v, %v; want %v", d.name, kids, err, d.wantKids)
		}
	}
	if _, err := parseJWKS([]byte("not json")); err == nil {
		t.Error("parseJWKS accepted a document that is not JSON")
	}
}

// TestKeySetUnavailable serves no keys: tokens get ErrUnavailable (503), also while the
// next fetch is held back, and verify once the keys are served.
func TestKeySetUnavailable(t *testing.T) {
	iss, err := devissuer.New("http://issuer.test")
	if err != nil {
		t.Fatal(err)
	}
	var (
		up      atomic.Bool
		fetches atomic.Int64
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if !up.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		iss.Handler().ServeHTTP(w, r)
	}))
	defer srv.Close()
	const interval = 200 * time.Millisecond
	ks := &remoteKeySet{url: srv.URL + devissuer.KeysPath, client: srv.Client(), minInterval: interval}
	tok, err := iss.Token("acme", "ann@acme.test", "shoal", 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	for i := range 3 {
		if _, err := ks.VerifySignature(ctx, tok); !errors.Is(err, ErrUnavailable) {
			t.Errorf("attempt %d with the key set down: %v, want ErrUnavailable", i, err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches within the refresh interval, want 1", n)
	}
	up.Store(true)
	time.Sleep(interval)
	payload, err := ks.VerifySignature(ctx, tok)
	if err != nil || !strings.Contains(string(payload), "ann@acme.test") {
		t.Errorf("key set back: %s, %v", payload, err)
	}

	// A known key with a signature that does not match is refused without a fetch.
	before := fetches.Load()
	parts := strings.Split(tok, ".")
	other, _ := iss.Token("globex", "zed@globex.test", "shoal", 0)
	forged := parts[0] + "." + strings.Split(other, ".")[1] + "." + parts[2]
	if _, err := ks.VerifySignature(ctx, forged); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("forged payload: %v, want ErrInvalidToken", err)
	}
	if _, err := jose.ParseSignedCompact(forged, signingAlgs()); err != nil {
		t.Fatalf("the forged token does not even parse: %v", err)
	}
	if fetches.Load() != before {
		t.Error("a bad signature under a known key fetched the key set")
	}
}
