package kafka

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/shoal-dev/shoal/api/v1alpha1"
)

func TestDesiredTopic(t *testing.T) {
	tenant := func(partitions, hours int32) *v1alpha1.Tenant {
		return &v1alpha1.Tenant{
			ObjectMeta: metav1.ObjectMeta{Name: "acme"},
			Spec:       v1alpha1.TenantSpec{Kafka: v1alpha1.KafkaSpec{Partitions: partitions, RetentionHours: hours}},
		}
	}
	tests := []struct {
		name   string
		tenant *v1alpha1.Tenant
		cfg    Config
		want   TopicSpec
	}{
		{
			name:   "defaults of an undefaulted tenant and config",
			tenant: tenant(0, 0),
			want: TopicSpec{Name: "shoal-events-acme", Tenant: "acme", Partitions: 3, Replicas: 1, Config: map[string]string{
				"retention.ms": "604800000", "cleanup.policy": "delete", "min.insync.replicas": "1",
			}},
		},
		{
			name:   "sized tenant, three replicas caps min.insync.replicas at two",
			tenant: tenant(12, 24),
			cfg:    Config{ReplicationFactor: 3},
			want: TopicSpec{Name: "shoal-events-acme", Tenant: "acme", Partitions: 12, Replicas: 3, Config: map[string]string{
				"retention.ms": "86400000", "cleanup.policy": "delete", "min.insync.replicas": "2",
			}},
		},
		{
			name:   "two replicas, longest retention",
			tenant: tenant(256, 2160),
			cfg:    Config{ReplicationFactor: 2},
			want: TopicSpec{Name: "shoal-events-acme", Tenant: "acme", Partitions: 256, Replicas: 2, Config: map[string]string{
				"retention.ms": "7776000000", "cleanup.policy": "delete", "min.insync.replicas": "2",
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DesiredTopic(tt.tenant, tt.cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DesiredTopic =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // field paths with errors, in order
	}{
		{name: "direct with brokers", cfg: Config{Brokers: []string{"kafka:9092"}}},
		{name: "direct without brokers", cfg: Config{}, want: []string{"kafka.brokers"}},
		{name: "bad broker address", cfg: Config{Brokers: []string{"kafka"}}, want: []string{"kafka.brokers[0]"}},
		{name: "strimzi", cfg: Config{Mode: ModeStrimzi, Strimzi: StrimziConfig{Namespace: "kafka", Cluster: "main"}}},
		{name: "strimzi without namespace and cluster", cfg: Config{Mode: ModeStrimzi}, want: []string{"kafka.strimzi.namespace", "kafka.strimzi.cluster"}},
		{name: "unknown mode", cfg: Config{Mode: "zookeeper"}, want: []string{"kafka.mode"}},
		{
			name: "replication factor and timeouts out of range",
			cfg:  Config{Brokers: []string{"k:1"}, ReplicationFactor: -1, DialTimeout: metav1.Duration{Duration: time.Millisecond}, RequestTimeout: metav1.Duration{Duration: time.Hour}},
			want: []string{"kafka.replicationFactor", "kafka.dialTimeout", "kafka.requestTimeout"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Default()
			var got []string
			for _, e := range cfg.Validate(field.NewPath("kafka")) {
				got = append(got, e.Field)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors on %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	var cfg Config
	cfg.Default()
	want := Config{Mode: ModeDirect, ReplicationFactor: 1, DialTimeout: metav1.Duration{Duration: 5 * time.Second}, RequestTimeout: metav1.Duration{Duration: 10 * time.Second}}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaulted config %+v, want %+v", cfg, want)
	}
}

func TestErrorMessageAndUnavailable(t *testing.T) {
	cause := errors.New("connection refused")
	err := &Error{Op: "creating topic", Topic: "shoal-events-acme", Backend: "brokers 10.0.0.1:9092", Unavailable: true, Err: cause}
	for _, want := range []string{"shoal-events-acme", "10.0.0.1:9092", "creating topic", cause.Error()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not name %q", err.Error(), want)
		}
	}
	if !IsUnavailable(fmt.Errorf("reconciling: %w", err)) {
		t.Error("IsUnavailable is false through wrapping")
	}
	if IsUnavailable(cause) {
		t.Error("IsUnavailable is true for an error not from a backend")
	}
}
