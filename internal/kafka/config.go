// Package kafka provisions each tenant's event topic, either through the Kafka admin API
// (direct mode) or by writing a Strimzi KafkaTopic for the Strimzi topic operator (strimzi
// mode), and reports whether the topic is ready.
package kafka

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Mode chooses how topics are provisioned.
type Mode string

const (
	// ModeDirect creates and alters topics through the Kafka admin API.
	ModeDirect Mode = "direct"
	// ModeStrimzi writes KafkaTopic objects that the Strimzi topic operator applies.
	ModeStrimzi Mode = "strimzi"
)

// Defaults.
const (
	DefaultMode = ModeDirect
	// DefaultReplicationFactor suits a one-broker development cluster; production
	// clusters should set 3 so a topic survives the loss of a broker.
	DefaultReplicationFactor int16 = 1
	DefaultDialTimeout             = 5 * time.Second
	DefaultRequestTimeout          = 10 * time.Second
)

// Config configures the Kafka adapter.
type Config struct {
	// Mode is "direct" (Kafka admin API) or "strimzi" (KafkaTopic objects). Default direct.
	Mode Mode `json:"mode,omitempty"`

	// Brokers are the bootstrap addresses (host:port). Required in direct mode; the data
	// plane uses them in both modes.
	Brokers []string `json:"brokers,omitempty"`

	// ReplicationFactor of each tenant topic. Default 1; use 3 in production.
	ReplicationFactor int16 `json:"replicationFactor,omitempty"`

	// Strimzi locates the Strimzi Kafka cluster. Required in strimzi mode.
	Strimzi StrimziConfig `json:"strimzi,omitempty"`

	// DialTimeout bounds opening a connection to a broker. Default 5s.
	DialTimeout metav1.Duration `json:"dialTimeout,omitempty"`

	// RequestTimeout bounds each provisioning call (with its retries), so a broker or API
	// server outage turns into an error instead of a hung reconcile. Default 10s.
	RequestTimeout metav1.Duration `json:"requestTimeout,omitempty"`
}

// StrimziConfig names the Strimzi Kafka cluster whose topic operator manages the topics.
type StrimziConfig struct {
	// Namespace the KafkaTopic objects are written to: the one the topic operator watches.
	Namespace string `json:"namespace,omitempty"`
	// Cluster is the Strimzi Kafka cluster name, set as the strimzi.io/cluster label.
	Cluster string `json:"cluster,omitempty"`
}

// Default fills unset fields with their defaults.
func (c *Config) Default() {
	if c.Mode == "" {
		c.Mode = DefaultMode
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = DefaultReplicationFactor
	}
	if c.DialTimeout.Duration == 0 {
		c.DialTimeout.Duration = DefaultDialTimeout
	}
	if c.RequestTimeout.Duration == 0 {
		c.RequestTimeout.Duration = DefaultRequestTimeout
	}
}

// withDefaults returns a defaulted copy, so constructors never mutate the caller's config.
func (c Config) withDefaults() Config {
	c.Brokers = append([]string(nil), c.Brokers...)
	c.Default()
	return c
}

// Validate reports every invalid field of a defaulted config, under path.
func (c *Config) Validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch c.Mode {
	case ModeDirect:
		if len(c.Brokers) == 0 {
			errs = append(errs, field.Required(path.Child("brokers"), "direct mode creates topics through these brokers"))
		}
	case ModeStrimzi:
		sp := path.Child("strimzi")
		if c.Strimzi.Namespace == "" {
			errs = append(errs, field.Required(sp.Child("namespace"), "strimzi mode writes KafkaTopic objects to this namespace"))
		} else if msgs := validation.IsDNS1123Label(c.Strimzi.Namespace); len(msgs) > 0 {
			errs = append(errs, field.Invalid(sp.Child("namespace"), c.Strimzi.Namespace, msgs[0]))
		}
		if c.Strimzi.Cluster == "" {
			errs = append(errs, field.Required(sp.Child("cluster"), "the Strimzi Kafka cluster name, set as the strimzi.io/cluster label"))
		} else if msgs := validation.IsValidLabelValue(c.Strimzi.Cluster); len(msgs) > 0 {
			errs = append(errs, field.Invalid(sp.Child("cluster"), c.Strimzi.Cluster, msgs[0]))
		}
	default:
		errs = append(errs, field.NotSupported(path.Child("mode"), c.Mode, []Mode{ModeDirect, ModeStrimzi}))
	}
	for i, b := range c.Brokers {
		if !validHostPort(b) {
			errs = append(errs, field.Invalid(path.Child("brokers").Index(i), b, "must be host:port"))
		}
	}
	if c.ReplicationFactor < 1 {
		errs = append(errs, field.Invalid(path.Child("replicationFactor"), c.ReplicationFactor, "must be at least 1"))
	}
	if d := c.DialTimeout.Duration; d < 100*time.Millisecond || d > 5*time.Minute {
		errs = append(errs, field.Invalid(path.Child("dialTimeout"), d.String(), "must be between 100ms and 5m"))
	}
	if d := c.RequestTimeout.Duration; d < 100*time.Millisecond || d > 10*time.Minute {
		errs = append(errs, field.Invalid(path.Child("requestTimeout"), d.String(), "must be between 100ms and 10m"))
	}
	return errs
}
