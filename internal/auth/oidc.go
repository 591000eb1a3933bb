package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Claims is what the web API takes from a verified OIDC token.
type Claims struct {
	Issuer   string
	Subject  string
	TenantID string
	Email    string
	Expiry   time.Time
}

// OIDCVerifier verifies the bearer tokens of one OIDC issuer: signature against the
// issuer's published keys (refetched when a token names a key not seen yet, so the
// issuer's key rotation needs no restart), issuer, audience, expiry and not-before, then
// the tenant and email claims. The issuer is discovered on first use, so the web API
// starts while the issuer is down. Safe for concurrent use.
type OIDCVerifier struct {
	cfg    OIDCConfig
	client *http.Client

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	lastErr  error // of the last discovery attempt, while verifier is nil
	lastTry  time.Time
}

// NewOIDCVerifier checks the config and prepares a verifier; it does not contact the
// issuer (see Discover).
func NewOIDCVerifier(cfg OIDCConfig) (*OIDCVerifier, error) {
	cfg.Default()
	if errs := cfg.Validate(nil); len(errs) > 0 {
		return nil, fmt.Errorf("oidc config: %w", errs.ToAggregate())
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("oidc config: reading the CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("oidc config: the CA file %s holds no PEM certificate", cfg.CAFile)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &OIDCVerifier{
		cfg:    cfg,
		client: &http.Client{Transport: transport, Timeout: cfg.RequestTimeout.Duration},
	}, nil
}

// Discover fetches the issuer's discovery document if that has not succeeded yet; a
// readiness check can call it. Errors are ErrUnavailable.
func (v *OIDCVerifier) Discover(ctx context.Context) error {
	_, err := v.idTokenVerifier(ctx)
	return err
}

func (v *OIDCVerifier) idTokenVerifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.verifier != nil {
		return v.verifier, nil
	}
	// A failed discovery is retried at the pace of key refreshes, not on every request.
	if v.lastErr != nil && time.Since(v.lastTry) < v.cfg.KeyRefreshMinInterval.Duration {
		return nil, v.lastErr
	}
	verifier, err := v.discover(ctx)
	v.lastTry = time.Now()
	if err != nil {
		v.lastErr = &Error{Reason: ReasonUnavailable, Err: fmt.Errorf("discovering OIDC issuer %s: %w", v.cfg.IssuerURL, err)}
		return nil, v.lastErr
	}
	v.verifier, v.lastErr = verifier, nil
	return verifier, nil
}

func (v *OIDCVerifier) discover(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, v.client), v.cfg.IssuerURL)
	if err != nil {
		return nil, err
	}
	var meta struct {
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, err
	}
	u, err := url.Parse(meta.JWKSURI)
	if err != nil || u.Host == "" || (u.Scheme != "https" && (u.Scheme != "http" || !v.cfg.AllowInsecureHTTP)) {
		return nil, fmt.Errorf("the discovery document's jwks_uri %q is not an https URL", meta.JWKSURI)
	}
	var algs []string
	for _, a := range signingAlgs() {
		if len(meta.Algs) == 0 || slices.Contains(meta.Algs, string(a)) {
			algs = append(algs, string(a))
		}
	}
	if len(algs) == 0 {
		return nil, fmt.Errorf("the issuer signs with %v, none of which is accepted", meta.Algs)
	}
	keys := &remoteKeySet{url: meta.JWKSURI, client: v.client, minInterval: v.cfg.KeyRefreshMinInterval.Duration}
	return oidc.NewVerifier(v.cfg.IssuerURL, keys, &oidc.Config{ClientID: v.cfg.Audience, SupportedSigningAlgs: algs}), nil
}

// unverifiedClaims are read before the signature is checked, only to refuse early
// (another issuer's token costs no request) and to name why a verification failed.
type unverifiedClaims struct {
	Issuer   string          `json:"iss"`
	Audience json.RawMessage `json:"aud"`
}

func (c unverifiedClaims) hasAudience(aud string) bool {
	var one string
	if json.Unmarshal(c.Audience, &one) == nil {
		return one == aud
	}
	var many []string
	return json.Unmarshal(c.Audience, &many) == nil && slices.Contains(many, aud)
}

// Verify verifies an OIDC token and returns its claims. Errors are *Error for refusals.
func (v *OIDCVerifier) Verify(ctx context.Context, raw string) (Claims, error) {
	if len(raw) > maxCredentialLen || strings.Count(raw, ".") != 2 {
		return Claims{}, refuse(ReasonMalformed, "not a JWT in compact form")
	}
	jws, err := jose.ParseSignedCompact(raw, signingAlgs())
	if err != nil {
		return Claims{}, refuse(ReasonMalformed, "parsing the JWT: %w", err)
	}
	var pre unverifiedClaims
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &pre); err != nil {
		return Claims{}, refuse(ReasonMalformed, "decoding the JWT's claims: %w", err)
	}
	if pre.Issuer != v.cfg.IssuerURL {
		return Claims{}, refuse(ReasonUnknownIssuer, "issuer %q, want %q", pre.Issuer, v.cfg.IssuerURL)
	}
	verifier, err := v.idTokenVerifier(ctx)
	if err != nil {
		return Claims{}, err
	}
	vctx, keyErr := withKeyError(ctx)
	tok, err := verifier.Verify(vctx, raw)
	if err != nil {
		var expired *oidc.TokenExpiredError
		switch {
		case keyErr.err != nil:
			return Claims{}, keyErr.err
		case errors.As(err, &expired):
			return Claims{}, &Error{Reason: ReasonExpired, Err: err}
		case !pre.hasAudience(v.cfg.Audience):
			return Claims{}, &Error{Reason: ReasonWrongAudience, Err: err}
		}
		return Claims{}, &Error{Reason: ReasonInvalidToken, Err: err}
	}
	var all map[string]any
	if err := tok.Claims(&all); err != nil {
		return Claims{}, refuse(ReasonMalformed, "decoding the token's claims: %w", err)
	}
	c := Claims{Issuer: tok.Issuer, Subject: tok.Subject, Expiry: tok.Expiry}
	c.TenantID, _ = all[v.cfg.TenantClaim].(string)
	c.Email, _ = all[v.cfg.EmailClaim].(string)
	c.TenantID, c.Email = strings.TrimSpace(c.TenantID), strings.TrimSpace(c.Email)
	if c.TenantID == "" || c.Email == "" {
		return Claims{}, refuse(ReasonMissingClaim, "token of %q lacks a string %s or %s claim", tok.Subject, v.cfg.TenantClaim, v.cfg.EmailClaim)
	}
	// Some issuers let users set an email they do not own; such tokens say so.
	switch verified := all["email_verified"].(type) {
	case bool:
		if !verified {
			return Claims{}, refuse(ReasonEmailNotVerified, "token of %q: email_verified is false", tok.Subject)
		}
	case string: // some issuers send "true"/"false"
		if verified != "true" {
			return Claims{}, refuse(ReasonEmailNotVerified, "token of %q: email_verified is %q", tok.Subject, verified)
		}
	}
	return c, nil
}
