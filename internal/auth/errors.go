package auth

import (
	"errors"
	"fmt"
	"net/http"
)

// Reason is why a request was refused, short enough to show to the client: it says what
// to fix without saying which check of a token failed beyond that. The detail (which
// claim, which key, the database error) stays in Error.Err, for logs.
type Reason string

// Reasons for 401 Unauthorized: the request is not authenticated.
const (
	ReasonMissingCredentials Reason = "missing credentials"
	ReasonMalformed          Reason = "malformed credentials"
	ReasonIngestKey          Reason = "ingest keys are not accepted here"
	ReasonInvalidToken       Reason = "invalid token"
	ReasonExpired            Reason = "token expired"
	ReasonWrongAudience      Reason = "token not issued for this API"
	ReasonUnknownIssuer      Reason = "token from an unknown issuer"
	ReasonMissingClaim       Reason = "token lacks the tenant or email claim"
	ReasonEmailNotVerified   Reason = "email not verified"
	ReasonUnknownUser        Reason = "not a user of this tenant"
	ReasonUnknownToken       Reason = "unknown token"
	ReasonRevoked            Reason = "token revoked"
	ReasonTenantDeleted      Reason = "tenant deleted"
)

// Reasons for 403 Forbidden: authenticated, but not allowed.
const (
	ReasonForbidden       Reason = "role does not allow this"
	ReasonTenantSuspended Reason = "tenant suspended"
)

// ReasonUnavailable is 503: the issuer's keys or the metadata store could not be read, so
// the credentials could not be checked either way.
const ReasonUnavailable Reason = "authentication temporarily unavailable"

// Status is the HTTP status a refusal for this reason is answered with.
func (r Reason) Status() int {
	switch r {
	case ReasonForbidden, ReasonTenantSuspended:
		return http.StatusForbidden
	case ReasonUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusUnauthorized
}

// Error is a refusal. Compare with errors.Is against the Err* values, which match any
// Error of the same reason.
type Error struct {
	Reason Reason
	// Err is the detail, for logs only.
	Err error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return "auth: " + string(e.Reason)
	}
	return fmt.Sprintf("auth: %s: %v", e.Reason, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches a sentinel (an Error without detail) of the same reason.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Err == nil && t.Reason == e.Reason
}

// Sentinels for errors.Is.
var (
	ErrMissingCredentials = &Error{Reason: ReasonMissingCredentials}
	ErrMalformed          = &Error{Reason: ReasonMalformed}
	ErrIngestKey          = &Error{Reason: ReasonIngestKey}
	ErrInvalidToken       = &Error{Reason: ReasonInvalidToken}
	ErrExpired            = &Error{Reason: ReasonExpired}
	ErrWrongAudience      = &Error{Reason: ReasonWrongAudience}
	ErrUnknownIssuer      = &Error{Reason: ReasonUnknownIssuer}
	ErrMissingClaim       = &Error{Reason: ReasonMissingClaim}
	ErrEmailNotVerified   = &Error{Reason: ReasonEmailNotVerified}
	ErrUnknownUser        = &Error{Reason: ReasonUnknownUser}
	ErrUnknownToken       = &Error{Reason: ReasonUnknownToken}
	ErrRevoked            = &Error{Reason: ReasonRevoked}
	ErrTenantDeleted      = &Error{Reason: ReasonTenantDeleted}
	ErrForbidden          = &Error{Reason: ReasonForbidden}
	ErrTenantSuspended    = &Error{Reason: ReasonTenantSuspended}
	ErrUnavailable        = &Error{Reason: ReasonUnavailable}
)

func refuse(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Err: fmt.Errorf(format, args...)}
}

// HTTPStatus maps an error from this package to the status to answer with: 401, 403 or
// 503 for a refusal, 500 for anything else.
func HTTPStatus(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason.Status()
	}
	return http.StatusInternalServerError
}

// PublicReason is what the client may be told about err: the refusal's reason, or a
// generic text for an unexpected error.
func PublicReason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return string(e.Reason)
	}
	return "internal error"
}

// IsUnauthenticated reports whether err means the request carries no valid credentials
// (401).
func IsUnauthenticated(err error) bool { return HTTPStatus(err) == http.StatusUnauthorized }

// IsForbidden reports whether err means the credentials are valid but do not allow the
// request (403).
func IsForbidden(err error) bool { return HTTPStatus(err) == http.StatusForbidden }

// Challenge is the WWW-Authenticate header value for a 401 (RFC 6750), "" for anything
// else. Missing credentials get the bare challenge; bad ones say invalid_token.
func Challenge(err error) string {
	var e *Error
	if !errors.As(err, &e) || e.Reason.Status() != http.StatusUnauthorized {
		return ""
	}
	if e.Reason == ReasonMissingCredentials {
		return `Bearer realm="shoal"`
	}
	code := "invalid_token"
	if e.Reason == ReasonMalformed {
		code = "invalid_request"
	}
	return fmt.Sprintf(`Bearer realm="shoal", error=%q, error_description=%q`, code, string(e.Reason))
}
