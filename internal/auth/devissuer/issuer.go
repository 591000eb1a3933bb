// Package devissuer is a small, real OpenID Connect issuer for `shoal dev` and tests: it
// serves a discovery document and its signing keys over HTTP and signs RS256 tokens with
// whatever claims it is given, and it can rotate its key. Verifiers talk to it exactly as
// to a production issuer.
//
// It is for local use and tests only: it signs any claims for anyone who can call it,
// has no sign-in, and keeps its keys in memory.
package devissuer

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Paths served under the issuer URL.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	KeysPath      = "/keys"
)

// Defaults of Claims.
const (
	DefaultTenantClaim = "shoal_tenant"
	DefaultTTL         = time.Hour
	rsaBits            = 2048
)

// Claims are the claims of a token to sign. Zero fields get defaults or are left out.
type Claims struct {
	Subject string
	// Audience is the aud claim.
	Audience string
	Email    string
	Tenant   string
	// TenantClaim names the claim Tenant goes in. Default "shoal_tenant".
	TenantClaim string
	// EmailVerified, when set, is the email_verified claim.
	EmailVerified *bool
	// IssuedAt defaults to now; Expiry to IssuedAt + 1h. NotBefore is left out if zero.
	IssuedAt  time.Time
	Expiry    time.Time
	NotBefore time.Time
	// Extra claims are set last and override the ones above, iss included.
	Extra map[string]any
}

type signingKey struct {
	id   string
	priv *rsa.PrivateKey
	// retiredUntil is when a rotated-out key leaves the key set; zero for the current key.
	retiredUntil time.Time
}

// Issuer signs tokens as the issuer at its URL and publishes its keys. Safe for
// concurrent use.
type Issuer struct {
	url string

	mu   sync.Mutex
	keys []*signingKey // keys[0] signs
}

// New returns an issuer identified by issuerURL (its tokens' iss), with a fresh key.
// Serve Handler at that URL.
func New(issuerURL string) (*Issuer, error) {
	k, err := newKey()
	if err != nil {
		return nil, err
	}
	return &Issuer{url: issuerURL, keys: []*signingKey{k}}, nil
}

func newKey() (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return nil, fmt.Errorf("devissuer: generating a key: %w", err)
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("devissuer: generating a key id: %w", err)
	}
	return &signingKey{id: hex.EncodeToString(id), priv: priv}, nil
}

// URL is the issuer URL, as in its tokens' iss claim.
func (i *Issuer) URL() string { return i.url }

// Rotate replaces the signing key with a new one and returns the new key's id. The old
// key stays published for grace, so tokens it signed keep verifying until then; a grace
// of 0 drops it at once.
func (i *Issuer) Rotate(grace time.Duration) (string, error) {
	k, err := newKey()
	if err != nil {
		return "", err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys[0].retiredUntil = time.Now().Add(grace)
	i.keys = append([]*signingKey{k}, i.keys...)
	return k.id, nil
}

// KeyIDs returns the ids of the published keys, the signing key first.
func (i *Issuer) KeyIDs() []string {
	var ids []string
	for _, k := range i.published() {
		ids = append(ids, k.id)
	}
	return ids
}

// published returns the signing key and the retired keys still in their grace period,
// forgetting the others.
func (i *Issuer) published() []*signingKey {
	i.mu.Lock()
	defer i.mu.Unlock()
	now := time.Now()
	live := i.keys[:1]
	for _, k := range i.keys[1:] {
		if now.Before(k.retiredUntil) {
			live = append(live, k)
		}
	}
	i.keys = live
	return append([]*signingKey(nil), live...)
}

// Sign returns a compact RS256 JWT of the claims, signed with the current key.
func (i *Issuer) Sign(c Claims) (string, error) {
	key := i.published()[0]
	now := time.Now()
	if c.IssuedAt.IsZero() {
		c.IssuedAt = now
	}
	if c.Expiry.IsZero() {
		c.Expiry = c.IssuedAt.Add(DefaultTTL)
	}
	if c.TenantClaim == "" {
		c.TenantClaim = DefaultTenantClaim
	}
	claims := map[string]any{
		"iss": i.url,
		"iat": c.IssuedAt.Unix(),
		"exp": c.Expiry.Unix(),
	}
	for name, v := range map[string]string{"sub": c.Subject, "aud": c.Audience, "email": c.Email, c.TenantClaim: c.Tenant} {
		if v != "" {
			claims[name] = v
		}
	}
	if !c.NotBefore.IsZero() {
		claims["nbf"] = c.NotBefore.Unix()
	}
	if c.EmailVerified != nil {
		claims["email_verified"] = *c.EmailVerified
	}
	for name, v := range c.Extra {
		claims[name] = v
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("devissuer: encoding claims: %w", err)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key.priv, KeyID: key.id}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("devissuer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("devissuer: signing: %w", err)
	}
	return jws.CompactSerialize()
}

// Token signs a token for a user of a tenant, valid for ttl (DefaultTTL if 0): what
// `shoal dev` hands out so the demo can sign in.
func (i *Issuer) Token(tenant, email, audience string, ttl time.Duration) (string, error) {
	if ttl == 0 {
		ttl = DefaultTTL
	}
	verified := true
	return i.Sign(Claims{Subject: email, Audience: audience, Email: email, Tenant: tenant, EmailVerified: &verified, Expiry: time.Now().Add(ttl)})
}

// Handler serves the discovery document and the key set.
func (i *Issuer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+DiscoveryPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                i.url,
			"jwks_uri":                              i.url + KeysPath,
			"authorization_endpoint":                i.url + "/authorize", // not served: tokens come from Sign
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{string(jose.RS256)},
			"claims_supported":                      []string{"sub", "aud", "exp", "iat", "iss", "email", "email_verified", DefaultTenantClaim},
		})
	})
	mux.HandleFunc("GET "+KeysPath, func(w http.ResponseWriter, _ *http.Request) {
		var set jose.JSONWebKeySet
		for _, k := range i.published() {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.id, Algorithm: string(jose.RS256), Use: "sig"})
		}
		writeJSON(w, set)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// Server is an Issuer serving on its own listener.
type Server struct {
	*Issuer
	srv  *http.Server
	done chan error
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves an issuer whose URL
// is http://<the address listened on>.
func Start(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("devissuer: %w", err)
	}
	iss, err := New("http://" + ln.Addr().String())
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	s := &Server{
		Issuer: iss,
		srv:    &http.Server{Handler: iss.Handler(), ReadHeaderTimeout: 10 * time.Second},
		done:   make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server, waiting for requests in flight.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serveErr := <-s.done; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}
