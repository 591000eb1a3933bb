package process

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoal-dev/shoal/runtime/events"
)

// topicPartition names one partition of one tenant topic.
type topicPartition struct {
	topic     string
	partition int32
}

// batch is a run of consecutive records of one partition, written together and committed
// together. Once cut its records never change, so every retry writes the same rows and the
// same lake object.
type batch struct {
	tp      topicPartition
	tenant  string
	records []*kgo.Record
	cut     time.Time
	// info is the tenant's, looked up before each attempt.
	info Tenant

	// intentCommitted: its range is stored as the partition's commit metadata.
	intentCommitted bool
	// mayBeStored: some of its records may have been written before, by a previous owner
	// of the partition or before the fetch went back, so all its events are looked up.
	mayBeStored bool
	attempts    int

	// Filled by decode, once.
	decoded    bool
	events     []events.Event
	lines      [][]byte // the events as NDJSON lines for the lake, without the newline
	quarantine []Quarantined
	lakeBody   []byte

	// What already succeeded, so a retry after a partial failure does not write it again.
	quarantineDone, eventsDone, lakeDone bool
	// inserted is how many of events were new to the events table.
	inserted int
}

func (b *batch) first() int64 { return b.records[0].Offset }
func (b *batch) last() int64  { return b.records[len(b.records)-1].Offset }

// LakeContentType is the content type of lake objects: gzip-compressed NDJSON, one
// event per line.
const LakeContentType = "application/gzip"

// LakeKey is the object key of a batch: the tenant's prefix, the date and hour of the
// first record's Kafka timestamp (in UTC), then topic, partition and offset range. It
// depends only on the records, so writing the same batch again overwrites the object.
func LakeKey(prefix, topic string, partition int32, first, last int64, firstTimestamp time.Time) string {
	ts := firstTimestamp.UTC()
	return prefix + "dt=" + ts.Format("2006-01-02") + "/hr=" + ts.Format("15") + "/" +
		topic + "-p" + strconv.FormatInt(int64(partition), 10) + "-" +
		strconv.FormatInt(first, 10) + "-" + strconv.FormatInt(last, 10) + ".ndjson.gz"
}

func (b *batch) lakeKey(prefix string) string {
	return LakeKey(prefix, b.tp.topic, b.tp.partition, b.first(), b.last(), b.records[0].Timestamp)
}

// The range of ClickHouse DateTime: an event outside it cannot be stored as it is (the
// driver would wrap it around), so it is quarantined instead.
var (
	minDateTime = time.Unix(0, 0).UTC()
	maxDateTime = time.Date(2105, 12, 31, 23, 59, 59, 0, time.UTC)
)

// decode turns the records into events and quarantined records.
func (b *batch) decode() {
	if b.decoded {
		return
	}
	b.events = make([]events.Event, 0, len(b.records))
	b.lines = make([][]byte, 0, len(b.records))
	for _, r := range b.records {
		ev, line, reason := decodeRecord(r)
		if reason != "" {
			received := r.Timestamp
			if received.Before(minDateTime) || received.After(maxDateTime) {
				received = minDateTime // no usable Kafka timestamp (-1 is "none")
			}
			b.quarantine = append(b.quarantine, Quarantined{
				Raw: r.Value, Reason: reason, ReceivedAt: received,
				Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
			})
			continue
		}
		b.events = append(b.events, ev)
		b.lines = append(b.lines, line)
	}
	b.decoded = true
}

// decodeRecord decodes one record. reason says why it is no event; line is the record
// value as one NDJSON line: the bytes as ingest wrote them (compacted if they span
// lines), so the lake holds exactly what went through Kafka.
func decodeRecord(r *kgo.Record) (ev events.Event, line []byte, reason string) {
	assigned := false
	for _, h := range r.Headers {
		switch h.Key {
		case events.HeaderContentType:
			if string(h.Value) != events.WireFormat {
				return ev, nil, fmt.Sprintf("unsupported content-type %q, want %q", h.Value, events.WireFormat)
			}
		case events.HeaderIDAssigned:
			assigned = string(h.Value) == "1"
		}
	}
	if len(r.Value) == 0 {
		return ev, nil, "empty record value"
	}
	ev, err := events.Unmarshal(r.Value)
	if err != nil {
		return ev, nil, err.Error()
	}
	ev.IDAssigned = assigned
	switch {
	case ev.EventID == "":
		return ev, nil, "event_id is empty"
	case ev.Timestamp.Before(minDateTime) || ev.Timestamp.After(maxDateTime):
		return ev, nil, fmt.Sprintf("timestamp %s is outside 1970-01-01 to 2105-12-31", ev.Timestamp.UTC().Format(time.RFC3339))
	case ev.ReceivedAt.Before(minDateTime) || ev.ReceivedAt.After(maxDateTime):
		return ev, nil, fmt.Sprintf("received_at %s is outside 1970-01-01 to 2105-12-31", ev.ReceivedAt.UTC().Format(time.RFC3339))
	}
	line = r.Value
	if bytes.ContainsAny(line, "\r\n") {
		var buf bytes.Buffer
		if err := json.Compact(&buf, line); err != nil {
			return ev, nil, fmt.Sprintf("record value is not compactable JSON: %v", err)
		}
		line = buf.Bytes()
	}
	return ev, line, ""
}

// encodeNDJSON gzips lines, one per line. The fastest level, of a gzip about twice as
// fast as the standard library's: the lake's objects are written once per batch on the
// hot path, and storage classes, not CPU, bound their cost.
func encodeNDJSON(lines [][]byte) ([]byte, error) {
	size := 0
	for _, l := range lines {
		size += len(l) + 1
	}
	buf := bytes.NewBuffer(make([]byte, 0, size/4+512))
	zw, err := gzip.NewWriterLevel(buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		if _, err := zw.Write(l); err != nil {
			return nil, err
		}
		if _, err := zw.Write([]byte{'\n'}); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
