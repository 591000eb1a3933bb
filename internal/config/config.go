// Package config holds the operator's platform configuration: one typed struct loaded from
// YAML, defaulted and validated at start, and passed to whatever needs it.
package config

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// APIVersion and Kind identify a platform config file.
const (
	APIVersion = "config.shoal.dev/v1alpha1"
	Kind       = "PlatformConfig"
)

// Platform is the platform configuration of a Shoal installation.
type Platform struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`

	// Operator configures the control plane process.
	Operator Operator `json:"operator"`

	// Plans is the plan catalog Tenants choose from with spec.plan.
	Plans []Plan `json:"plans"`
}

// Operator configures the operator process.
type Operator struct {
	// MetricsAddr is where Prometheus metrics are served; "0" turns them off.
	MetricsAddr string `json:"metricsAddr,omitempty"`
	// HealthAddr is where /healthz and /readyz are served.
	HealthAddr string `json:"healthAddr,omitempty"`
	// LeaderElection makes only one of several operator replicas reconcile at a time.
	LeaderElection bool `json:"leaderElection,omitempty"`
	// LeaderElectionNamespace holds the leader election lease; the operator's own
	// namespace when empty (in-cluster only).
	LeaderElectionNamespace string `json:"leaderElectionNamespace,omitempty"`
	// MaxConcurrentReconciles is how many objects of one kind are reconciled in parallel.
	MaxConcurrentReconciles int `json:"maxConcurrentReconciles,omitempty"`
	// DeletionTimeout is how long a deleting tenant waits for what it owns to go before
	// its status reports the deletion as stuck. Waiting goes on after that.
	DeletionTimeout metav1.Duration `json:"deletionTimeout,omitempty"`
}

// Plan is one entry of the plan catalog.
type Plan struct {
	// Name is what Tenants put in spec.plan.
	Name string `json:"name"`
	// DisplayName is shown to users and on invoices.
	DisplayName string `json:"displayName,omitempty"`
}

// Defaults.
const (
	DefaultMetricsAddr             = ":8080"
	DefaultHealthAddr              = ":8081"
	DefaultMaxConcurrentReconciles = 4
	DefaultDeletionTimeout         = 5 * time.Minute
)

var planName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Load reads, defaults and validates a platform config file.
func Load(path string) (*Platform, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading platform config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("platform config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes, defaults and validates a platform config document. Unknown fields are
// errors, so a misspelt key is not silently ignored.
func Parse(data []byte) (*Platform, error) {
	var cfg Platform
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	cfg.Default()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Default fills in every unset field that has a default.
func (p *Platform) Default() {
	o := &p.Operator
	if o.MetricsAddr == "" {
		o.MetricsAddr = DefaultMetricsAddr
	}
	if o.HealthAddr == "" {
		o.HealthAddr = DefaultHealthAddr
	}
	if o.MaxConcurrentReconciles == 0 {
		o.MaxConcurrentReconciles = DefaultMaxConcurrentReconciles
	}
	if o.DeletionTimeout.Duration == 0 {
		o.DeletionTimeout.Duration = DefaultDeletionTimeout
	}
	for i := range p.Plans {
		if p.Plans[i].DisplayName == "" {
			p.Plans[i].DisplayName = p.Plans[i].Name
		}
	}
}

// Validate reports every invalid field at once, each error naming its field path.
func (p *Platform) Validate() error {
	var errs field.ErrorList
	if p.APIVersion != APIVersion {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), p.APIVersion, []string{APIVersion}))
	}
	if p.Kind != Kind {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), p.Kind, []string{Kind}))
	}

	op := field.NewPath("operator")
	if n := p.Operator.MaxConcurrentReconciles; n < 1 || n > 64 {
		errs = append(errs, field.Invalid(op.Child("maxConcurrentReconciles"), n, "must be between 1 and 64"))
	}
	if d := p.Operator.DeletionTimeout.Duration; d < time.Second || d > 24*time.Hour {
		errs = append(errs, field.Invalid(op.Child("deletionTimeout"), d.String(), "must be between 1s and 24h"))
	}

	plans := field.NewPath("plans")
	if len(p.Plans) == 0 {
		errs = append(errs, field.Required(plans, "at least one plan is needed: tenants choose one with spec.plan"))
	}
	seen := map[string]bool{}
	for i, plan := range p.Plans {
		path := plans.Index(i)
		switch {
		case plan.Name == "":
			errs = append(errs, field.Required(path.Child("name"), ""))
		case len(plan.Name) > 63 || !planName.MatchString(plan.Name):
			errs = append(errs, field.Invalid(path.Child("name"), plan.Name, "must be a DNS label: lowercase letters, digits and '-', at most 63 characters"))
		case seen[plan.Name]:
			errs = append(errs, field.Duplicate(path.Child("name"), plan.Name))
		}
		seen[plan.Name] = true
	}
	if len(errs) == 0 {
		return nil
	}
	return &ValidationError{Errors: errs}
}

// ValidationError lists every invalid field of a platform config.
type ValidationError struct {
	Errors field.ErrorList
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, err := range e.Errors {
		msgs[i] = err.Error()
	}
	return "invalid platform config: " + strings.Join(msgs, "; ")
}

// Plan returns the catalog entry with the given name.
func (p *Platform) Plan(name string) (Plan, bool) {
	for _, plan := range p.Plans {
		if plan.Name == name {
			return plan, true
		}
	}
	return Plan{}, false
}

// PlanNames lists the catalog's plan names in order, for messages.
func (p *Platform) PlanNames() []string {
	names := make([]string, len(p.Plans))
	for i, plan := range p.Plans {
		names[i] = plan.Name
	}
	return names
}
