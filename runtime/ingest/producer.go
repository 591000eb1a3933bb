package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoal-dev/shoal/internal/kafka"
	"github.com/shoal-dev/shoal/runtime/events"
)

// Producer writes records to Kafka.
type Producer interface {
	// Produce writes the records and returns nil once Kafka acknowledged every one, or
	// an error as soon as one failed or ctx ended. After an error some records may
	// still have been written. release is called once the producer holds the records no
	// more, so their memory can serve another request: before Produce returns, or later
	// when ctx ended while the client still held them.
	Produce(ctx context.Context, records []*kgo.Record, release func()) error
	// Ping reports whether a broker answers.
	Ping(ctx context.Context) error
}

// RecordHeaders are the headers of an event's record: its wire format, and whether ingest
// assigned its event_id (see events.Event.IDAssigned).
func RecordHeaders(idAssigned bool) []kgo.RecordHeader {
	h := []kgo.RecordHeader{{Key: events.HeaderContentType, Value: []byte(events.WireFormat)}}
	if idAssigned {
		h = append(h, kgo.RecordHeader{Key: events.HeaderIDAssigned, Value: []byte("1")})
	}
	return h
}

// ClientOptions are the franz-go options of the ingest producer: acks from all in-sync
// replicas with the idempotent producer (franz-go's default, stated here because the
// promise of a 200 rests on it), so an acknowledged record survives a broker loss and the
// client's own retries of a batch are not written twice.
//
// A request's records may be cancelled even once sent (when its AckTimeout ends): by
// default an idempotent producer keeps a sent record until the broker answers, which
// during an outage is after the client was told 503, and the record would then land
// unannounced. Cancelled, it is either failed (the broker never had it) or was written
// before the broker went away; the client retries with the same event_id either way, and
// storage deduplicates on it.
func ClientOptions(cfg kafka.Config) []kgo.Opt {
	cfg.Default()
	return []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DialTimeout(cfg.DialTimeout.Duration),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.AllowIdempotentProduceCancellation(),
	}
}

// KafkaProducer is the Producer over a franz-go client.
type KafkaProducer struct {
	client *kgo.Client
}

var _ Producer = (*KafkaProducer)(nil)

// NewKafkaProducer returns a producer to cfg.Brokers with ClientOptions, then extra. It
// connects lazily, so a broker that is down now is an error of the first Produce.
func NewKafkaProducer(cfg kafka.Config, extra ...kgo.Opt) (*KafkaProducer, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("ingest: kafka.brokers is empty")
	}
	client, err := kgo.NewClient(append(ClientOptions(cfg), extra...)...)
	if err != nil {
		return nil, fmt.Errorf("ingest: creating the kafka producer for %s: %w", strings.Join(cfg.Brokers, ","), err)
	}
	return &KafkaProducer{client: client}, nil
}

// Produce implements Producer with ProduceSync, which also cuts the linger short for
// the partitions it wrote to. ProduceSync itself can outlive ctx (an idempotent
// producer does not fail a record that was sent until the broker answers), so it runs
// aside and Produce returns when ctx ends; the records' fate is then left to the client.
//
// ProduceSync returns once every record's promise was called, after which franz-go no
// longer touches a record; only then is release called.
func (p *KafkaProducer) Produce(ctx context.Context, records []*kgo.Record, release func()) error {
	done := make(chan error, 1)
	go func() {
		err := p.client.ProduceSync(ctx, records...).FirstErr()
		release()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("producing %d records: %w", len(records), err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for kafka to acknowledge %d records: %w", len(records), ctx.Err())
	}
}

// Ping implements Producer with a metadata request.
func (p *KafkaProducer) Ping(ctx context.Context) error {
	if err := p.client.Ping(ctx); err != nil {
		return fmt.Errorf("pinging kafka: %w", err)
	}
	return nil
}

// Flush waits until every buffered record is acknowledged or failed, or ctx ends.
func (p *KafkaProducer) Flush(ctx context.Context) error {
	if err := p.client.Flush(ctx); err != nil {
		return fmt.Errorf("flushing the kafka producer: %w", err)
	}
	return nil
}

// Close closes the client; records still buffered are failed.
func (p *KafkaProducer) Close() { p.client.Close() }
