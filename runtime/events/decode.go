// Decode turns an ingest request body into Events, checking each against Limits; an event
// that breaks a rule is rejected on its own, with its index and a reason, and the others
// are accepted.
//
// Timestamps. An event's "timestamp" is an RFC 3339 string ("2024-05-01T12:00:00.123Z",
// any offset) or an integer number of milliseconds since the Unix epoch; an event without
// one happened when the request arrived. It is stored in UTC, truncated to milliseconds,
// and must lie within [now-MaxPast, now+MaxFuture], both ends included, where now is when
// the request arrived: by default from 30 days back to 24 hours ahead. Events outside are
// rejected, not clamped: older ones would land in rollups and lake partitions already
// written, and ones far ahead are nearly always a wrong clock or a wrong unit (seconds or
// microseconds sent as milliseconds).
package events

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Fixed bounds on an event's strings, whatever the plan: they are keys and labels, not data.
const (
	maxEventTypeBytes = 128
	maxEventIDBytes   = 128
	maxUserIDBytes    = 256 // user_id and session_id
)

// Limits bound one request. Zero values are invalid; callers fill them from the plan.
type Limits struct {
	MaxRequestBytes     int           // body after decompression
	MaxEventBytes       int           // one event's JSON encoding as sent
	MaxEventsPerRequest int           //
	MaxDepth            int           // nesting depth of properties (an object in an object is depth 2)
	MaxFuture           time.Duration // timestamps later than now+MaxFuture are rejected
	MaxPast             time.Duration // timestamps earlier than now-MaxPast are rejected
}

// DefaultLimits returns the limits of a plan that sets none: 5 MiB per request, 32 KiB per
// event, 1000 events per request, properties nested 8 deep, timestamps from 30 days back
// to 24 hours ahead.
func DefaultLimits() Limits {
	return Limits{
		MaxRequestBytes:     5 << 20,
		MaxEventBytes:       32 << 10,
		MaxEventsPerRequest: 1000,
		MaxDepth:            8,
		MaxFuture:           24 * time.Hour,
		MaxPast:             30 * 24 * time.Hour,
	}
}

// Validate reports the first limit that is not positive.
func (l Limits) Validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxRequestBytes", int64(l.MaxRequestBytes)},
		{"MaxEventBytes", int64(l.MaxEventBytes)},
		{"MaxEventsPerRequest", int64(l.MaxEventsPerRequest)},
		{"MaxDepth", int64(l.MaxDepth)},
		{"MaxFuture", int64(l.MaxFuture)},
		{"MaxPast", int64(l.MaxPast)},
	} {
		if f.v <= 0 {
			return fmt.Errorf("events: limit %s is %d, it must be positive", f.name, f.v)
		}
	}
	return nil
}

// Rejection is one event refused, with its index in the request (0-based) and why.
type Rejection struct {
	Index  int    `json:"index"`
	Field  string `json:"field,omitempty"` // e.g. "event_type", "timestamp", "properties"
	Reason string `json:"reason"`          // readable, such as "event_type is required"
}

// Batch is a decoded request: the accepted events (in request order) with their request
// indexes, and the rejections.
type Batch struct {
	Events   []Event
	Indexes  []int
	Rejected []Rejection
}

// RequestError is a request refused as a whole (unreadable gzip, body too large, too many
// events, not JSON at all, unsupported content type), with the HTTP status it calls for
// (400, 413 or 415) and a readable message.
type RequestError struct {
	Status int
	Reason string
}

func (e *RequestError) Error() string { return e.Reason }

func refuse(status int, format string, args ...any) *RequestError {
	return &RequestError{Status: status, Reason: fmt.Sprintf(format, args...)}
}

// Statuses a RequestError calls for.
const (
	statusBadRequest           = 400
	statusTooLarge             = 413
	statusUnsupportedMediaType = 415
)

// bodyFormat is how the events of a body are laid out.
type bodyFormat int

const (
	formatSniff  bodyFormat = iota // no content type: JSON, or NDJSON when it has several objects
	formatJSON                     // one object, or an array of them
	formatNDJSON                   // one object per line
)

// Decode reads a request body: one JSON object, a JSON array of objects, or NDJSON (one
// object per line, blank lines ignored).
//
// contentType "application/json" is an object or an array, told apart by the first byte
// that is not whitespace; "application/x-ndjson" is NDJSON; an empty one is read as
// application/json, or as NDJSON when the body is not one JSON value but has several
// lines. A charset parameter other than UTF-8, and any other type, are refused with 415.
// contentEncoding "gzip" is decompressed (reading at most MaxRequestBytes+1 bytes of
// output, so a gzip bomb costs no more than an honest body); "" and "identity" are read as
// is; others are refused with 415.
//
// Each event is an object with these fields, null meaning the same as absent:
//
//   - event_type: required, a non-empty string of at most 128 bytes of printable characters
//   - timestamp: an RFC 3339 string or integer epoch milliseconds, within the limits (see
//     the package documentation); default now
//   - event_id: a non-empty string of at most 128 bytes, kept as given; default newID()
//   - properties: an object nested at most MaxDepth deep, stored compacted; default {}
//   - user_id, session_id: strings of at most 256 bytes
//
// An event that breaks a rule, has an unknown field (a typo is not dropped silently), a
// field twice, is not valid UTF-8, is not an object, or whose encoding as sent exceeds
// MaxEventBytes, is rejected with its index; in NDJSON so is a line that is not JSON. The
// others are accepted, with ReceivedAt = now. Times are UTC, truncated to milliseconds.
//
// The whole request is refused with a *RequestError when it cannot be read as a whole:
// 415 as above, 400 for broken gzip, an empty body or one that is not JSON (in NDJSON,
// only lines are judged), 413 for a body over MaxRequestBytes or more than
// MaxEventsPerRequest events. Other errors are invalid limits, or from reading body.
//
// newID is called for each event without an event_id; nil means NewID(now). The accepted
// events' Properties may share one buffer holding the decompressed body, and their
// event_id, user_id and session_id strings one allocation.
func Decode(body io.Reader, contentType, contentEncoding string, lim Limits, now time.Time, newID func() string) (Batch, error) {
	var dec Decoder
	return dec.Decode(body, contentType, contentEncoding, lim, now, newID)
}

// Bounds on what a Decoder keeps for the next body: a rare large request allocates its
// own, so a Decoder kept around does not pin its memory.
const (
	maxKeptBodyBytes = 1 << 20
	maxKeptEvents    = 4096
	maxKeptTypes     = 256
)

// Decoder decodes request bodies one after another, reusing its memory: the buffer a
// body is read into, and the batch's events. At ingest rates a fresh body's worth of
// memory for every request costs the garbage collector and the kernel (fresh pages) more
// than decoding does, so a server keeps a few Decoders (in a sync.Pool). What Decode
// returns, the batch and its events' Properties, is valid until the next Decode; the
// events' string fields stay valid. The zero Decoder is ready to use; it is not safe for
// concurrent use.
type Decoder struct {
	body    []byte
	events  []Event
	indexes []int
	spans   []eventSpans
	types   map[string]string // event types seen, to allocate each once
}

// Decode is the package's Decode, in memory kept from the Decoder's last Decode.
func (dec *Decoder) Decode(body io.Reader, contentType, contentEncoding string, lim Limits, now time.Time, newID func() string) (Batch, error) {
	if err := lim.Validate(); err != nil {
		return Batch{}, err
	}
	format, rerr := parseContentType(contentType)
	if rerr != nil {
		return Batch{}, rerr
	}
	data, err := readBody(dec.body, body, contentEncoding, lim.MaxRequestBytes)
	if err != nil {
		return Batch{}, err
	}
	if cap(data) > cap(dec.body) && cap(data) <= maxKeptBodyBytes {
		dec.body = data[:0]
	}
	now = now.UTC().Truncate(time.Millisecond)
	if newID == nil {
		newID = newIDSource(now).next
	}
	if len(dec.types) > maxKeptTypes {
		clear(dec.types)
	}
	d := decoder{
		lim:    lim,
		now:    now,
		oldest: now.Add(-lim.MaxPast),
		latest: now.Add(lim.MaxFuture),
		newID:  newID,
		kept:   dec,
	}
	err = d.body(data, format)
	d.save()
	if err != nil {
		return Batch{}, err
	}
	d.setStrings()
	return d.batch, nil
}

func parseContentType(contentType string) (bodyFormat, *RequestError) {
	switch contentType {
	case "":
		return formatSniff, nil
	case "application/json":
		return formatJSON, nil
	case "application/x-ndjson":
		return formatNDJSON, nil
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, refuse(statusUnsupportedMediaType, "content type %q is not valid: %v", contentType, err)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return 0, refuse(statusUnsupportedMediaType, "charset %q is not supported; send UTF-8", cs)
	}
	switch mediaType {
	case "application/json":
		return formatJSON, nil
	case "application/x-ndjson":
		return formatNDJSON, nil
	}
	return 0, refuse(statusUnsupportedMediaType, "content type %q is not supported; send application/json or application/x-ndjson", mediaType)
}

// readBody reads the body, decompressed, into one buffer of at most limit bytes: buf
// when it fits.
func readBody(buf []byte, body io.Reader, contentEncoding string, limit int) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(contentEncoding)) {
	case "", "identity":
		data, err := readAtMost(buf, body, limit)
		var re *RequestError
		if err != nil && !errors.As(err, &re) {
			return nil, fmt.Errorf("events: reading request body: %w", err)
		}
		return data, err
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, gzipError(err)
		}
		data, err := readAtMost(buf, zr, limit)
		if err != nil {
			return nil, gzipError(err)
		}
		return data, nil
	}
	return nil, refuse(statusUnsupportedMediaType, "content encoding %q is not supported; send gzip or identity", contentEncoding)
}

// maxChunk is the largest chunk readAtMost reads into.
const maxChunk = 64 << 10

// readAtMost reads r to its end; more than limit bytes is a 413. Like io.ReadAll it reads
// into chunks of growing size and copies them once into a buffer of the right size, but no
// chunk reaches past limit+1 bytes, and a body over the limit is never copied: a gzip bomb
// costs what an honest body of limit bytes costs.
//
// A reader with a Len method (the bytes still to come: bytes.Reader, or an HTTP body of
// known length) is read into a first chunk of that size plus one, up to maxChunk, so a
// body of up to that size takes one allocation and no copy. The length is only a hint:
// the limit is enforced on what is read, and a client announcing a large body is given
// no more memory before it sends it than one that does not. buf, when it holds at least
// the first chunk, is the first chunk, whatever its size.
func readAtMost(buf []byte, r io.Reader, limit int) ([]byte, error) {
	var chunks [][]byte
	total := 0 // bytes in chunks
	next := 4 << 10
	if sized, ok := r.(interface{ Len() int }); ok {
		if n := sized.Len(); n >= 0 {
			next = min(n+1, maxChunk)
		}
	}
	b := buf[:0:min(cap(buf), limit+1)]
	if cap(b) < min(next, limit+1) {
		b = make([]byte, 0, min(next, limit+1))
	}
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if total+len(b) > limit {
			return nil, refuse(statusTooLarge, "body is more than %d bytes", limit)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			chunks = append(chunks, b)
			total += len(b)
			next = min(2*next, maxChunk) // then the chunks outgrow the body by less than maxChunk
			b = make([]byte, 0, min(next, limit+1-total))
		}
	}
	if len(chunks) == 0 {
		return b, nil
	}
	return bytes.Join(append(chunks, b), nil), nil // Join does not zero what it fills
}

// gzipError classifies an error from decompressing: the client's broken gzip is a 400, a
// body too large stays a 413, and an error reading the body itself goes back as it is.
func gzipError(err error) error {
	var re *RequestError
	var corrupt flate.CorruptInputError
	switch {
	case errors.As(err, &re):
		return re
	case errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum), errors.As(err, &corrupt),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return refuse(statusBadRequest, "body is not valid gzip: %v", err)
	}
	return fmt.Errorf("events: reading request body: %w", err)
}

// decoder holds one request's state.
type decoder struct {
	lim            Limits
	now            time.Time // UTC, milliseconds
	oldest, latest time.Time // the range of accepted timestamps
	newID          func() string
	kept           *Decoder // whose memory the batch is built in
	// ascii says the body being decoded is all ASCII, so no string in it need be checked
	// for valid UTF-8: nearly every body, and the checks add up over the short strings.
	ascii bool
	batch Batch
	// strs holds the accepted events' event_id, user_id and session_id one after the
	// other, and spans where each event's are; setStrings turns them into substrings of one
	// string once every event is decoded.
	strs  strings.Builder
	spans []eventSpans // parallel to batch.Events
}

// eventSpans locate an event's strings in decoder.strs; empty spans leave a field as it is.
type eventSpans struct{ eventID, userID, sessionID span }

type span struct{ start, end int }

// keep appends v to d.strs and returns where it is.
func (d *decoder) keep(v []byte) span {
	start := d.strs.Len()
	d.strs.Write(v)
	return span{start, d.strs.Len()}
}

// setStrings sets the accepted events' kept strings as substrings of one string: a
// request of a thousand events would otherwise make three thousand small allocations.
func (d *decoder) setStrings() {
	all := d.strs.String()
	for i, sp := range d.spans {
		e := &d.batch.Events[i]
		if sp.eventID.end > sp.eventID.start {
			e.EventID = all[sp.eventID.start:sp.eventID.end]
		}
		if sp.userID.end > sp.userID.start {
			e.UserID = all[sp.userID.start:sp.userID.end]
		}
		if sp.sessionID.end > sp.sessionID.start {
			e.SessionID = all[sp.sessionID.start:sp.sessionID.end]
		}
	}
	d.spans = nil
}

// body decodes the events of data.
func (d *decoder) body(data []byte, format bodyFormat) error {
	data = trimBOM(data)
	lines := data // untrimmed, so that line numbers in reasons are right
	data = trimSpace(data)
	if len(data) == 0 {
		return refuse(statusBadRequest, "body is empty")
	}
	if format == formatNDJSON {
		return d.lines(lines)
	}
	if data[0] == '[' {
		return d.array(data)
	}
	ok, _ := valid(data)
	switch {
	case data[0] == '{' && ok:
		d.event(0, data, 0, false)
		return nil
	case data[0] == '{' && format == formatSniff && hasSeveralLines(data):
		return d.lines(lines)
	case !ok:
		return notJSON(data)
	}
	return refuse(statusBadRequest, "body must be a JSON object or an array of objects, not %s", kind(data))
}

// array decodes the elements of a JSON array, checking that it is valid JSON as it goes
// rather than in a pass of its own: a body is refused whole when it is not, so nothing
// decoded before the error is lost. Most bodies are arrays, and reading each byte once
// instead of twice is a good share of what decoding costs.
func (d *decoder) array(data []byte) error {
	d.ascii = isASCII(data)
	// The events of a body of this size, most likely, when the Decoder has not seen one
	// as large before; too few only costs growing the slices.
	d.reserve(min(len(data)/256+1, d.lim.MaxEventsPerRequest))
	i := skipSpace(data, 1)
	if i < len(data) && data[i] == ']' {
		return arrayEnd(data, i)
	}
	for index := 0; ; index++ {
		if index == d.lim.MaxEventsPerRequest {
			// One element more than allowed: too many, unless the body is not JSON at all.
			if ok, _ := valid(data); !ok {
				return notJSON(data)
			}
			return d.tooMany()
		}
		end, ok := d.event(index, data, i, true)
		if !ok {
			return notJSON(data)
		}
		i = skipSpace(data, end)
		switch {
		case i < len(data) && data[i] == ',':
			i = skipSpace(data, i+1)
		case i < len(data) && data[i] == ']':
			return arrayEnd(data, i)
		default:
			return notJSON(data)
		}
	}
}

// arrayEnd checks that nothing but whitespace follows the array's closing bracket at
// data[i].
func arrayEnd(data []byte, i int) error {
	if skipSpace(data, i+1) != len(data) {
		return notJSON(data)
	}
	return nil
}

func notJSON(data []byte) error {
	return refuse(statusBadRequest, "body is not valid JSON: %s", syntaxError(data))
}

// lines decodes NDJSON: each line not blank is an event.
func (d *decoder) lines(data []byte) error {
	d.reserve(min(bytes.Count(data, []byte{'\n'})+1, d.lim.MaxEventsPerRequest))
	index := 0
	for lineNo := 1; len(data) > 0; lineNo++ {
		line := data
		if nl := bytes.IndexByte(data, '\n'); nl >= 0 {
			line, data = data[:nl], data[nl+1:]
		} else {
			data = nil
		}
		line = trimSpace(line)
		if len(line) == 0 {
			continue
		}
		if index == d.lim.MaxEventsPerRequest {
			return d.tooMany()
		}
		switch {
		case len(line) > d.lim.MaxEventBytes:
			d.tooBig(index, line)
		case !isValid(line):
			d.reject(index, "", fmt.Sprintf("line %d is not valid JSON: %s", lineNo, syntaxError(line)))
		default:
			d.event(index, line, 0, false)
		}
		index++
	}
	return nil
}

// reserve sizes the batch for n events, to grow it once, in the Decoder's memory when
// it is large enough.
func (d *decoder) reserve(n int) {
	d.batch.Events = reuse(d.kept.events, n)
	d.batch.Indexes = reuse(d.kept.indexes, n)
	d.spans = reuse(d.kept.spans, n)
	// About an id of 36 bytes and short user and session ids per event; no more than a
	// chunk up front, since the strings can be no longer than the body they come from.
	d.strs.Grow(min(n*48, maxChunk))
}

// reuse is s emptied when it holds n, else a new slice for n.
func reuse[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:0]
	}
	return make([]T, 0, n)
}

// save leaves the memory the batch was built in to the Decoder for its next body, unless
// it is larger than a Decoder keeps.
func (d *decoder) save() {
	if n := cap(d.batch.Events); n > cap(d.kept.events) && n <= maxKeptEvents {
		d.kept.events = d.batch.Events[:0]
	}
	if n := cap(d.batch.Indexes); n > cap(d.kept.indexes) && n <= maxKeptEvents {
		d.kept.indexes = d.batch.Indexes[:0]
	}
	if n := cap(d.spans); n > cap(d.kept.spans) && n <= maxKeptEvents {
		d.kept.spans = d.spans[:0]
	}
}

func isValid(b []byte) bool {
	ok, _ := valid(b)
	return ok
}

func (d *decoder) tooMany() error {
	return refuse(statusTooLarge, "request has more than %d events", d.lim.MaxEventsPerRequest)
}

func (d *decoder) tooBig(index int, raw []byte) {
	d.reject(index, "", fmt.Sprintf("event is %d bytes, more than the limit of %d", len(raw), d.lim.MaxEventBytes))
}

func (d *decoder) reject(index int, field, reason string) {
	d.batch.Rejected = append(d.batch.Rejected, Rejection{Index: index, Field: field, Reason: reason})
}

// Field names, in the order their problems are reported.
const (
	fieldEventType  = "event_type"
	fieldEventID    = "event_id"
	fieldTimestamp  = "timestamp"
	fieldUserID     = "user_id"
	fieldSessionID  = "session_id"
	fieldProperties = "properties"
)

// rawEvent is an event's fields as sent, nil when absent.
type rawEvent struct {
	eventType, eventID, timestamp, userID, sessionID, properties []byte
	propsDepth                                                   int
	propsSpaced                                                  bool
}

// event decodes the element that starts at data[start], and returns where it ends.
// The JSON is validated already, or, with check, validated here: ok is false when the
// element is not valid JSON, and then nothing was decoded.
func (d *decoder) event(index int, data []byte, start int, check bool) (end int, ok bool) {
	if start >= len(data) {
		return start, false
	}
	if data[start] != '{' {
		if check {
			v := scanValue(data, start)
			if !v.ok {
				return start, false
			}
			end = v.end
		} else {
			end, _, _ = valueEnd(data, start)
		}
		if raw := data[start:end]; len(raw) > d.lim.MaxEventBytes {
			d.tooBig(index, raw)
		} else {
			d.reject(index, "", "event must be a JSON object, not "+kind(raw))
		}
		return end, true
	}
	var r rawEvent
	var unknown []string
	duplicate := ""
	var m member
	it := newObjectIter(data, start)
	if check {
		it = newCheckingObjectIter(data, start)
	}
	for it.next(&m) {
		var slot *[]byte
		key := m.key
		if m.keyEscaped {
			key = []byte(unescape(key))
		}
		switch string(key) {
		case fieldEventType:
			slot = &r.eventType
		case fieldEventID:
			slot = &r.eventID
		case fieldTimestamp:
			slot = &r.timestamp
		case fieldUserID:
			slot = &r.userID
		case fieldSessionID:
			slot = &r.sessionID
		case fieldProperties:
			slot = &r.properties
			r.propsDepth, r.propsSpaced = m.depth, m.spaced
		default:
			unknown = append(unknown, clipName(key))
			continue
		}
		if *slot != nil && duplicate == "" {
			duplicate = string(key)
		}
		*slot = m.value
	}
	if it.invalid {
		return start, false
	}
	end = it.i
	if raw := data[start:end]; len(raw) > d.lim.MaxEventBytes {
		d.tooBig(index, raw)
		return end, true
	}
	switch {
	case len(unknown) == 1:
		d.reject(index, unknown[0], fmt.Sprintf("unknown field %q (an event has %s)", unknown[0], knownFields))
		return end, true
	case len(unknown) > 1:
		d.reject(index, unknown[0], fmt.Sprintf("unknown fields %s (an event has %s)", quoteAll(unknown), knownFields))
		return end, true
	case duplicate != "":
		d.reject(index, duplicate, fmt.Sprintf("field %q appears more than once", duplicate))
		return end, true
	}

	e := Event{ReceivedAt: d.now}
	var reason string
	var eventID, userID, sessionID []byte
	if e.EventType, reason = d.eventType(r.eventType); reason != "" {
		d.reject(index, fieldEventType, reason)
		return end, true
	}
	if eventID, reason = d.optionalString(fieldEventID, r.eventID, maxEventIDBytes); reason != "" {
		d.reject(index, fieldEventID, reason)
		return end, true
	}
	if r.eventID != nil && !isNull(r.eventID) && len(eventID) == 0 {
		d.reject(index, fieldEventID, "event_id is empty; leave it out to have one assigned")
		return end, true
	}
	if e.Timestamp, reason = d.timestamp(r.timestamp); reason != "" {
		d.reject(index, fieldTimestamp, reason)
		return end, true
	}
	if userID, reason = d.optionalString(fieldUserID, r.userID, maxUserIDBytes); reason != "" {
		d.reject(index, fieldUserID, reason)
		return end, true
	}
	if sessionID, reason = d.optionalString(fieldSessionID, r.sessionID, maxUserIDBytes); reason != "" {
		d.reject(index, fieldSessionID, reason)
		return end, true
	}
	if e.Properties, reason = d.properties(&r); reason != "" {
		d.reject(index, fieldProperties, reason)
		return end, true
	}
	if len(eventID) == 0 {
		e.EventID = d.newID()
		e.IDAssigned = true
	}
	d.spans = append(d.spans, eventSpans{eventID: d.keep(eventID), userID: d.keep(userID), sessionID: d.keep(sessionID)})
	d.batch.Events = append(d.batch.Events, e)
	d.batch.Indexes = append(d.batch.Indexes, index)
	return end, true
}

const knownFields = "event_type, event_id, timestamp, user_id, session_id and properties"

// clipName makes a field name sent by the client fit for a rejection: valid UTF-8, and
// not the whole of a name of kilobytes.
func clipName(name []byte) string {
	return strings.ToValidUTF8(string(clip(name)), "\uFFFD")
}

// quoteAll quotes the first few names, and counts the others.
func quoteAll(names []string) string {
	const most = 5
	var b strings.Builder
	for i, n := range names[:min(len(names), most)] {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", n)
	}
	if len(names) > most {
		fmt.Fprintf(&b, " and %d more", len(names)-most)
	}
	return b.String()
}

// eventType checks the required event_type; the string is allocated once per request.
func (d *decoder) eventType(v []byte) (string, string) {
	if isNull(v) {
		return "", "event_type is required"
	}
	if v[0] != '"' {
		return "", "event_type must be a string, not " + kind(v)
	}
	s, ok := unquoteIn(v, d.ascii)
	switch {
	case !ok:
		return "", "event_type is not valid UTF-8"
	case len(s) == 0:
		return "", "event_type is empty"
	case len(s) > maxEventTypeBytes:
		return "", fmt.Sprintf("event_type is %d bytes, more than the limit of %d", len(s), maxEventTypeBytes)
	}
	for i := 0; i < len(s); {
		if c := s[i]; c >= 0x20 && c < 0x7f { // printable ASCII, nearly every type
			i++
			continue
		}
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(s[i:])
		}
		if !unicode.IsPrint(r) {
			return "", fmt.Sprintf("event_type has a character that is not printable (%U at byte %d)", r, i)
		}
		i += size
	}
	if t, ok := d.kept.types[string(s)]; ok {
		return t, ""
	}
	t := string(s)
	if d.kept.types == nil {
		d.kept.types = make(map[string]string)
	}
	d.kept.types[t] = t
	return t, ""
}

// optionalString checks an optional string field of at most limit bytes and returns its
// contents, escapes undone (aliasing v when it has none).
func (d *decoder) optionalString(name string, v []byte, limit int) ([]byte, string) {
	if isNull(v) {
		return nil, ""
	}
	if v[0] != '"' {
		return nil, name + " must be a string, not " + kind(v)
	}
	s, ok := unquoteIn(v, d.ascii)
	switch {
	case !ok:
		return nil, name + " is not valid UTF-8"
	case len(s) > limit:
		return nil, fmt.Sprintf("%s is %d bytes, more than the limit of %d", name, len(s), limit)
	}
	return s, ""
}

// timestamp checks the optional timestamp; see the package documentation.
func (d *decoder) timestamp(v []byte) (time.Time, string) {
	if isNull(v) {
		return d.now, ""
	}
	const want = "an RFC 3339 string (like 2024-05-01T12:00:00.000Z) or integer epoch milliseconds"
	var t time.Time
	unit := ""
	switch v[0] {
	case '"':
		s, ok := unquoteIn(v, d.ascii)
		if !ok {
			return t, "timestamp is not valid UTF-8"
		}
		var parsed bool
		if t, parsed = parseUTC(s); !parsed {
			if err := t.UnmarshalText(s); err != nil {
				return t, fmt.Sprintf("timestamp %q is not %s", clip(s), want)
			}
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		unit = " (it is read as epoch milliseconds)"
		ms, integer, inRange := parseInt(v)
		switch {
		case !integer:
			return t, fmt.Sprintf("timestamp %s is not %s", clip(v), want)
		case !inRange && v[0] == '-':
			return t, fmt.Sprintf("timestamp %s is more than %s in the past%s", clip(v), d.lim.MaxPast, unit)
		case !inRange:
			return t, fmt.Sprintf("timestamp %s is more than %s in the future%s", clip(v), d.lim.MaxFuture, unit)
		}
		t = time.UnixMilli(ms)
	default:
		return t, "timestamp must be " + want + ", not " + kind(v)
	}
	t = t.UTC().Truncate(time.Millisecond)
	switch {
	case t.Before(d.oldest):
		return time.Time{}, fmt.Sprintf("timestamp %s is more than %s in the past%s", formatTime(t), d.lim.MaxPast, unit)
	case t.After(d.latest):
		return time.Time{}, fmt.Sprintf("timestamp %s is more than %s in the future%s", formatTime(t), d.lim.MaxFuture, unit)
	}
	return t, ""
}

// parseInt parses a JSON number that is an integer: no fraction or exponent. Beyond 18
// digits it is out of range: those cannot overflow an int64, and a time needs 15 at most.
func parseInt(v []byte) (n int64, integer, inRange bool) {
	neg := len(v) > 0 && v[0] == '-'
	if neg {
		v = v[1:]
	}
	if len(v) == 0 {
		return 0, false, false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false, false
		}
		if len(v) <= 18 {
			n = n*10 + int64(c-'0')
		}
	}
	if len(v) > 18 {
		return 0, true, false
	}
	if neg {
		n = -n
	}
	return n, true, true
}

// properties checks the optional properties and returns them compacted, {} when absent.
func (d *decoder) properties(r *rawEvent) (json.RawMessage, string) {
	v := r.properties
	if isNull(v) {
		return json.RawMessage("{}"), ""
	}
	if v[0] != '{' {
		return nil, "properties must be a JSON object, not " + kind(v)
	}
	if r.propsDepth > d.lim.MaxDepth {
		return nil, fmt.Sprintf("properties are nested %d deep, more than the limit of %d", r.propsDepth, d.lim.MaxDepth)
	}
	if !d.ascii && !utf8.Valid(v) {
		return nil, "properties are not valid UTF-8"
	}
	if r.propsSpaced {
		v = compact(v)
	}
	return v, ""
}

// formatTime writes t as RFC 3339 in UTC with the fraction only when there is one.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// syntaxError explains why data is not JSON, for a message.
func syntaxError(data []byte) string {
	var v json.RawMessage
	err := json.Unmarshal(data, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (at byte %d)", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	}
	if err != nil {
		return err.Error()
	}
	return "invalid JSON"
}

// trimBOM drops a leading UTF-8 byte order mark, which some clients write.
func trimBOM(b []byte) []byte {
	if len(b) >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf {
		return b[3:]
	}
	return b
}

// hasSeveralLines reports whether trimmed data has more than one line.
func hasSeveralLines(data []byte) bool {
	return bytes.IndexByte(data, '\n') >= 0
}

// clip shortens a value sent by the client for quoting in a reason.
func clip(b []byte) []byte {
	const most = 64
	if len(b) <= most {
		return b
	}
	return append(b[:most:most], "..."...)
}
