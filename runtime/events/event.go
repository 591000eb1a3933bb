// Package events is the event as it travels the data path: what the ingest API accepts,
// what it writes to a tenant's Kafka topic, and what the processor stores in ClickHouse
// and the lake.
package events

import (
	"encoding/json"
	"time"
)

// Event is one accepted event. On Kafka a record holds one Event as JSON (WireFormat),
// keyed by its EventID, on the tenant's topic (naming.Topic): the topic says whose it is.
type Event struct {
	// EventID identifies the event: the client's, or a UUIDv7 assigned at ingest.
	// Storage deduplicates on it, so a retried request or a redelivered record counts once.
	EventID string `json:"event_id"`
	// EventType is what happened, such as "page_view".
	EventType string `json:"event_type"`
	// Timestamp is when it happened, in UTC with millisecond precision.
	Timestamp time.Time `json:"timestamp"`
	// ReceivedAt is when the ingest API accepted it, in UTC with millisecond precision.
	ReceivedAt time.Time `json:"received_at"`
	// UserID and SessionID are optional.
	UserID    string `json:"user_id,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	// Properties is a JSON object, kept as sent (compacted); empty means {}.
	Properties json.RawMessage `json:"properties,omitempty"`
	// IDAssigned says ingest assigned EventID because the client gave none. Only a
	// redelivery can repeat such an event, while a client may send its own id twice, so
	// the processor looks up only the others in the table before inserting (unless a
	// batch may have been written before). It travels as a record header
	// (HeaderIDAssigned), not in the JSON.
	IDAssigned bool `json:"-"`
}

// WireFormat names the encoding of Kafka record values, set as the record's
// "content-type" header so a later format can be told apart.
const WireFormat = "application/vnd.shoal.event.v1+json"

// Headers of the records ingest writes.
const (
	// HeaderContentType holds WireFormat.
	HeaderContentType = "content-type"
	// HeaderIDAssigned, with the value "1", marks a record whose event_id ingest assigned.
	HeaderIDAssigned = "shoal-id-assigned"
)
