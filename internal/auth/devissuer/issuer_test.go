package devissuer

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func get(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func keySet(t *testing.T, s *Server) jose.JSONWebKeySet {
	t.Helper()
	var set jose.JSONWebKeySet
	get(t, s.URL()+KeysPath, &set)
	return set
}

// verify checks a token against the served key set, as a verifier would.
func verify(t *testing.T, s *Server, token string) (map[string]any, bool) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	kid := jws.Signatures[0].Header.KeyID
	set := keySet(t, s)
	keys := set.Key(kid)
	if len(keys) != 1 {
		return nil, false
	}
	payload, err := jws.Verify(&keys[0])
	if err != nil {
		t.Fatalf("token signed with published key %s does not verify: %v", kid, err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims, true
}

func TestIssuer(t *testing.T) {
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()

	var doc map[string]any
	get(t, s.URL()+DiscoveryPath, &doc)
	if doc["issuer"] != s.URL() || doc["jwks_uri"] != s.URL()+KeysPath {
		t.Errorf("discovery document %v: want issuer %s and its keys", doc, s.URL())
	}

	token, err := s.Token("acme", "ann@acme.test", "shoal", 0)
	if err != nil {
		t.Fatal(err)
	}
	claims, ok := verify(t, s, token)
	if !ok {
		t.Fatal("the first token's key is not published")
	}
	want := map[string]any{"iss": s.URL(), "aud": "shoal", "email": "ann@acme.test", "shoal_tenant": "acme", "sub": "ann@acme.test", "email_verified": true}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	if exp, _ := claims["exp"].(float64); time.Until(time.Unix(int64(exp), 0)) < 59*time.Minute {
		t.Errorf("exp %v: want about an hour from now", claims["exp"])
	}

	custom, err := s.Sign(Claims{TenantClaim: "org", Tenant: "globex", Extra: map[string]any{"iss": "https://elsewhere.test", "groups": []string{"a"}}})
	if err != nil {
		t.Fatal(err)
	}
	if claims, _ := verify(t, s, custom); claims["org"] != "globex" || claims["iss"] != "https://elsewhere.test" || claims["email"] != nil {
		t.Errorf("custom claims %v", claims)
	}

	// Rotation: with a grace period the old key stays published, without one it goes.
	first := s.KeyIDs()[0]
	second, err := s.Rotate(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if ids := s.KeyIDs(); !slices.Equal(ids, []string{second, first}) {
		t.Errorf("after a rotation with grace: keys %v, want [%s %s]", ids, second, first)
	}
	if _, ok := verify(t, s, token); !ok {
		t.Error("a token of the old key stopped verifying within the grace period")
	}
	rotated, _ := s.Token("acme", "ann@acme.test", "shoal", 0)
	if _, ok := verify(t, s, rotated); !ok {
		t.Error("a token of the new key does not verify")
	}
	third, err := s.Rotate(0)
	if err != nil {
		t.Fatal(err)
	}
	if ids := s.KeyIDs(); !slices.Equal(ids, []string{third, first}) {
		t.Errorf("after a rotation without grace: keys %v, want [%s %s]", ids, third, first)
	}
	if _, ok := verify(t, s, rotated); ok {
		t.Error("a token of a key dropped without grace still verifies")
	}
	if len(keySet(t, s).Keys) != 2 {
		t.Error("the served key set does not match KeyIDs")
	}
}
