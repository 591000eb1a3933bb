package kafka

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/shoal-dev/shoal/internal/naming"
)

// KafkaTopicGVK is the Strimzi KafkaTopic kind Shoal writes.
func KafkaTopicGVK() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: "kafka.strimzi.io", Version: "v1", Kind: "KafkaTopic"}
}

// StrimziClusterLabel tells the Strimzi topic operator which Kafka cluster a KafkaTopic
// belongs to; operators ignore topics labelled for another cluster.
const StrimziClusterLabel = "strimzi.io/cluster"

// Strimzi provisions topics by writing KafkaTopic objects for the Strimzi topic operator,
// and reads readiness from their status.
type Strimzi struct {
	cfg     Config
	client  client.Client
	backend string
}

var _ Provisioner = (*Strimzi)(nil)

// NewStrimzi returns a provisioner writing KafkaTopics through c into
// cfg.Strimzi.Namespace.
func NewStrimzi(c client.Client, cfg Config) (*Strimzi, error) {
	cfg = cfg.withDefaults()
	cfg.Mode = ModeStrimzi
	if errs := cfg.Validate(field.NewPath("kafka")); len(errs) > 0 {
		return nil, fmt.Errorf("invalid kafka config: %w", errs.ToAggregate())
	}
	return &Strimzi{
		cfg:     cfg,
		client:  c,
		backend: fmt.Sprintf("Strimzi cluster %s/%s", cfg.Strimzi.Namespace, cfg.Strimzi.Cluster),
	}, nil
}

func (s *Strimzi) fail(op, topic string, err error) error {
	return &Error{Op: op, Topic: topic, Backend: s.backend, Unavailable: apiUnavailable(err), Err: err}
}

func (s *Strimzi) key(name string) client.ObjectKey {
	return client.ObjectKey{Namespace: s.cfg.Strimzi.Namespace, Name: name}
}

func newKafkaTopic() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(KafkaTopicGVK())
	return u
}

// Ensure implements Provisioner: it creates or updates the KafkaTopic and reports the
// topic operator's Ready condition.
func (s *Strimzi) Ensure(ctx context.Context, spec TopicSpec) (TopicStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout.Duration)
	defer cancel()

	var result *unstructured.Unstructured
	var note string
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		obj := newKafkaTopic()
		err := s.client.Get(ctx, s.key(spec.Name), obj)
		if apierrors.IsNotFound(err) {
			obj = newKafkaTopic()
			obj.SetNamespace(s.cfg.Strimzi.Namespace)
			obj.SetName(spec.Name)
			obj.SetLabels(s.labels(spec, nil))
			if err := s.setSpec(obj, spec, spec.Partitions); err != nil {
				return err
			}
			if err := s.client.Create(ctx, obj); err != nil {
				return err
			}
			result, note = obj, ""
			return nil
		}
		if err != nil {
			return err
		}
		partitions := spec.Partitions
		note = ""
		if have, found, _ := unstructured.NestedInt64(obj.Object, "spec", "partitions"); found && int32(have) > partitions {
			partitions = int32(have)
			note = decreaseRefused(partitions, spec.Partitions)
		}
		before := obj.DeepCopy()
		obj.SetLabels(s.labels(spec, obj.GetLabels()))
		if err := s.setSpec(obj, spec, partitions); err != nil {
			return err
		}
		result = obj
		if equalObjects(before, obj) {
			return nil
		}
		return s.client.Update(ctx, obj)
	})
	if err != nil {
		return TopicStatus{}, s.fail("writing KafkaTopic for topic", spec.Name, err)
	}
	st := readiness(result)
	if note != "" {
		st.Message = strings.Join(slices.DeleteFunc([]string{note, st.Message}, func(m string) bool { return m == "" }), "; ")
	}
	return st, nil
}

// labels are the KafkaTopic's labels: the ones already there plus the cluster label and
// the tenant's.
func (s *Strimzi) labels(spec TopicSpec, existing map[string]string) map[string]string {
	labels := maps.Clone(existing)
	if labels == nil {
		labels = map[string]string{}
	}
	if spec.Tenant != "" {
		maps.Copy(labels, naming.TenantLabels(spec.Tenant))
	} else {
		labels[naming.ManagedByLabel] = naming.ManagedByValue
	}
	labels[StrimziClusterLabel] = s.cfg.Strimzi.Cluster
	return labels
}

// setSpec writes the fields Shoal manages, keeping topic configs set by others.
func (s *Strimzi) setSpec(obj *unstructured.Unstructured, spec TopicSpec, partitions int32) error {
	config, _, err := unstructured.NestedMap(obj.Object, "spec", "config")
	if err != nil {
		return fmt.Errorf("reading spec.config: %w", err)
	}
	if config == nil {
		config = map[string]any{}
	}
	for k, v := range spec.Config {
		config[k] = v
	}
	fields := []struct {
		value any
		path  []string
	}{
		{spec.Name, []string{"spec", "topicName"}},
		{int64(partitions), []string{"spec", "partitions"}},
		{int64(spec.Replicas), []string{"spec", "replicas"}},
		{config, []string{"spec", "config"}},
	}
	for _, f := range fields {
		if err := unstructured.SetNestedField(obj.Object, f.value, f.path...); err != nil {
			return fmt.Errorf("setting %v: %w", f.path, err)
		}
	}
	return nil
}

// Delete implements Provisioner. The topic operator deletes the Kafka topic when the
// KafkaTopic goes.
func (s *Strimzi) Delete(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout.Duration)
	defer cancel()
	obj := newKafkaTopic()
	obj.SetNamespace(s.cfg.Strimzi.Namespace)
	obj.SetName(name)
	if err := s.client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
		return s.fail("deleting KafkaTopic for topic", name, err)
	}
	return nil
}

// Describe implements Provisioner.
func (s *Strimzi) Describe(ctx context.Context, name string) (TopicStatus, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout.Duration)
	defer cancel()
	obj := newKafkaTopic()
	err := s.client.Get(ctx, s.key(name), obj)
	if apierrors.IsNotFound(err) {
		return TopicStatus{}, false, nil
	}
	if err != nil {
		return TopicStatus{}, false, s.fail("reading KafkaTopic for topic", name, err)
	}
	return readiness(obj), true, nil
}

// readiness reads the topic operator's verdict: Ready=True for the current generation.
func readiness(obj *unstructured.Unstructured) TopicStatus {
	partitions, _, _ := unstructured.NestedInt64(obj.Object, "spec", "partitions")
	st := TopicStatus{Name: obj.GetName(), Partitions: int32(partitions)}
	if obj.GetDeletionTimestamp() != nil {
		st.Message = "KafkaTopic is being deleted"
		return st
	}
	// A Ready condition from before the last spec change says nothing about that change.
	observed, found, _ := unstructured.NestedInt64(obj.Object, "status", "observedGeneration")
	if found && observed < obj.GetGeneration() {
		st.Message = fmt.Sprintf("waiting for the Strimzi topic operator to apply generation %d of the KafkaTopic (it last applied %d)", obj.GetGeneration(), observed)
		return st
	}
	conditions, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conditions {
		cond, ok := c.(map[string]any)
		if !ok || cond["type"] != "Ready" {
			continue
		}
		if cond["status"] == "True" {
			st.Ready = true
			return st
		}
		reason, _ := cond["reason"].(string)
		message, _ := cond["message"].(string)
		st.Message = joinMessages("Strimzi reports the topic not ready", reason, message)
		return st
	}
	st.Message = "waiting for the Strimzi topic operator to reconcile the KafkaTopic"
	return st
}

func joinMessages(parts ...string) string {
	out := ""
	for _, p := range parts {
		if p == "" {
			continue
		}
		if out != "" {
			out += ": "
		}
		out += p
	}
	return out
}

func equalObjects(a, b *unstructured.Unstructured) bool {
	return reflect.DeepEqual(a.Object, b.Object)
}
