package auth

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestErrorMapping(t *testing.T) {
	detail := errors.New("kid abc123 not in the key set")
	cases := []struct {
		err          error
		status       int
		public       string
		challengeHas string // "" wants no challenge
	}{
		{ErrMissingCredentials, 401, "missing credentials", `Bearer realm="shoal"`},
		{refuse(ReasonMalformed, "two headers"), 401, "malformed credentials", `error="invalid_request"`},
		{&Error{Reason: ReasonInvalidToken, Err: detail}, 401, "invalid token", `error="invalid_token"`},
		{fmt.Errorf("wrapped: %w", &Error{Reason: ReasonExpired, Err: detail}), 401, "token expired", `error_description="token expired"`},
		{&Error{Reason: ReasonTenantDeleted}, 401, "tenant deleted", `error="invalid_token"`},
		{&Error{Reason: ReasonForbidden, Err: detail}, 403, "role does not allow this", ""},
		{&Error{Reason: ReasonTenantSuspended}, 403, "tenant suspended", ""},
		{&Error{Reason: ReasonUnavailable, Err: detail}, 503, "authentication temporarily unavailable", ""},
		{detail, 500, "internal error", ""},
	}
	for _, c := range cases {
		if got := HTTPStatus(c.err); got != c.status {
			t.Errorf("HTTPStatus(%v) = %d, want %d", c.err, got, c.status)
		}
		if got := PublicReason(c.err); got != c.public || strings.Contains(got, "abc123") {
			t.Errorf("PublicReason(%v) = %q, want %q", c.err, got, c.public)
		}
		got := Challenge(c.err)
		if (c.challengeHas == "") != (got == "") || !strings.Contains(got, c.challengeHas) {
			t.Errorf("Challenge(%v) = %q, want it to hold %q", c.err, got, c.challengeHas)
		}
		if IsUnauthenticated(c.err) != (c.status == 401) || IsForbidden(c.err) != (c.status == 403) {
			t.Errorf("%v: IsUnauthenticated %v, IsForbidden %v for status %d", c.err, IsUnauthenticated(c.err), IsForbidden(c.err), c.status)
		}
	}
	// Sentinels match by reason, and the detail stays reachable for logs.
	err := fmt.Errorf("ctx: %w", &Error{Reason: ReasonRevoked, Err: detail})
	if !errors.Is(err, ErrRevoked) || errors.Is(err, ErrExpired) || !errors.Is(err, detail) {
		t.Errorf("errors.Is on %v: revoked %v, expired %v, detail %v", err, errors.Is(err, ErrRevoked), errors.Is(err, ErrExpired), errors.Is(err, detail))
	}
}

func TestBearerToken(t *testing.T) {
	cases := []struct {
		name    string
		headers []string
		want    string
		wantErr error
	}{
		{"bearer", []string{"Bearer abc.def.ghi"}, "abc.def.ghi", nil},
		{"scheme in any case", []string{"bearer shp_x"}, "shp_x", nil},
		{"extra spaces", []string{"  Bearer   shp_x  "}, "shp_x", nil},
		{"none", nil, "", ErrMissingCredentials},
		{"basic", []string{"Basic YWxhZGRpbjpvcGVuc2VzYW1l"}, "", ErrMalformed},
		{"scheme only", []string{"Bearer"}, "", ErrMalformed},
		{"empty token", []string{"Bearer  "}, "", ErrMalformed},
		{"two tokens", []string{"Bearer a b"}, "", ErrMalformed},
		{"two headers", []string{"Bearer a", "Bearer b"}, "", ErrMalformed},
		{"huge", []string{"Bearer " + strings.Repeat("a", maxCredentialLen+1)}, "", ErrMalformed},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/users?access_token=shp_fromurl", nil)
		for _, h := range c.headers {
			r.Header.Add("Authorization", h)
		}
		got, err := BearerToken(r)
		if got != c.want || !errors.Is(err, c.wantErr) || (c.wantErr == nil && err != nil) {
			t.Errorf("%s: %q, %v; want %q, %v", c.name, got, err, c.want, c.wantErr)
		}
	}
}

func TestOIDCConfigValidate(t *testing.T) {
	valid := OIDCConfig{IssuerURL: "https://id.example.test/realms/shoal", Audience: "shoal"}
	cases := []struct {
		name      string
		mutate    func(*OIDCConfig)
		wantPaths []string
	}{
		{"valid", func(*OIDCConfig) {}, nil},
		{"missing", func(c *OIDCConfig) { c.IssuerURL, c.Audience = "", "" }, []string{"oidc.issuerURL", "oidc.audience"}},
		{"http", func(c *OIDCConfig) { c.IssuerURL = "http://127.0.0.1:5556" }, []string{"oidc.issuerURL"}},
		{"http allowed", func(c *OIDCConfig) { c.IssuerURL, c.AllowInsecureHTTP = "http://127.0.0.1:5556", true }, nil},
		{"relative", func(c *OIDCConfig) { c.IssuerURL = "id.example.test" }, []string{"oidc.issuerURL"}},
		{"query", func(c *OIDCConfig) { c.IssuerURL = "https://id.example.test/?x=1" }, []string{"oidc.issuerURL"}},
		{"other scheme", func(c *OIDCConfig) { c.IssuerURL = "ftp://id.example.test" }, []string{"oidc.issuerURL"}},
		{"same claims", func(c *OIDCConfig) { c.TenantClaim, c.EmailClaim = "email", "email" }, []string{"oidc.emailClaim"}},
		{"timeouts", func(c *OIDCConfig) {
			c.RequestTimeout = metav1.Duration{Duration: time.Millisecond}
			c.KeyRefreshMinInterval = metav1.Duration{Duration: -time.Second}
		}, []string{"oidc.requestTimeout", "oidc.keyRefreshMinInterval"}},
	}
	for _, c := range cases {
		cfg := valid
		c.mutate(&cfg)
		cfg.Default()
		var paths []string
		for _, e := range cfg.Validate(field.NewPath("oidc")) {
			paths = append(paths, e.Field)
		}
		if strings.Join(paths, ",") != strings.Join(c.wantPaths, ",") {
			t.Errorf("%s: errors at %v, want %v", c.name, paths, c.wantPaths)
		}
	}
	cfg := OIDCConfig{}
	cfg.Default()
	if cfg.TenantClaim != "shoal_tenant" || cfg.EmailClaim != "email" || cfg.RequestTimeout.Duration != DefaultRequestTimeout ||
		cfg.KeyRefreshMinInterval.Duration != DefaultKeyRefreshMinInterval {
		t.Errorf("defaults: %+v", cfg)
	}
}
