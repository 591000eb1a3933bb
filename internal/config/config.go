// Package config holds the operator's platform configuration: one typed struct loaded from
// YAML, defaulted and validated at start, and passed to whatever needs it.
package config

import (
	"fmt"
	"maps"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/shoal-dev/shoal/internal/auth"
	"github.com/shoal-dev/shoal/internal/billing"
	"github.com/shoal-dev/shoal/internal/clickhouse"
	"github.com/shoal-dev/shoal/internal/kafka"
	"github.com/shoal-dev/shoal/internal/lake"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/sealing"
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

	// Runtime is how a Dedicated tenant's runtime pods are run.
	Runtime Runtime `json:"runtime,omitempty"`

	// Kafka is where tenant topics are provisioned and events flow. Required.
	Kafka kafka.Config `json:"kafka"`

	// ClickHouse is the server tenant databases and users are created on, reached with
	// admin rights. Required.
	ClickHouse clickhouse.Config `json:"clickhouse"`

	// Lake is the S3 bucket holding every tenant's prefix, and its lifecycle. Required.
	Lake lake.Config `json:"lake"`

	// Metastore is the PostgreSQL metadata database. Required.
	Metastore metastore.Config `json:"metastore"`

	// Billing is the Stripe account; without a secret key billing is off. Its Prices are
	// not read from the document: Default fills them from plans[].stripePriceID, so the
	// plan catalog is the one place a plan's price is written.
	Billing billing.Config `json:"billing,omitempty"`

	// Sealing holds the keys data-source credentials are encrypted with in the
	// metastore. Optional: without keys, data sources cannot hold credentials.
	Sealing sealing.Config `json:"sealing,omitempty"`

	// Query configures the tenants' web API (shoal query): sign-in, rate limits,
	// timeouts and alert notifications.
	Query Query `json:"query,omitempty"`
}

// Query configures `shoal query`, the tenants' web API.
type Query struct {
	// PublicURL is where users reach the API (https://analytics.example.com); share
	// links of public dashboards are built on it. Optional: without it the API returns
	// share tokens but no links.
	PublicURL string `json:"publicURL,omitempty"`
	// OIDC is the issuer whose tokens sign users in. Optional: without it only personal
	// API tokens authenticate.
	OIDC *auth.OIDCConfig `json:"oidc,omitempty"`
	// RateLimit bounds each tenant's requests, all its users together.
	RateLimit QueryRateLimit `json:"rateLimit,omitempty"`
	// QueryTimeout bounds one metrics query. Default 30s.
	QueryTimeout metav1.Duration `json:"queryTimeout,omitempty"`
	// WidgetTimeout bounds the query of one dashboard widget; a widget that takes longer
	// is reported failed while the others are shown. Default 10s.
	WidgetTimeout metav1.Duration `json:"widgetTimeout,omitempty"`
	// Alerts configures the alert evaluator and its notifications.
	Alerts QueryAlerts `json:"alerts,omitempty"`
}

// QueryRateLimit is a token bucket per tenant.
type QueryRateLimit struct {
	// RequestsPerSecond is the sustained rate. Default 20.
	RequestsPerSecond float64 `json:"requestsPerSecond,omitempty"`
	// Burst is how many requests may arrive at once. Default 100; at least the rate.
	Burst int `json:"burst,omitempty"`
}

// QueryAlerts configures alert evaluation and notification.
type QueryAlerts struct {
	// EvaluationInterval is how often every enabled alert rule is evaluated; "0s" turns
	// the evaluator off in this process. Default 1m.
	EvaluationInterval *metav1.Duration `json:"evaluationInterval,omitempty"`
	// WebhookSigningSecretFile holds the secret webhook notifications are signed with
	// (HMAC-SHA256). Without it, alert rules cannot notify webhooks.
	WebhookSigningSecretFile string `json:"webhookSigningSecretFile,omitempty"`
	// AllowPrivateWebhookTargets lets alert rules notify webhooks on localhost or on
	// loopback, private, link-local, unspecified or multicast addresses (on-premises
	// receivers). Off by default: webhook URLs are written by tenants, and such a target
	// would make the query API call services inside the installation's network.
	AllowPrivateWebhookTargets bool `json:"allowPrivateWebhookTargets,omitempty"`
	// SendGrid sends the email notifications. Without an API key, alert rules cannot
	// notify by email.
	SendGrid SendGrid `json:"sendgrid,omitempty"`
}

// SendGrid is the SendGrid v3 mail/send API.
type SendGrid struct {
	// Endpoint is the mail/send URL. Default https://api.sendgrid.com/v3/mail/send.
	Endpoint string `json:"endpoint,omitempty"`
	// APIKeyFile holds the SendGrid API key.
	APIKeyFile string `json:"apiKeyFile,omitempty"`
	// From is the sender address; required with an API key.
	From string `json:"from,omitempty"`
}

// httpURL reports whether s is an absolute http or https URL.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// Interval is the evaluation interval: the default when unset, 0 when turned off.
func (a *QueryAlerts) Interval() time.Duration {
	if a.EvaluationInterval == nil {
		return DefaultAlertEvaluationInterval
	}
	return a.EvaluationInterval.Duration
}

// Defaults of the query section.
const (
	DefaultQueryRequestsPerSecond    = 20
	DefaultQueryBurst                = 100
	DefaultQueryTimeout              = 30 * time.Second
	DefaultWidgetTimeout             = 10 * time.Second
	DefaultAlertEvaluationInterval   = time.Minute
	DefaultSendGridEndpoint          = "https://api.sendgrid.com/v3/mail/send"
	minAlertEvaluationInterval       = time.Second
	maxAlertEvaluationInterval       = time.Hour
	maxQueryRequestsPerSecond        = 100000
	maxQueryBurst                    = 1000000
	minQueryTimeout, maxQueryTimeout = 100 * time.Millisecond, 10 * time.Minute
)

// Default fills in the query section's unset fields.
func (q *Query) Default() {
	if q.OIDC != nil {
		q.OIDC.Default()
	}
	if q.RateLimit.RequestsPerSecond == 0 {
		q.RateLimit.RequestsPerSecond = DefaultQueryRequestsPerSecond
	}
	if q.RateLimit.Burst == 0 {
		q.RateLimit.Burst = max(DefaultQueryBurst, int(q.RateLimit.RequestsPerSecond))
	}
	if q.QueryTimeout.Duration == 0 {
		q.QueryTimeout.Duration = DefaultQueryTimeout
	}
	if q.WidgetTimeout.Duration == 0 {
		q.WidgetTimeout.Duration = DefaultWidgetTimeout
	}
	if q.Alerts.EvaluationInterval == nil {
		q.Alerts.EvaluationInterval = &metav1.Duration{Duration: DefaultAlertEvaluationInterval}
	}
	if q.Alerts.SendGrid.Endpoint == "" {
		q.Alerts.SendGrid.Endpoint = DefaultSendGridEndpoint
	}
}

// Validate reports every invalid field of a defaulted query section under path.
func (q *Query) Validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if q.PublicURL != "" {
		if u, err := url.Parse(q.PublicURL); err != nil || !httpURL(q.PublicURL) || u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, field.Invalid(path.Child("publicURL"), q.PublicURL, "must be an http or https URL without query or fragment"))
		}
	}
	if q.OIDC != nil {
		errs = append(errs, q.OIDC.Validate(path.Child("oidc"))...)
	}
	rl := path.Child("rateLimit")
	if r := q.RateLimit.RequestsPerSecond; r <= 0 || r > maxQueryRequestsPerSecond {
		errs = append(errs, field.Invalid(rl.Child("requestsPerSecond"), r, fmt.Sprintf("must be greater than 0 and at most %d", maxQueryRequestsPerSecond)))
	}
	if b := q.RateLimit.Burst; b < 1 || float64(b) < q.RateLimit.RequestsPerSecond || b > maxQueryBurst {
		errs = append(errs, field.Invalid(rl.Child("burst"), b, fmt.Sprintf("must be at least requestsPerSecond and at most %d", maxQueryBurst)))
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{{"queryTimeout", q.QueryTimeout.Duration}, {"widgetTimeout", q.WidgetTimeout.Duration}} {
		if d.value < minQueryTimeout || d.value > maxQueryTimeout {
			errs = append(errs, field.Invalid(path.Child(d.name), d.value.String(), "must be between 100ms and 10m"))
		}
	}
	al := path.Child("alerts")
	if d := q.Alerts.Interval(); d != 0 && (d < minAlertEvaluationInterval || d > maxAlertEvaluationInterval) {
		errs = append(errs, field.Invalid(al.Child("evaluationInterval"), d.String(), "must be 0s (off) or between 1s and 1h"))
	}
	sg := al.Child("sendgrid")
	if e := q.Alerts.SendGrid.Endpoint; e != "" && !httpURL(e) {
		errs = append(errs, field.Invalid(sg.Child("endpoint"), q.Alerts.SendGrid.Endpoint, "must be an http or https URL"))
	}
	if q.Alerts.SendGrid.APIKeyFile != "" {
		if addr, err := mail.ParseAddress(q.Alerts.SendGrid.From); err != nil || addr.Address != q.Alerts.SendGrid.From {
			errs = append(errs, field.Invalid(sg.Child("from"), q.Alerts.SendGrid.From, "must be an email address when apiKeyFile is set"))
		}
	}
	return errs
}

// Runtime configures the runtime Deployments of Dedicated tenants.
type Runtime struct {
	// Image is the shoal image the pods run; one image serves every role.
	Image string `json:"image,omitempty"`
	// ImagePullPolicy of the pods.
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`
	// Ingest, Process and Query set each role's container resources.
	Ingest  RuntimeRole `json:"ingest,omitempty"`
	Process RuntimeRole `json:"process,omitempty"`
	Query   RuntimeRole `json:"query,omitempty"`
	// CredentialsSecret names the Secret in the operator's namespace whose files the
	// *File settings point at (mounted at CredentialsDir). It is copied into each
	// Dedicated tenant's namespace, without the ClickHouse admin password, for the
	// tenant's runtime pods; none is copied when empty.
	CredentialsSecret string `json:"credentialsSecret,omitempty"`
	// CredentialsDir is where the runtime pods mount that copy: the directory the *File
	// settings name. Default /etc/shoal/secrets.
	CredentialsDir string `json:"credentialsDir,omitempty"`
}

// DefaultCredentialsDir is where the backend credentials are mounted in Shoal's pods.
const DefaultCredentialsDir = "/etc/shoal/secrets"

// RuntimeDocument is the platform config a Dedicated tenant's runtime pods read: this
// one without what only the operator may hold. Billing is left out (the runtime never
// calls Stripe), and so is the ClickHouse admin password: the tenant's pods connect to
// the tenant's own installation with the tenant's credentials. It is stored in a Secret
// all the same, because other sections may hold inline credentials.
func (p *Platform) RuntimeDocument() ([]byte, error) {
	doc := *p
	doc.Billing = billing.Config{}
	doc.ClickHouse.Password, doc.ClickHouse.PasswordFile = "", ""
	data, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, fmt.Errorf("writing the runtime's platform config: %w", err)
	}
	return data, nil
}

// RuntimeRole configures the pods of one runtime role.
type RuntimeRole struct {
	// Resources of the role's container. Requests are needed: the autoscaler scales on
	// CPU utilisation of the request.
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
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
	// ResyncInterval is how often a tenant is checked against the backends even when
	// nothing changed in Kubernetes: drift there (a deleted topic, a dropped table) sends
	// no event. Default 5m.
	ResyncInterval metav1.Duration `json:"resyncInterval,omitempty"`
	// KubeAPIQPS and KubeAPIBurst bound the operator's requests to the Kubernetes API
	// (client-side rate limit). Provisioning a tenant takes about ten writes, so the
	// client library's default of 20 per second would cap the operator at two tenants a
	// second; the API server's own priority and fairness still protects it. Defaults 200
	// and 400.
	KubeAPIQPS   int `json:"kubeAPIQPS,omitempty"`
	KubeAPIBurst int `json:"kubeAPIBurst,omitempty"`
	// Namespace is where the operator, the shared runtime and the platform's ingress run;
	// tenant namespaces accept traffic from it.
	Namespace string `json:"namespace,omitempty"`
}

// Plan is one entry of the plan catalog.
type Plan struct {
	// Name is what Tenants put in spec.plan.
	Name string `json:"name"`
	// DisplayName is shown to users and on invoices.
	DisplayName string `json:"displayName,omitempty"`
	// Quota bounds what may run in the tenant's namespace (a ResourceQuota).
	Quota Quota `json:"quota,omitempty"`
	// Ingest limits what the tenant may send.
	Ingest IngestLimits `json:"ingest,omitempty"`
	// StripePriceID is the Stripe price the tenant's subscription is for; billing needs
	// one for every plan.
	StripePriceID string `json:"stripePriceID,omitempty"`
}

// Quota is the ResourceQuota of a tenant namespace.
type Quota struct {
	// CPU is the sum of CPU requests of the namespace's pods.
	CPU resource.Quantity `json:"cpu,omitempty"`
	// Memory is the sum of memory requests and of memory limits.
	Memory resource.Quantity `json:"memory,omitempty"`
	// Pods is the number of pods.
	Pods int64 `json:"pods,omitempty"`
	// Storage is the sum of persistent volume claim requests (Dedicated ClickHouse).
	Storage resource.Quantity `json:"storage,omitempty"`
}

// IngestLimits are the per-tenant limits the ingest service enforces.
type IngestLimits struct {
	// EventsPerSecond is the sustained rate (token bucket refill).
	EventsPerSecond int `json:"eventsPerSecond,omitempty"`
	// Burst is the bucket size: how many events may arrive at once.
	Burst int `json:"burst,omitempty"`
	// MaxEventBytes bounds one event's encoded size.
	MaxEventBytes int `json:"maxEventBytes,omitempty"`
	// MaxRequestBytes bounds a request body, after decompression.
	MaxRequestBytes int `json:"maxRequestBytes,omitempty"`
	// MaxEventsPerRequest bounds the events of one request.
	MaxEventsPerRequest int `json:"maxEventsPerRequest,omitempty"`
}

// Defaults.
const (
	DefaultMetricsAddr             = ":8080"
	DefaultHealthAddr              = ":8081"
	DefaultMaxConcurrentReconciles = 4
	DefaultDeletionTimeout         = 5 * time.Minute
	DefaultResyncInterval          = 5 * time.Minute
	DefaultKubeAPIQPS              = 200
	DefaultKubeAPIBurst            = 400
	DefaultNamespace               = "shoal-system"
	DefaultRuntimeImage            = "shoal:latest"
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
// errors, so a misspelt key is not silently ignored. A document that sets billing.prices
// is refused: prices belong to the plans.
func Parse(data []byte) (*Platform, error) {
	var cfg Platform
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	// Looked at before Default, which replaces the prices with the plans' own.
	var errs field.ErrorList
	if cfg.Billing.Prices != nil {
		errs = append(errs, pricesForbidden())
	}
	cfg.Default()
	errs = append(errs, cfg.validate()...)
	if len(errs) > 0 {
		return nil, &ValidationError{Errors: errs}
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
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.ResyncInterval.Duration == 0 {
		o.ResyncInterval.Duration = DefaultResyncInterval
	}
	if o.KubeAPIQPS == 0 {
		o.KubeAPIQPS = DefaultKubeAPIQPS
	}
	if o.KubeAPIBurst == 0 {
		o.KubeAPIBurst = max(DefaultKubeAPIBurst, o.KubeAPIQPS)
	}
	for i := range p.Plans {
		p.Plans[i].Default()
	}
	rt := &p.Runtime
	if rt.Image == "" {
		rt.Image = DefaultRuntimeImage
	}
	if rt.ImagePullPolicy == "" {
		rt.ImagePullPolicy = corev1.PullIfNotPresent
	}
	if rt.CredentialsDir == "" {
		rt.CredentialsDir = DefaultCredentialsDir
	}
	for _, role := range []*RuntimeRole{&rt.Ingest, &rt.Process, &rt.Query} {
		role.defaultResources()
	}
	p.Kafka.Default()
	p.ClickHouse.Default()
	p.Lake.Default()
	p.Metastore.Default()
	p.Billing.Default()
	p.Billing.Prices = p.planPrices()
	p.Sealing.Default()
	p.Query.Default()
}

// planPrices maps each plan that has a Stripe price to it: what billing.Config.Prices
// must hold. Nil when no plan has one.
func (p *Platform) planPrices() map[string]string {
	var prices map[string]string
	for _, plan := range p.Plans {
		if !hasPrice(plan) {
			continue
		}
		if prices == nil {
			prices = map[string]string{}
		}
		prices[plan.Name] = plan.StripePriceID
	}
	return prices
}

// BillingConfig is the billing section with its prices taken from the plans: what
// billing.New is given. It does not depend on Default having filled Billing.Prices.
func (p *Platform) BillingConfig() billing.Config {
	b := p.Billing
	b.Prices = p.planPrices()
	return b
}

func hasPrice(plan Plan) bool { return strings.TrimSpace(plan.StripePriceID) != "" }

// billingOn reports whether the config turns billing on: a secret key is given.
func (p *Platform) billingOn() bool {
	return p.Billing.SecretKey != "" || p.Billing.SecretKeyFile != ""
}

func pricesForbidden() *field.Error {
	return field.Forbidden(field.NewPath("billing", "prices"), "prices come from the plan catalog: set plans[].stripePriceID instead")
}

func (r *RuntimeRole) defaultResources() {
	if r.Resources.Requests == nil {
		r.Resources.Requests = corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("250m"),
			corev1.ResourceMemory: resource.MustParse("256Mi"),
		}
	}
	if r.Resources.Limits == nil {
		r.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}
	}
}

// Plan defaults: a small tenant.
const (
	defaultQuotaCPU            = "4"
	defaultQuotaMemory         = "8Gi"
	defaultQuotaStorage        = "100Gi"
	defaultQuotaPods           = 20
	defaultEventsPerSecond     = 1000
	defaultMaxEventBytes       = 32 << 10
	defaultMaxRequestBytes     = 5 << 20
	defaultMaxEventsPerRequest = 1000
)

// Default fills in a plan's unset limits.
func (p *Plan) Default() {
	if p.DisplayName == "" {
		p.DisplayName = p.Name
	}
	q := &p.Quota
	if q.CPU.IsZero() {
		q.CPU = resource.MustParse(defaultQuotaCPU)
	}
	if q.Memory.IsZero() {
		q.Memory = resource.MustParse(defaultQuotaMemory)
	}
	if q.Storage.IsZero() {
		q.Storage = resource.MustParse(defaultQuotaStorage)
	}
	if q.Pods == 0 {
		q.Pods = defaultQuotaPods
	}
	in := &p.Ingest
	if in.EventsPerSecond == 0 {
		in.EventsPerSecond = defaultEventsPerSecond
	}
	if in.Burst == 0 {
		in.Burst = 2 * in.EventsPerSecond
	}
	if in.MaxEventBytes == 0 {
		in.MaxEventBytes = defaultMaxEventBytes
	}
	if in.MaxRequestBytes == 0 {
		in.MaxRequestBytes = defaultMaxRequestBytes
	}
	if in.MaxEventsPerRequest == 0 {
		in.MaxEventsPerRequest = defaultMaxEventsPerRequest
	}
}

// validate reports the plan's invalid limits under path.
func (p *Plan) validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	q := path.Child("quota")
	for _, quantity := range []struct {
		name  string
		value resource.Quantity
	}{{"cpu", p.Quota.CPU}, {"memory", p.Quota.Memory}, {"storage", p.Quota.Storage}} {
		if quantity.value.Sign() <= 0 {
			errs = append(errs, field.Invalid(q.Child(quantity.name), quantity.value.String(), "must be greater than zero"))
		}
	}
	if p.Quota.Pods < 1 || p.Quota.Pods > 10000 {
		errs = append(errs, field.Invalid(q.Child("pods"), p.Quota.Pods, "must be between 1 and 10000"))
	}
	in := path.Child("ingest")
	for _, lim := range []struct {
		name     string
		value    int
		min, max int
	}{
		{"eventsPerSecond", p.Ingest.EventsPerSecond, 1, 10_000_000},
		{"burst", p.Ingest.Burst, 1, 100_000_000},
		{"maxEventBytes", p.Ingest.MaxEventBytes, 256, 1 << 20},
		{"maxRequestBytes", p.Ingest.MaxRequestBytes, 1 << 10, 100 << 20},
		{"maxEventsPerRequest", p.Ingest.MaxEventsPerRequest, 1, 100_000},
	} {
		if lim.value < lim.min || lim.value > lim.max {
			errs = append(errs, field.Invalid(in.Child(lim.name), lim.value, fmt.Sprintf("must be between %d and %d", lim.min, lim.max)))
		}
	}
	if p.Ingest.MaxEventBytes > p.Ingest.MaxRequestBytes {
		errs = append(errs, field.Invalid(in.Child("maxEventBytes"), p.Ingest.MaxEventBytes, "must not exceed maxRequestBytes"))
	}
	return errs
}

// Validate reports every invalid field of a defaulted config at once, each error naming
// its field path.
func (p *Platform) Validate() error {
	if errs := p.validate(); len(errs) > 0 {
		return &ValidationError{Errors: errs}
	}
	return nil
}

func (p *Platform) validate() field.ErrorList {
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

	if d := p.Operator.ResyncInterval.Duration; d < time.Second || d > 24*time.Hour {
		errs = append(errs, field.Invalid(op.Child("resyncInterval"), d.String(), "must be between 1s and 24h"))
	}
	if q := p.Operator.KubeAPIQPS; q < 1 || q > 10000 {
		errs = append(errs, field.Invalid(op.Child("kubeAPIQPS"), q, "must be between 1 and 10000"))
	}
	if b := p.Operator.KubeAPIBurst; b < p.Operator.KubeAPIQPS || b > 20000 {
		errs = append(errs, field.Invalid(op.Child("kubeAPIBurst"), b, "must be at least kubeAPIQPS and at most 20000"))
	}
	if msgs := validation.IsDNS1123Label(p.Operator.Namespace); len(msgs) > 0 {
		errs = append(errs, field.Invalid(op.Child("namespace"), p.Operator.Namespace, strings.Join(msgs, "; ")))
	}

	rt := field.NewPath("runtime")
	switch p.Runtime.ImagePullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		errs = append(errs, field.NotSupported(rt.Child("imagePullPolicy"), p.Runtime.ImagePullPolicy, []corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever}))
	}
	for _, role := range []struct {
		name string
		role RuntimeRole
	}{{"ingest", p.Runtime.Ingest}, {"process", p.Runtime.Process}, {"query", p.Runtime.Query}} {
		if cpu := role.role.Resources.Requests.Cpu(); cpu.Sign() <= 0 {
			errs = append(errs, field.Required(rt.Child(role.name, "resources", "requests", "cpu"), "the autoscaler scales on CPU utilisation of the request"))
		}
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
		errs = append(errs, plan.validate(path)...)
		if p.billingOn() && !hasPrice(plan) {
			errs = append(errs, field.Required(path.Child("stripePriceID"), "billing is on (billing.secretKey or billing.secretKeyFile is set): every plan needs its Stripe price"))
		}
	}

	errs = append(errs, p.Kafka.Validate(field.NewPath("kafka"))...)
	errs = append(errs, p.ClickHouse.Validate(field.NewPath("clickhouse"))...)
	errs = append(errs, p.Lake.Validate(field.NewPath("lake"))...)
	errs = append(errs, p.Metastore.Validate(field.NewPath("metastore"))...)
	errs = append(errs, p.validateBilling()...)
	if len(p.Sealing.Keys) > 0 || p.Sealing.CurrentKeyID != "" {
		errs = append(errs, p.Sealing.Validate(field.NewPath("sealing"))...)
	}
	errs = append(errs, p.Query.Validate(field.NewPath("query"))...)
	return errs
}

// validateBilling checks the billing section with the prices the plans give. Prices set
// any other way (by hand, after Default) are refused, and missing prices are reported on
// the plans that lack them rather than on billing.prices, which nobody should write.
func (p *Platform) validateBilling() field.ErrorList {
	var errs field.ErrorList
	want := p.planPrices()
	if p.Billing.Prices != nil && !maps.Equal(p.Billing.Prices, want) {
		errs = append(errs, pricesForbidden())
	}
	b := p.BillingConfig()
	pricesPath := field.NewPath("billing", "prices").String()
	for _, err := range b.Validate(field.NewPath("billing")) {
		if err.Field == pricesPath || strings.HasPrefix(err.Field, pricesPath+"[") {
			continue
		}
		errs = append(errs, err)
	}
	return errs
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
