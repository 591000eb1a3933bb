package kafka

import (
	"context"
	"strconv"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/naming"
)

// Topic configuration keys Shoal sets on every tenant topic.
const (
	ConfigRetentionMs       = "retention.ms"
	ConfigCleanupPolicy     = "cleanup.policy"
	ConfigMinInsyncReplicas = "min.insync.replicas"
	defaultPartitions       = 3
	defaultRetentionHours   = 168
	maxMinInsyncReplicas    = 2
	millisecondsPerHour     = 3600 * 1000
	cleanupPolicyDelete     = "delete"
)

// TopicSpec is the topic a tenant should have.
type TopicSpec struct {
	// Name is the topic name (also the KafkaTopic object name in strimzi mode).
	Name string
	// Tenant owns the topic; its labels go on the KafkaTopic.
	Tenant string
	// Partitions wanted; a topic is never shrunk to it.
	Partitions int32
	// Replicas is the replication factor.
	Replicas int16
	// Config holds the topic configs Shoal manages; others are left alone.
	Config map[string]string
}

// TopicStatus is what a provisioner observed of a topic.
type TopicStatus struct {
	Name       string
	Partitions int32
	// Ready is true when the topic exists and serves its partitions.
	Ready bool
	// Message explains a topic that is not ready, or a spec that could not be applied
	// (such as fewer partitions than the topic has).
	Message string
}

// Provisioner keeps tenant topics as specified.
type Provisioner interface {
	// Ensure creates the topic if missing, adds partitions if it has fewer than wanted and
	// restores drifted configs. It never removes partitions: that is reported in the
	// status message.
	Ensure(ctx context.Context, spec TopicSpec) (TopicStatus, error)
	// Delete deletes the topic; a missing topic is not an error.
	Delete(ctx context.Context, name string) error
	// Describe reports the topic, and false when it does not exist.
	Describe(ctx context.Context, name string) (TopicStatus, bool, error)
}

// DesiredTopic is the topic a tenant should have under cfg. Unset sizes (a tenant not yet
// defaulted by the API server) take the API's defaults.
func DesiredTopic(t *v1alpha1.Tenant, cfg Config) TopicSpec {
	partitions := t.Spec.Kafka.Partitions
	if partitions <= 0 {
		partitions = defaultPartitions
	}
	hours := int64(t.Spec.Kafka.RetentionHours)
	if hours <= 0 {
		hours = defaultRetentionHours
	}
	replicas := cfg.ReplicationFactor
	if replicas <= 0 {
		replicas = DefaultReplicationFactor
	}
	// Two in-sync replicas make acks=all survive one broker loss without losing acked
	// writes; with fewer replicas than that, every replica must be in sync.
	minISR := min(int64(maxMinInsyncReplicas), int64(replicas))
	return TopicSpec{
		Name:       naming.Topic(t.Name),
		Tenant:     t.Name,
		Partitions: partitions,
		Replicas:   replicas,
		Config: map[string]string{
			ConfigRetentionMs:       strconv.FormatInt(hours*millisecondsPerHour, 10),
			ConfigCleanupPolicy:     cleanupPolicyDelete,
			ConfigMinInsyncReplicas: strconv.FormatInt(minISR, 10),
		},
	}
}
