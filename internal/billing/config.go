package billing

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Config turns billing on with a Stripe secret key and maps plans to Stripe prices.
type Config struct {
	// SecretKey is the Stripe secret API key. Prefer SecretKeyFile; with neither set,
	// billing is off and tenants are provisioned without a subscription.
	SecretKey string `json:"secretKey,omitempty"`
	// SecretKeyFile is a file holding the secret key (a mounted Secret).
	SecretKeyFile string `json:"secretKeyFile,omitempty"`
	// APIBase overrides the Stripe API URL, for a Stripe mock; empty means Stripe itself.
	APIBase string `json:"apiBase,omitempty"`
	// Prices maps each billed plan name to its Stripe price ID (price_...).
	Prices map[string]string `json:"prices,omitempty"`
	// MaxNetworkRetries is how many times a request that failed on the network or with a
	// 5xx is retried, with backoff, before the error is returned. Defaults to 2.
	MaxNetworkRetries *int `json:"maxNetworkRetries,omitempty"`
}

// DefaultMaxNetworkRetries is the retry count when none is configured.
const DefaultMaxNetworkRetries = 2

// Default fills in every unset field that has a default.
func (c *Config) Default() {
	if c.MaxNetworkRetries == nil {
		n := DefaultMaxNetworkRetries
		c.MaxNetworkRetries = &n
	}
}

// Validate reports every invalid field under path. Call Default first.
func (c *Config) Validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.SecretKey != "" && c.SecretKeyFile != "" {
		errs = append(errs, field.Forbidden(path.Child("secretKeyFile"), "set secretKey or secretKeyFile, not both"))
	}
	if c.APIBase != "" {
		u, err := url.Parse(c.APIBase)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(path.Child("apiBase"), c.APIBase, err.Error()))
		case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs = append(errs, field.Invalid(path.Child("apiBase"), c.APIBase, "must be an http:// or https:// URL with a host"))
		}
	}
	configured := c.SecretKey != "" || c.SecretKeyFile != ""
	if configured && len(c.Prices) == 0 {
		errs = append(errs, field.Required(path.Child("prices"), "billing is on: every billed plan needs its Stripe price ID"))
	}
	plans := make([]string, 0, len(c.Prices))
	for plan := range c.Prices {
		plans = append(plans, plan)
	}
	slices.Sort(plans) // stable error order
	for _, plan := range plans {
		p := path.Child("prices").Key(plan)
		if plan == "" {
			errs = append(errs, field.Invalid(p, plan, "plan name must not be empty"))
		}
		if price := c.Prices[plan]; strings.TrimSpace(price) == "" {
			errs = append(errs, field.Required(p, "Stripe price ID of the plan"))
		}
	}
	if c.MaxNetworkRetries != nil && (*c.MaxNetworkRetries < 0 || *c.MaxNetworkRetries > 10) {
		errs = append(errs, field.Invalid(path.Child("maxNetworkRetries"), *c.MaxNetworkRetries, "must be between 0 and 10"))
	}
	return errs
}

// secretKey reads the key from the config or its file.
func (c *Config) secretKey() (string, error) {
	if c.SecretKeyFile == "" {
		return strings.TrimSpace(c.SecretKey), nil
	}
	data, err := os.ReadFile(c.SecretKeyFile)
	if err != nil {
		return "", fmt.Errorf("reading Stripe secret key: %w", err)
	}
	key := strings.TrimSpace(string(data))
	if key == "" {
		return "", fmt.Errorf("stripe secret key file %s is empty", c.SecretKeyFile)
	}
	return key, nil
}
