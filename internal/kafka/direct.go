package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Direct provisions topics through the Kafka admin API.
type Direct struct {
	cfg     Config
	client  *kgo.Client
	admin   *kadm.Client
	backend string
}

var _ Provisioner = (*Direct)(nil)

// NewDirect returns a provisioner talking to cfg.Brokers. It connects lazily, so a broker
// that is down now is an error of the first call, not of NewDirect. Close it when done.
func NewDirect(cfg Config) (*Direct, error) {
	cfg = cfg.withDefaults()
	cfg.Mode = ModeDirect
	if errs := cfg.Validate(field.NewPath("kafka")); len(errs) > 0 {
		return nil, fmt.Errorf("invalid kafka config: %w", errs.ToAggregate())
	}
	client, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DialTimeout(cfg.DialTimeout.Duration),
		// Retries stop at the request timeout too, so an outage surfaces as an error
		// within it rather than as a call blocked until its context ends.
		kgo.RetryTimeout(cfg.RequestTimeout.Duration),
	)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client for %s: %w", strings.Join(cfg.Brokers, ","), err)
	}
	return &Direct{
		cfg:     cfg,
		client:  client,
		admin:   kadm.NewClient(client),
		backend: "brokers " + strings.Join(cfg.Brokers, ","),
	}, nil
}

// Close closes the connections to the brokers.
func (d *Direct) Close() { d.client.Close() }

func (d *Direct) fail(op, topic string, err error) error {
	return &Error{Op: op, Topic: topic, Backend: d.backend, Unavailable: brokerUnavailable(err), Err: err}
}

// Ensure implements Provisioner.
func (d *Direct) Ensure(ctx context.Context, spec TopicSpec) (TopicStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout.Duration)
	defer cancel()

	detail, found, err := d.describe(ctx, spec.Name)
	if err != nil {
		return TopicStatus{}, err
	}
	if !found {
		created, err := d.create(ctx, spec)
		if err != nil {
			return TopicStatus{}, err
		}
		if created {
			return TopicStatus{Name: spec.Name, Partitions: spec.Partitions, Ready: true}, nil
		}
		// Someone created it between our look and our create: reconcile what is there.
		if detail, found, err = d.describe(ctx, spec.Name); err != nil {
			return TopicStatus{}, err
		}
		if !found {
			return TopicStatus{}, d.fail("creating topic", spec.Name, errors.New("the broker reports the topic both existing and missing; retry"))
		}
	}

	var notes []string
	partitions := detail.partitions
	switch {
	case partitions < spec.Partitions:
		resp, err := d.admin.UpdatePartitions(ctx, int(spec.Partitions), spec.Name)
		if err == nil {
			_, err = resp.On(spec.Name, func(r *kadm.CreatePartitionsResponse) error {
				if r.Err != nil && r.ErrMessage != "" {
					return fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
				}
				return r.Err
			})
		}
		if err != nil {
			return TopicStatus{}, d.fail(fmt.Sprintf("adding partitions (%d to %d) to topic", partitions, spec.Partitions), spec.Name, err)
		}
		partitions = spec.Partitions
	case partitions > spec.Partitions:
		notes = append(notes, decreaseRefused(partitions, spec.Partitions))
	}
	if rf := detail.replicas; rf > 0 && rf != spec.Replicas {
		notes = append(notes, fmt.Sprintf("topic has replication factor %d, %d is configured: changing it needs a partition reassignment, which Shoal does not do", rf, spec.Replicas))
	}
	if err := d.repairConfig(ctx, spec); err != nil {
		return TopicStatus{}, err
	}
	if detail.notReady != "" {
		notes = append(notes, detail.notReady)
	}
	return TopicStatus{Name: spec.Name, Partitions: partitions, Ready: detail.notReady == "", Message: strings.Join(notes, "; ")}, nil
}

// create creates the topic, returning false when it already exists.
func (d *Direct) create(ctx context.Context, spec TopicSpec) (bool, error) {
	configs := make(map[string]*string, len(spec.Config))
	for k, v := range spec.Config {
		configs[k] = &v
	}
	resp, err := d.admin.CreateTopic(ctx, spec.Partitions, spec.Replicas, configs, spec.Name)
	if err == nil {
		err = resp.Err
	}
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return false, nil
	}
	if err != nil {
		if resp.ErrMessage != "" {
			err = fmt.Errorf("%w: %s", err, resp.ErrMessage)
		}
		return false, d.fail(fmt.Sprintf("creating (%d partitions, replication factor %d) topic", spec.Partitions, spec.Replicas), spec.Name, err)
	}
	return true, nil
}

// repairConfig sets every managed config whose value differs from the spec.
func (d *Direct) repairConfig(ctx context.Context, spec TopicSpec) error {
	described, err := d.admin.DescribeTopicConfigs(ctx, spec.Name)
	var rc kadm.ResourceConfig
	if err == nil {
		rc, err = described.On(spec.Name, nil)
	}
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return d.fail("reading configs of topic", spec.Name, err)
	}
	current := make(map[string]string, len(rc.Configs))
	for _, c := range rc.Configs {
		current[c.Key] = c.MaybeValue()
	}
	var alter []kadm.AlterConfig
	for _, k := range slices.Sorted(maps.Keys(spec.Config)) {
		if v := spec.Config[k]; current[k] != v {
			alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
		}
	}
	if len(alter) == 0 {
		return nil
	}
	resp, err := d.admin.AlterTopicConfigs(ctx, alter, spec.Name)
	if err == nil {
		_, err = resp.On(spec.Name, func(r *kadm.AlterConfigsResponse) error {
			if r.Err != nil && r.ErrMessage != "" {
				return fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
			}
			return r.Err
		})
	}
	if err != nil {
		return d.fail("restoring configs of topic", spec.Name, err)
	}
	return nil
}

// Delete implements Provisioner.
func (d *Direct) Delete(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout.Duration)
	defer cancel()
	resp, err := d.admin.DeleteTopic(ctx, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return d.fail("deleting topic", name, err)
	}
	return nil
}

// Describe implements Provisioner.
func (d *Direct) Describe(ctx context.Context, name string) (TopicStatus, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout.Duration)
	defer cancel()
	detail, found, err := d.describe(ctx, name)
	if err != nil || !found {
		return TopicStatus{}, found, err
	}
	return TopicStatus{Name: name, Partitions: detail.partitions, Ready: detail.notReady == "", Message: detail.notReady}, true, nil
}

// topicState is what the broker reports of a topic.
type topicState struct {
	partitions int32
	replicas   int16
	// notReady explains a partition without a leader; empty when all are served.
	notReady string
}

// describe asks the broker for the topic's metadata. It goes to the broker every time:
// the client's metadata cache would hide a topic deleted by hand, or an outage.
func (d *Direct) describe(ctx context.Context, name string) (topicState, bool, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(name)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, d.client)
	if err != nil {
		return topicState{}, false, d.fail("looking up topic", name, err)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != name {
			continue
		}
		err := kerr.ErrorForCode(t.ErrorCode)
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return topicState{}, false, nil
		}
		if err != nil {
			return topicState{}, false, d.fail("looking up topic", name, err)
		}
		st := topicState{partitions: int32(len(t.Partitions))}
		slices.SortFunc(t.Partitions, func(a, b kmsg.MetadataResponseTopicPartition) int { return int(a.Partition - b.Partition) })
		for _, p := range t.Partitions {
			st.replicas = max(st.replicas, int16(len(p.Replicas)))
			if st.notReady != "" {
				continue
			}
			if perr := kerr.ErrorForCode(p.ErrorCode); perr != nil {
				st.notReady = fmt.Sprintf("partition %d: %v", p.Partition, perr)
			} else if p.Leader < 0 {
				st.notReady = fmt.Sprintf("partition %d has no leader", p.Partition)
			}
		}
		return st, true, nil
	}
	return topicState{}, false, nil
}

func decreaseRefused(have, want int32) string {
	return fmt.Sprintf("topic has %d partitions and %d are asked for: Kafka cannot remove partitions, so it keeps %d", have, want, have)
}
