package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/shoal-dev/shoal/internal/metastore"
)

// Method is how a principal authenticated.
type Method string

// Methods.
const (
	MethodOIDC  Method = "oidc"
	MethodToken Method = "token"
)

// maxCredentialLen bounds the Authorization header's token: JWTs with many claims stay
// well under it, and anything longer is refused before parsing.
const maxCredentialLen = 16 << 10

// Principal is who a request acts for. TenantID comes from the credentials, never from
// the request's path or parameters: every query is scoped to it.
type Principal struct {
	TenantID string
	UserID   string
	Email    string
	// Role is the user's role now, read from the metastore on every authentication, so a
	// demotion takes effect on the next request even for tokens minted before it.
	Role   Role
	Method Method
	// TokenID is the personal token's id (MethodToken only), so a token can refuse to
	// revoke itself or the audit log can name it.
	TokenID string
	// Subject is the OIDC token's sub claim (MethodOIDC only), for logs.
	Subject string
	// TenantSuspended is true while the tenant is suspended; Authorize then refuses the
	// actions that are BlockedWhenSuspended.
	TenantSuspended       bool
	TenantSuspendedReason string
}

// Store is what the Authenticator reads from the metadata store; *metastore.Store
// implements it.
type Store interface {
	LookupPersonalToken(ctx context.Context, plaintext string) (metastore.Identity, error)
	IdentityByEmail(ctx context.Context, tenantID, email string) (metastore.Identity, error)
}

// Authenticator turns a request's credentials into a Principal. Safe for concurrent use.
type Authenticator struct {
	store Store
	oidc  *OIDCVerifier
	log   *slog.Logger
}

// NewAuthenticator returns an authenticator that accepts personal API tokens found in
// store and, if verifier is not nil, OIDC bearer tokens it verifies. Refusals are logged
// to log with their detail (nil discards them).
func NewAuthenticator(store Store, verifier *OIDCVerifier, log *slog.Logger) *Authenticator {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Authenticator{store: store, oidc: verifier, log: log}
}

// BearerToken returns the token of the request's "Authorization: Bearer" header.
// Credentials are read from that header only: never from the URL, where they would end
// up in access logs.
func BearerToken(r *http.Request) (string, error) {
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", ErrMissingCredentials
	case 1:
	default:
		return "", refuse(ReasonMalformed, "%d Authorization headers", len(values))
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", refuse(ReasonMalformed, "the Authorization header is not a Bearer token")
	}
	token = strings.TrimSpace(token)
	switch {
	case token == "":
		return "", refuse(ReasonMalformed, "empty bearer token")
	case len(token) > maxCredentialLen:
		return "", refuse(ReasonMalformed, "bearer token of %d bytes", len(token))
	case strings.ContainsAny(token, " \t\r\n"):
		return "", refuse(ReasonMalformed, "bearer token with white space")
	}
	return token, nil
}

// Authenticate authenticates the request by its bearer token. Errors are *Error for
// refusals (see HTTPStatus) and are logged with their detail.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	token, err := BearerToken(r)
	if err != nil {
		a.logRefusal(r.Context(), "", err)
		return Principal{}, err
	}
	return a.AuthenticateToken(r.Context(), token)
}

// AuthenticateToken authenticates a bearer token: a personal API token if it has
// metastore.PersonalTokenPrefix, else an OIDC token (a JWT).
func (a *Authenticator) AuthenticateToken(ctx context.Context, token string) (Principal, error) {
	var (
		p      Principal
		err    error
		method Method
	)
	switch {
	case strings.HasPrefix(token, metastore.PersonalTokenPrefix):
		method = MethodToken
		p, err = a.personalToken(ctx, token)
	case strings.HasPrefix(token, metastore.KeyPrefix):
		method = MethodToken
		err = refuse(ReasonIngestKey, "an ingest key was presented")
	default:
		method = MethodOIDC
		p, err = a.oidcToken(ctx, token)
	}
	if err != nil {
		a.logRefusal(ctx, method, err)
		return Principal{}, err
	}
	return p, nil
}

func (a *Authenticator) personalToken(ctx context.Context, token string) (Principal, error) {
	id, err := a.store.LookupPersonalToken(ctx, token)
	switch {
	case errors.Is(err, metastore.ErrNotFound):
		return Principal{}, &Error{Reason: ReasonUnknownToken, Err: err}
	case errors.Is(err, metastore.ErrTokenRevoked):
		return Principal{}, &Error{Reason: ReasonRevoked, Err: err}
	case errors.Is(err, metastore.ErrTokenExpired):
		return Principal{}, &Error{Reason: ReasonExpired, Err: err}
	case err != nil:
		return Principal{}, storeError(err)
	}
	return principal(id, MethodToken, "")
}

func (a *Authenticator) oidcToken(ctx context.Context, token string) (Principal, error) {
	if a.oidc == nil {
		return Principal{}, refuse(ReasonUnknownIssuer, "no OIDC issuer is configured")
	}
	claims, err := a.oidc.Verify(ctx, token)
	if err != nil {
		return Principal{}, err
	}
	id, err := a.store.IdentityByEmail(ctx, claims.TenantID, claims.Email)
	if errors.Is(err, metastore.ErrNotFound) {
		// The same answer for a tenant that does not exist: the claim's tenant is not
		// confirmed to the client.
		return Principal{}, refuse(ReasonUnknownUser, "%s (sub %q) is not a user of tenant %q", claims.Email, claims.Subject, claims.TenantID)
	}
	if err != nil {
		return Principal{}, storeError(err)
	}
	return principal(id, MethodOIDC, claims.Subject)
}

// principal applies the tenant policy to an identity: a tenant being deleted
// authenticates nobody; a suspended one is reported for Authorize.
func principal(id metastore.Identity, method Method, subject string) (Principal, error) {
	if id.TenantDeleted {
		return Principal{}, refuse(ReasonTenantDeleted, "tenant %q is being deleted", id.User.TenantID)
	}
	role, err := ParseRole(id.User.Role)
	if err != nil { // the schema's CHECK makes this unreachable
		return Principal{}, fmt.Errorf("auth: user %s: %w", id.User.ID, err)
	}
	return Principal{
		TenantID:              id.User.TenantID,
		UserID:                id.User.ID,
		Email:                 id.User.Email,
		Role:                  role,
		Method:                method,
		TokenID:               id.TokenID,
		Subject:               subject,
		TenantSuspended:       id.TenantSuspended,
		TenantSuspendedReason: id.TenantSuspendedReason,
	}, nil
}

// storeError turns a metastore failure into a 503 when the database is unreachable, and
// leaves any other failure a 500.
func storeError(err error) error {
	if metastore.IsUnavailable(err) {
		return &Error{Reason: ReasonUnavailable, Err: err}
	}
	return fmt.Errorf("auth: %w", err)
}

func (a *Authenticator) logRefusal(ctx context.Context, method Method, err error) {
	level := slog.LevelInfo
	if HTTPStatus(err) >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	a.log.LogAttrs(ctx, level, "authentication refused",
		slog.String("method", string(method)), slog.String("reason", PublicReason(err)), slog.String("error", err.Error()))
}
