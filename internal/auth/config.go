package auth

import (
	"net/url"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Defaults.
const (
	DefaultTenantClaim    = "shoal_tenant"
	DefaultEmailClaim     = "email"
	DefaultRequestTimeout = 10 * time.Second
	// DefaultKeyRefreshMinInterval bounds how often a token with an unknown key id makes
	// the verifier fetch the issuer's keys: often enough that a rotated key is picked up
	// within seconds, rarely enough that junk tokens cannot make Shoal flood the issuer.
	DefaultKeyRefreshMinInterval = 10 * time.Second
)

// OIDCConfig says which OpenID Connect issuer's tokens the web API accepts and how to
// read a user out of them.
type OIDCConfig struct {
	// IssuerURL is the issuer, exactly as in its tokens' iss claim; its discovery
	// document is at IssuerURL/.well-known/openid-configuration. Required.
	IssuerURL string `json:"issuerURL,omitempty"`
	// Audience is the aud value tokens must carry: the client id (or API identifier)
	// registered for Shoal at the issuer. Required.
	Audience string `json:"audience,omitempty"`
	// TenantClaim names the claim holding the user's tenant id. Default "shoal_tenant".
	TenantClaim string `json:"tenantClaim,omitempty"`
	// EmailClaim names the claim holding the user's email. Default "email". A token
	// whose email_verified claim is false is refused.
	EmailClaim string `json:"emailClaim,omitempty"`
	// CAFile is a PEM bundle trusted for the issuer's TLS, for an issuer behind a private
	// CA; the system roots are used when empty.
	CAFile string `json:"caFile,omitempty"`
	// AllowInsecureHTTP accepts an http:// issuer. For a local development issuer only:
	// over plain HTTP anyone on the path can swap the issuer's keys.
	AllowInsecureHTTP bool `json:"allowInsecureHTTP,omitempty"`
	// RequestTimeout bounds each request to the issuer (discovery, keys). Default 10s.
	RequestTimeout metav1.Duration `json:"requestTimeout,omitempty"`
	// KeyRefreshMinInterval is the least time between two fetches of the issuer's keys
	// triggered by tokens signed with an unknown key. Default 10s.
	KeyRefreshMinInterval metav1.Duration `json:"keyRefreshMinInterval,omitempty"`
}

// Default fills in every unset field that has a default.
func (c *OIDCConfig) Default() {
	if c.TenantClaim == "" {
		c.TenantClaim = DefaultTenantClaim
	}
	if c.EmailClaim == "" {
		c.EmailClaim = DefaultEmailClaim
	}
	if c.RequestTimeout.Duration == 0 {
		c.RequestTimeout.Duration = DefaultRequestTimeout
	}
	if c.KeyRefreshMinInterval.Duration == 0 {
		c.KeyRefreshMinInterval.Duration = DefaultKeyRefreshMinInterval
	}
}

// Validate reports every invalid field of a defaulted config, each error naming its path
// under path.
func (c *OIDCConfig) Validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.IssuerURL == "" {
		errs = append(errs, field.Required(path.Child("issuerURL"), "the OIDC issuer whose tokens are accepted"))
	} else if u, err := url.Parse(c.IssuerURL); err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, field.Invalid(path.Child("issuerURL"), c.IssuerURL, "must be an absolute URL without query or fragment"))
	} else {
		switch {
		case u.Scheme == "https":
		case u.Scheme == "http" && c.AllowInsecureHTTP:
		case u.Scheme == "http":
			errs = append(errs, field.Invalid(path.Child("issuerURL"), c.IssuerURL, "must be https (set allowInsecureHTTP for a local development issuer)"))
		default:
			errs = append(errs, field.Invalid(path.Child("issuerURL"), c.IssuerURL, "must be https"))
		}
	}
	if c.Audience == "" {
		errs = append(errs, field.Required(path.Child("audience"), "the aud value tokens must carry"))
	}
	if c.TenantClaim == "" {
		errs = append(errs, field.Required(path.Child("tenantClaim"), ""))
	}
	if c.EmailClaim == "" {
		errs = append(errs, field.Required(path.Child("emailClaim"), ""))
	}
	if c.TenantClaim != "" && c.TenantClaim == c.EmailClaim {
		errs = append(errs, field.Invalid(path.Child("emailClaim"), c.EmailClaim, "must differ from tenantClaim"))
	}
	if d := c.RequestTimeout.Duration; d < 100*time.Millisecond || d > 5*time.Minute {
		errs = append(errs, field.Invalid(path.Child("requestTimeout"), d.String(), "must be between 100ms and 5m"))
	}
	if d := c.KeyRefreshMinInterval.Duration; d < 0 || d > time.Hour {
		errs = append(errs, field.Invalid(path.Child("keyRefreshMinInterval"), d.String(), "must be between 0 and 1h"))
	}
	return errs
}
