package ingest

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/runtime/events"
)

// maxPooledBytes bounds a buffer kept for reuse: the rare large request allocates its
// own, so the pools do not pin its memory. (An events.Decoder bounds what it keeps itself.)
const maxPooledBytes = 1 << 20

// buffers reuses the memory of one request for the next: the decoder (the buffer the body
// is read into, and the events), the records with their keys and values, and the answer.
// At ingest rates that memory is most of what the server allocates; allocated afresh
// each time, it costs the garbage collector and the kernel (fresh pages) more than
// decoding the events does.
type buffers struct {
	decoders sync.Pool // *events.Decoder
	records  sync.Pool // *recordSet
	answers  sync.Pool // *[]byte
}

func (b *buffers) decoder() *events.Decoder {
	if d, ok := b.decoders.Get().(*events.Decoder); ok {
		return d
	}
	return new(events.Decoder)
}

// putDecoder keeps d once nothing refers to its last batch any more.
func (b *buffers) putDecoder(d *events.Decoder) { b.decoders.Put(d) }

// answer returns an empty buffer to write an answer into.
func (b *buffers) answer() *[]byte {
	if p, ok := b.answers.Get().(*[]byte); ok {
		return p
	}
	return new([]byte)
}

// putAnswer keeps *p, once written, unless it is larger than a pool keeps.
func (b *buffers) putAnswer(p *[]byte) {
	if cap(*p) <= maxPooledBytes {
		*p = (*p)[:0]
		b.answers.Put(p)
	}
}

// recordSet returns an empty record set.
func (b *buffers) recordSet() *recordSet {
	if rs, ok := b.records.Get().(*recordSet); ok {
		return rs
	}
	return &recordSet{}
}

// putRecordSet keeps rs once the producer no longer holds its records.
func (b *buffers) putRecordSet(rs *recordSet) {
	if cap(rs.values) > maxPooledBytes {
		return
	}
	b.records.Put(rs)
}

// recordSet holds a request's Kafka records: the records, their keys and their values are
// carved from one allocation each, kept from request to request.
type recordSet struct {
	slab         []kgo.Record
	records      []*kgo.Record
	keys, values []byte
}

// fill makes rs the records of the events, with the given headers for an event_id the
// client gave and for one ingest assigned, and returns them.
func (rs *recordSet) fill(tenant string, evs []events.Event, headers, headersAssigned []kgo.RecordHeader) []*kgo.Record {
	topic := naming.Topic(tenant)
	if cap(rs.slab) < len(evs) {
		rs.slab = make([]kgo.Record, len(evs))
		rs.records = make([]*kgo.Record, len(evs))
	}
	slab, records := rs.slab[:len(evs)], rs.records[:len(evs)]
	keyBytes, valueBytes := 0, 0
	for i := range evs {
		keyBytes += len(evs[i].EventID)
		valueBytes += events.MarshalSizeHint(evs[i])
	}
	if cap(rs.keys) < keyBytes {
		rs.keys = make([]byte, 0, keyBytes)
	}
	if cap(rs.values) < valueBytes {
		rs.values = make([]byte, 0, valueBytes)
	}
	keys, values := rs.keys[:0], rs.values[:0]
	for i := range evs {
		e := &evs[i]
		start := len(values)
		// Decode checked every event it accepted; nothing changed them since.
		values = events.AppendDecoded(values, *e)
		// Capped, so nothing appended later (past a hint an escape outgrew) can reach into
		// a value already handed out; a buffer that grew leaves the earlier values where
		// they were.
		value := values[start:len(values):len(values)]
		kstart := len(keys)
		keys = append(keys, e.EventID...)
		h := headers
		if e.IDAssigned {
			h = headersAssigned
		}
		// The whole record is written: the client set fields of the one before (partition,
		// offset, producer id).
		slab[i] = kgo.Record{Topic: topic, Key: keys[kstart:len(keys):len(keys)], Value: value, Headers: h}
		records[i] = &slab[i]
	}
	// A buffer that grew past its hint is kept at its new size.
	rs.keys, rs.values = keys[:0], values[:0]
	return records
}
