package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Marshal encodes an event as its Kafka record value (WireFormat): a JSON object with the
// fields of Event, times as RFC 3339 in UTC with milliseconds, properties as they are ({}
// when empty). It refuses an event Unmarshal would refuse.
func Marshal(e Event) ([]byte, error) {
	return AppendMarshal(make([]byte, 0, MarshalSizeHint(e)), e)
}

// marshalFixed is what an encoding holds besides the strings and properties: names,
// punctuation and times, with room for a few escapes.
const marshalFixed = 160

// MarshalSizeHint is about the size of e's encoding: exact unless its strings need escapes.
func MarshalSizeHint(e Event) int {
	return marshalFixed + len(e.EventID) + len(e.EventType) + len(e.UserID) + len(e.SessionID) + max(len(e.Properties), 2)
}

// AppendMarshal appends Marshal's encoding of e to b, so the values of many events can
// share one buffer. On error b is returned as it was.
func AppendMarshal(b []byte, e Event) ([]byte, error) {
	switch {
	case e.EventID == "":
		return b, errors.New("events: marshal: event_id is empty")
	case e.EventType == "":
		return b, errors.New("events: marshal: event_type is empty")
	}
	props := []byte(e.Properties)
	if len(props) == 0 {
		props = []byte("{}")
	}
	if props[0] != '{' || !isValid(props) {
		return b, errors.New("events: marshal: properties are not a JSON object")
	}
	for _, t := range []time.Time{e.Timestamp, e.ReceivedAt} {
		if y := t.UTC().Year(); y < 0 || y > 9999 {
			return b, fmt.Errorf("events: marshal: year %d is outside RFC 3339", y)
		}
	}

	return appendEvent(b, e, props), nil
}

// AppendDecoded is AppendMarshal for an event as Decode returned it, unchanged: it skips
// the checks Decode already made of every event it accepted (ids and type present,
// properties a valid JSON object, times within RFC 3339's years), which for properties
// means reading them again. An event from anywhere else goes through AppendMarshal.
func AppendDecoded(b []byte, e Event) []byte {
	props := []byte(e.Properties)
	if len(props) == 0 {
		props = []byte("{}")
	}
	return appendEvent(b, e, props)
}

// appendEvent writes the encoding of a checked event.
func appendEvent(b []byte, e Event, props []byte) []byte {
	b = append(b, `{"event_id":`...)
	b = appendString(b, e.EventID)
	b = append(b, `,"event_type":`...)
	b = appendString(b, e.EventType)
	b = append(b, `,"timestamp":`...)
	start := len(b)
	b = appendTime(b, e.Timestamp)
	b = append(b, `,"received_at":`...)
	if sameDay(e.Timestamp, e.ReceivedAt) {
		// Nearly always: the date is written already, and working it out is most of
		// what writing a time costs.
		b = append(b, b[start:start+11]...) // `"2006-01-02`
		b = appendClock(b, e.ReceivedAt)
	} else {
		b = appendTime(b, e.ReceivedAt)
	}
	if e.UserID != "" {
		b = append(b, `,"user_id":`...)
		b = appendString(b, e.UserID)
	}
	if e.SessionID != "" {
		b = append(b, `,"session_id":`...)
		b = appendString(b, e.SessionID)
	}
	b = append(b, `,"properties":`...)
	b = append(b, props...)
	return append(b, '}')
}

// AppendString appends s as a JSON string, escaping as encoding/json does except that
// <, > and & are left alone; invalid UTF-8 becomes U+FFFD.
func AppendString(b []byte, s string) []byte { return appendString(b, s) }

// appendTime appends t as a JSON string in RFC 3339, in UTC with exactly three fraction
// digits ("2024-05-01T12:00:00.000Z"), so that the text sorts as the time does. It is
// time.Format's "2006-01-02T15:04:05.000Z07:00" written out: a few times faster.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	b = append(b, '"', byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-')
	b = append(appendTwo(b, int(month)), '-')
	b = appendTwo(b, day)
	return appendClock(b, t)
}

// appendClock appends what follows the date in appendTime: "T15:04:05.000Z" and the
// closing quote.
func appendClock(b []byte, t time.Time) []byte {
	hour, minute, sec := t.UTC().Clock()
	ms := t.Nanosecond() / 1e6
	b = append(appendTwo(append(b, 'T'), hour), ':')
	b = append(appendTwo(b, minute), ':')
	b = append(appendTwo(b, sec), '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	return append(b, 'Z', '"')
}

func appendTwo(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }

// sameDay reports whether a and b fall on the same UTC date.
func sameDay(a, b time.Time) bool {
	const day = 24 * 60 * 60
	da, db := a.Unix(), b.Unix()
	return da-da%day == db-db%day && da >= 0 && db >= 0
}

// appendString appends s as a JSON string, escaping as encoding/json does except that
// <, > and & are left alone: the value is not HTML.
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	i := plainASCIIEnd(s)
	if i == len(s) { // nothing to escape, as for nearly every id
		b = append(b, s...)
		return append(b, '"')
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Unmarshal decodes a Kafka record value written by Marshal. It refuses values that are
// not a valid Event: not a JSON object, event_id, event_type, timestamp or received_at
// missing or of the wrong type, properties not an object. Fields it does not know are
// ignored, so a later writer may add some. Properties are copied, not shared with data.
func Unmarshal(data []byte) (Event, error) {
	var e Event
	if !isValid(data) {
		return e, errors.New("events: unmarshal: value is not JSON")
	}
	data = trimSpace(data)
	if data[0] != '{' {
		return e, fmt.Errorf("events: unmarshal: value is %s, not an object", kind(data))
	}
	var haveTimestamp, haveReceivedAt bool
	var m member
	for it := newObjectIter(data, 0); it.next(&m); {
		var err error
		switch m.keyString() {
		case fieldEventID:
			e.EventID, err = wireString(m.value)
		case fieldEventType:
			e.EventType, err = wireString(m.value)
		case fieldUserID:
			e.UserID, err = wireString(m.value)
		case fieldSessionID:
			e.SessionID, err = wireString(m.value)
		case fieldTimestamp:
			e.Timestamp, err = wireTimeValue(m.value)
			haveTimestamp = true
		case "received_at":
			e.ReceivedAt, err = wireTimeValue(m.value)
			haveReceivedAt = true
		case fieldProperties:
			switch {
			case isNull(m.value):
				e.Properties = nil
			case m.value[0] != '{':
				err = fmt.Errorf("is %s, not an object", kind(m.value))
			default:
				e.Properties = append(json.RawMessage(nil), m.value...)
			}
		}
		if err != nil {
			return Event{}, fmt.Errorf("events: unmarshal: %s: %w", m.keyString(), err)
		}
	}
	switch {
	case e.EventID == "":
		return Event{}, errors.New("events: unmarshal: event_id is missing")
	case e.EventType == "":
		return Event{}, errors.New("events: unmarshal: event_type is missing")
	case !haveTimestamp:
		return Event{}, errors.New("events: unmarshal: timestamp is missing")
	case !haveReceivedAt:
		return Event{}, errors.New("events: unmarshal: received_at is missing")
	}
	if e.Properties == nil {
		e.Properties = json.RawMessage("{}")
	}
	return e, nil
}

func wireString(v []byte) (string, error) {
	if isNull(v) {
		return "", nil
	}
	if v[0] != '"' {
		return "", fmt.Errorf("is %s, not a string", kind(v))
	}
	s, ok := unquote(v)
	if !ok {
		return "", errors.New("is not valid UTF-8")
	}
	return string(s), nil
}

func wireTimeValue(v []byte) (time.Time, error) {
	var t time.Time
	if len(v) == 0 || v[0] != '"' {
		return t, fmt.Errorf("is %s, not a string", kind(v))
	}
	s, ok := unquote(v)
	if !ok {
		return t, errors.New("is not valid UTF-8")
	}
	if err := t.UnmarshalText(s); err != nil {
		return t, fmt.Errorf("is not an RFC 3339 time: %w", err)
	}
	return t.UTC(), nil
}
