package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// maxJWKSBytes bounds the issuer's key set document.
const maxJWKSBytes = 1 << 20

// signingAlgs are the JWS algorithms accepted; "none" and HMAC never are.
func signingAlgs() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{
		jose.RS256, jose.RS384, jose.RS512,
		jose.PS256, jose.PS384, jose.PS512,
		jose.ES256, jose.ES384, jose.ES512,
		jose.EdDSA,
	}
}

// remoteKeySet is the issuer's JWKS, cached. It implements go-oidc's KeySet. Unlike
// go-oidc's own, a token with an unknown key id refetches the keys at most once per
// minInterval, so tokens with made-up key ids cannot turn into a request to the issuer
// each; a rotated key is still picked up on the first token signed with it.
type remoteKeySet struct {
	url         string
	client      *http.Client
	minInterval time.Duration

	fetchMu sync.Mutex // one fetch at a time; guards lastFetch

	mu        sync.RWMutex
	keys      []jose.JSONWebKey
	lastFetch time.Time
	lastErr   error // of the last fetch
}

// keyErrorKey carries a *keyError through go-oidc, which flattens the KeySet's error into
// a string: the Authenticator reads the typed refusal from it.
type keyErrorKey struct{}

type keyError struct{ err error }

func withKeyError(ctx context.Context) (context.Context, *keyError) {
	ke := &keyError{}
	return context.WithValue(ctx, keyErrorKey{}, ke), ke
}

// VerifySignature checks the JWS signature against the issuer's keys and returns the
// payload. Errors are *Error.
func (r *remoteKeySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	payload, err := r.verify(ctx, raw)
	if err != nil {
		if ke, ok := ctx.Value(keyErrorKey{}).(*keyError); ok {
			ke.err = err
		}
		return nil, err
	}
	return payload, nil
}

func (r *remoteKeySet) verify(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, signingAlgs())
	if err != nil {
		return nil, refuse(ReasonMalformed, "parsing the JWS: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, refuse(ReasonMalformed, "%d signatures, want 1", len(jws.Signatures))
	}
	kid := jws.Signatures[0].Header.KeyID

	payload, known := tryKeys(jws, kid, r.cached())
	if payload != nil {
		return payload, nil
	}
	if known {
		// The key is the issuer's and the signature does not match it: a forgery or a
		// corrupted token, which fetching the keys again cannot fix.
		return nil, refuse(ReasonInvalidToken, "signature does not verify with key %q", kid)
	}
	keys, err := r.refresh(ctx)
	if err != nil {
		return nil, &Error{Reason: ReasonUnavailable, Err: fmt.Errorf("fetching the issuer's keys: %w", err)}
	}
	if payload, known = tryKeys(jws, kid, keys); payload != nil {
		return payload, nil
	}
	if known {
		return nil, refuse(ReasonInvalidToken, "signature does not verify with key %q", kid)
	}
	return nil, refuse(ReasonInvalidToken, "signed with key %q, which the issuer does not publish", kid)
}

// tryKeys verifies jws with the keys of id kid (every key when kid is empty). known
// reports whether any key was tried.
func tryKeys(jws *jose.JSONWebSignature, kid string, keys []jose.JSONWebKey) (payload []byte, known bool) {
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		known = true
		if p, err := jws.Verify(&keys[i]); err == nil {
			return p, true
		}
	}
	return nil, known
}

func (r *remoteKeySet) cached() []jose.JSONWebKey {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.keys
}

// refresh fetches the keys unless they were fetched (or a fetch was tried) less than
// minInterval ago, and returns the keys it has. Callers that waited for another's fetch
// get its result without fetching again.
func (r *remoteKeySet) refresh(ctx context.Context) ([]jose.JSONWebKey, error) {
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	r.mu.RLock()
	recent := !r.lastFetch.IsZero() && time.Since(r.lastFetch) < r.minInterval
	keys, lastErr := r.keys, r.lastErr
	r.mu.RUnlock()
	if recent {
		if keys == nil && lastErr != nil {
			return nil, lastErr // no keys yet: still unavailable, not "unknown key"
		}
		return keys, nil
	}
	keys, err := r.fetch(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastFetch, r.lastErr = time.Now(), err // failures count too: a failing issuer is not hammered
	if err != nil {
		return nil, err
	}
	r.keys = keys
	return keys, nil
}

func (r *remoteKeySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", r.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", r.url, resp.Status)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("GET %s: key set larger than %d bytes", r.url, maxJWKSBytes)
	}
	return parseJWKS(body)
}

// parseJWKS reads a JWKS document, keeping the public signing keys it can use and
// skipping the others (encryption keys, unknown key types) instead of failing on them.
func parseJWKS(body []byte) ([]jose.JSONWebKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decoding the key set: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil || !k.Valid() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		keys = append(keys, k.Public()) // a published private key is used as its public half only
	}
	return keys, nil
}
