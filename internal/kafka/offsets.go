package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ConsumerProgress tells whether a consumer group has processed a topic up to a point in
// time: the Pipeline controller waits for the processor this way before backfilling, so
// every event received before the backfill's cutoff is in ClickHouse when it reads.
type ConsumerProgress struct {
	client  *kgo.Client
	admin   *kadm.Client
	timeout time.Duration
	backend string
}

// NewConsumerProgress returns a checker talking to cfg.Brokers (in both modes: the
// brokers are needed to read offsets). It connects lazily. Close it when done.
func NewConsumerProgress(cfg Config) (*ConsumerProgress, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Brokers) == 0 {
		return nil, fmt.Errorf("invalid kafka config: %w", field.Required(field.NewPath("kafka", "brokers"), "reading consumer offsets needs the brokers"))
	}
	client, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DialTimeout(cfg.DialTimeout.Duration),
		kgo.RetryTimeout(cfg.RequestTimeout.Duration),
	)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client for %s: %w", strings.Join(cfg.Brokers, ","), err)
	}
	return &ConsumerProgress{
		client: client, admin: kadm.NewClient(client),
		timeout: cfg.RequestTimeout.Duration, backend: "brokers " + strings.Join(cfg.Brokers, ","),
	}, nil
}

// Close closes the connections.
func (c *ConsumerProgress) Close() { c.client.Close() }

// Progress is how far a group got in a topic relative to a time.
type Progress struct {
	// Done: in every partition, the group committed an offset at or beyond the first
	// record whose timestamp is at or after the time (the end of the partition when none
	// is yet), so every record before it was processed.
	Done bool
	// Lag is the number of records, over all partitions, between the committed offsets
	// and those targets.
	Lag int64
	// Behind lists the partitions not there yet, ascending.
	Behind []int32
}

func (p Progress) String() string {
	if p.Done {
		return "caught up"
	}
	return fmt.Sprintf("%d records behind in partitions %v", p.Lag, p.Behind)
}

// PassedTime reports whether group has committed, in every partition of topic, an offset
// at or beyond the first record with a timestamp at or after at. Records are timestamped
// by their producer, so call it once at has passed on the producers' clocks (plus their
// skew): a record produced later could otherwise still carry an earlier timestamp.
// A partition the group never committed in counts from its log start.
func (c *ConsumerProgress) PassedTime(ctx context.Context, group, topic string, at time.Time) (Progress, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	fail := func(op string, err error) (Progress, error) {
		return Progress{}, &Error{Op: op, Topic: topic, Backend: c.backend, Unavailable: brokerUnavailable(err), Err: err}
	}
	targets, err := c.admin.ListOffsetsAfterMilli(ctx, at.UnixMilli(), topic)
	if err != nil {
		return fail("listing offsets after "+at.UTC().Format(time.RFC3339)+" of", err)
	}
	if err := targets.Error(); err != nil {
		return fail("listing offsets after "+at.UTC().Format(time.RFC3339)+" of", err)
	}
	if _, ok := targets[topic]; !ok {
		return fail("listing offsets of", fmt.Errorf("topic does not exist"))
	}
	starts, err := c.admin.ListStartOffsets(ctx, topic)
	if err != nil {
		return fail("listing start offsets of", err)
	}
	if err := starts.Error(); err != nil {
		return fail("listing start offsets of", err)
	}
	committed, err := c.admin.FetchOffsetsForTopics(ctx, group, topic)
	if err == nil {
		err = committed.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) {
		// The group never committed: everything counts from the log start.
		committed, err = nil, nil
	}
	if err != nil {
		return fail("fetching the offsets group "+group+" committed in", err)
	}
	p := Progress{Done: true}
	for partition, target := range targets[topic] {
		done := int64(-1)
		if o, ok := committed.Lookup(topic, partition); ok && o.At >= 0 {
			done = o.At
		}
		if done < 0 {
			if s, ok := starts.Lookup(topic, partition); ok {
				done = s.Offset
			}
		}
		if done < target.Offset {
			p.Done = false
			p.Lag += target.Offset - max(done, 0)
			p.Behind = append(p.Behind, partition)
		}
	}
	slices.Sort(p.Behind)
	return p, nil
}
