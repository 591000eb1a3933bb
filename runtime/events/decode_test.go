package events

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// testNow is when test requests arrive.
var testNow = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

// seqIDs returns a newID that counts: id-1, id-2, ...
func seqIDs() func() string {
	n := 0
	return func() string {
		n++
		return fmt.Sprintf("id-%d", n)
	}
}

func decodeString(t *testing.T, body, contentType string) Batch {
	t.Helper()
	b, err := Decode(strings.NewReader(body), contentType, "", DefaultLimits(), testNow, seqIDs())
	if err != nil {
		t.Fatalf("Decode(%q): %v", body, err)
	}
	return b
}

func gzipped(t testing.TB, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDecodeRejects checks each rule's rejection: one event, sent alone as an object and
// as the second element of an array after a good one, is refused with this field and reason.
func TestDecodeRejects(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	nested := func(depth int) string {
		return strings.Repeat(`{"a":`, depth-1) + `{}` + strings.Repeat(`}`, depth-1)
	}
	for _, tc := range []struct {
		name, event, field, reason string
	}{
		{"no event_type", `{}`, "event_type", "event_type is required"},
		{"null event_type", `{"event_type":null}`, "event_type", "event_type is required"},
		{"number event_type", `{"event_type":5}`, "event_type", "event_type must be a string, not a number"},
		{"object event_type", `{"event_type":{}}`, "event_type", "event_type must be a string, not an object"},
		{"empty event_type", `{"event_type":""}`, "event_type", "event_type is empty"},
		{"long event_type", `{"event_type":"` + long(129) + `"}`, "event_type", "event_type is 129 bytes, more than the limit of 128"},
		{"tab in event_type", `{"event_type":"page\tview"}`, "event_type", "event_type has a character that is not printable (U+0009 at byte 4)"},
		{"newline in event_type", `{"event_type":"\n"}`, "event_type", "event_type has a character that is not printable (U+000A at byte 0)"},
		{"bad UTF-8 in event_type", "{\"event_type\":\"a\xffb\"}", "event_type", "event_type is not valid UTF-8"},

		{"number event_id", `{"event_type":"a","event_id":12}`, "event_id", "event_id must be a string, not a number"},
		{"empty event_id", `{"event_type":"a","event_id":""}`, "event_id", "event_id is empty; leave it out to have one assigned"},
		{"long event_id", `{"event_type":"a","event_id":"` + long(129) + `"}`, "event_id", "event_id is 129 bytes, more than the limit of 128"},

		{"timestamp not RFC 3339", `{"event_type":"a","timestamp":"yesterday"}`, "timestamp",
			`timestamp "yesterday" is not an RFC 3339 string (like 2024-05-01T12:00:00.000Z) or integer epoch milliseconds`},
		{"timestamp without zone", `{"event_type":"a","timestamp":"2024-06-01T11:00:00"}`, "timestamp",
			`timestamp "2024-06-01T11:00:00" is not an RFC 3339 string (like 2024-05-01T12:00:00.000Z) or integer epoch milliseconds`},
		{"timestamp boolean", `{"event_type":"a","timestamp":true}`, "timestamp",
			"timestamp must be an RFC 3339 string (like 2024-05-01T12:00:00.000Z) or integer epoch milliseconds, not a boolean"},
		{"timestamp fraction", `{"event_type":"a","timestamp":1717243200000.5}`, "timestamp",
			"timestamp 1717243200000.5 is not an RFC 3339 string (like 2024-05-01T12:00:00.000Z) or integer epoch milliseconds"},
		{"timestamp exponent", `{"event_type":"a","timestamp":1.7e12}`, "timestamp",
			"timestamp 1.7e12 is not an RFC 3339 string (like 2024-05-01T12:00:00.000Z) or integer epoch milliseconds"},
		{"timestamp far future", `{"event_type":"a","timestamp":"2031-01-01T00:00:00Z"}`, "timestamp",
			"timestamp 2031-01-01T00:00:00Z is more than 24h0m0s in the future"},
		{"timestamp just past the future limit", `{"event_type":"a","timestamp":"2024-06-02T12:00:00.001Z"}`, "timestamp",
			"timestamp 2024-06-02T12:00:00.001Z is more than 24h0m0s in the future"},
		{"timestamp far past", `{"event_type":"a","timestamp":"2020-01-01T00:00:00+02:00"}`, "timestamp",
			"timestamp 2019-12-31T22:00:00Z is more than 720h0m0s in the past"},
		{"timestamp just before the past limit", `{"event_type":"a","timestamp":"2024-05-02T11:59:59.999Z"}`, "timestamp",
			"timestamp 2024-05-02T11:59:59.999Z is more than 720h0m0s in the past"},
		{"epoch seconds", `{"event_type":"a","timestamp":1717243200}`, "timestamp",
			"timestamp 1970-01-20T21:00:43.2Z is more than 720h0m0s in the past (it is read as epoch milliseconds)"},
		{"epoch microseconds", `{"event_type":"a","timestamp":1717243200000000}`, "timestamp",
			"timestamp 56387-04-10T00:00:00Z is more than 24h0m0s in the future (it is read as epoch milliseconds)"},
		{"epoch huge", `{"event_type":"a","timestamp":123456789012345678901234567890}`, "timestamp",
			"timestamp 123456789012345678901234567890 is more than 24h0m0s in the future (it is read as epoch milliseconds)"},
		{"epoch huge negative", `{"event_type":"a","timestamp":-123456789012345678901234567890}`, "timestamp",
			"timestamp -123456789012345678901234567890 is more than 720h0m0s in the past (it is read as epoch milliseconds)"},

		{"number user_id", `{"event_type":"a","user_id":42}`, "user_id", "user_id must be a string, not a number"},
		{"long user_id", `{"event_type":"a","user_id":"` + long(257) + `"}`, "user_id", "user_id is 257 bytes, more than the limit of 256"},
		{"bad UTF-8 in user_id", "{\"event_type\":\"a\",\"user_id\":\"\xe2\x82\"}", "user_id", "user_id is not valid UTF-8"},
		{"array session_id", `{"event_type":"a","session_id":[]}`, "session_id", "session_id must be a string, not an array"},
		{"long session_id", `{"event_type":"a","session_id":"` + long(257) + `"}`, "session_id", "session_id is 257 bytes, more than the limit of 256"},

		{"properties array", `{"event_type":"a","properties":[1]}`, "properties", "properties must be a JSON object, not an array"},
		{"properties string", `{"event_type":"a","properties":"{}"}`, "properties", "properties must be a JSON object, not a string"},
		{"properties too deep", `{"event_type":"a","properties":` + nested(9) + `}`, "properties", "properties are nested 9 deep, more than the limit of 8"},
		{"properties too deep in arrays", `{"event_type":"a","properties":{"a":[[[[[[[[1]]]]]]]]}}`, "properties", "properties are nested 9 deep, more than the limit of 8"},
		{"properties bad UTF-8", "{\"event_type\":\"a\",\"properties\":{\"k\":\"\xc3\"}}", "properties", "properties are not valid UTF-8"},

		{"unknown field", `{"event_type":"a","evnt_id":"x"}`, "evnt_id",
			`unknown field "evnt_id" (an event has event_type, event_id, timestamp, user_id, session_id and properties)`},
		{"unknown fields", `{"event_type":"a","ts":1,"props":{}}`, "ts",
			`unknown fields "ts", "props" (an event has event_type, event_id, timestamp, user_id, session_id and properties)`},
		{"many unknown fields", `{"event_type":"a","a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7}`, "a",
			`unknown fields "a", "b", "c", "d", "e" and 2 more (an event has event_type, event_id, timestamp, user_id, session_id and properties)`},
		{"unknown field, long and not UTF-8", `{"event_type":"a","` + long(60) + "\xff" + long(10) + `":1}`, long(60) + "\uFFFD" + "xxx...",
			`unknown field "` + long(60) + "\uFFFD" + `xxx..." (an event has event_type, event_id, timestamp, user_id, session_id and properties)`},
		{"field names are case-sensitive", `{"Event_Type":"a"}`, "Event_Type",
			`unknown field "Event_Type" (an event has event_type, event_id, timestamp, user_id, session_id and properties)`},
		{"unknown field before a bad one", `{"event_type":5,"x":1}`, "x",
			`unknown field "x" (an event has event_type, event_id, timestamp, user_id, session_id and properties)`},
		{"field twice", `{"event_type":"a","event_type":"b"}`, "event_type", `field "event_type" appears more than once`},
		{"field twice, once escaped", `{"event_type":"a","event\u005ftype":"b"}`, "event_type", `field "event_type" appears more than once`},

		{"number", `5`, "", "event must be a JSON object, not a number"},
		{"string", `"e"`, "", "event must be a JSON object, not a string"},
		{"null", `null`, "", "event must be a JSON object, not null"},
		{"array", `[{"event_type":"a"}]`, "", "event must be a JSON object, not an array"},
		{"too big", `{"event_type":"a","properties":{"p":"` + long(32<<10) + `"}}`, "", "event is 32808 bytes, more than the limit of 32768"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := []Rejection{{Index: 1, Field: tc.field, Reason: tc.reason}}
			b := decodeString(t, `[{"event_type":"ok"}, `+tc.event+`]`, "application/json")
			if !reflect.DeepEqual(b.Rejected, want) {
				t.Errorf("in an array: rejected %+v\nwant %+v", b.Rejected, want)
			}
			if len(b.Events) != 1 || b.Indexes[0] != 0 || b.Events[0].EventType != "ok" {
				t.Errorf("in an array: accepted %+v at %v, want the first event", b.Events, b.Indexes)
			}
			if tc.event[0] != '{' {
				return // alone it is a body that is not an object: see TestDecodeRequestErrors
			}
			want[0].Index = 0
			b = decodeString(t, tc.event, "application/json")
			if !reflect.DeepEqual(b.Rejected, want) || len(b.Events) != 0 {
				t.Errorf("alone: accepted %+v, rejected %+v\nwant %+v", b.Events, b.Rejected, want)
			}
		})
	}
}

// TestDecodeAccepts checks what an accepted event holds.
func TestDecodeAccepts(t *testing.T) {
	ms := func(s string) time.Time {
		t.Helper()
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UTC()
	}
	base := Event{EventID: "id-1", EventType: "a", Timestamp: testNow, ReceivedAt: testNow, Properties: json.RawMessage(`{}`), IDAssigned: true}
	with := func(f func(*Event)) Event {
		e := base
		f(&e)
		return e
	}
	for _, tc := range []struct {
		name, event string
		want        Event
	}{
		{"defaults", `{"event_type":"a"}`, base},
		{"nulls are absent", `{"event_type":"a","event_id":null,"timestamp":null,"user_id":null,"session_id":null,"properties":null}`, base},
		{"event_id kept", `{"event_type":"a","event_id":"client-42"}`, with(func(e *Event) { e.EventID, e.IDAssigned = "client-42", false })},
		{"event_id of 128 bytes", `{"event_type":"a","event_id":"` + strings.Repeat("i", 128) + `"}`,
			with(func(e *Event) { e.EventID, e.IDAssigned = strings.Repeat("i", 128), false })},
		{"event_type of 128 bytes", `{"event_type":"` + strings.Repeat("t", 128) + `"}`,
			with(func(e *Event) { e.EventType = strings.Repeat("t", 128) })},
		{"event_type with spaces and non-ASCII", `{"event_type":"Achat réussi 购买"}`, with(func(e *Event) { e.EventType = "Achat réussi 购买" })},
		{"escapes undone", `{"event\u005ftype":"page\u005fview\/x"}`, with(func(e *Event) { e.EventType = "page_view/x" })},
		{"timestamp in UTC", `{"event_type":"a","timestamp":"2024-06-01T13:30:00+02:00"}`,
			with(func(e *Event) { e.Timestamp = ms("2024-06-01T11:30:00Z") })},
		{"timestamp truncated to milliseconds", `{"event_type":"a","timestamp":"2024-06-01T11:30:00.123999999Z"}`,
			with(func(e *Event) { e.Timestamp = ms("2024-06-01T11:30:00.123Z") })},
		{"epoch milliseconds", `{"event_type":"a","timestamp":1717239600123}`,
			with(func(e *Event) { e.Timestamp = ms("2024-06-01T11:00:00.123Z") })},
		{"timestamp at the future limit", `{"event_type":"a","timestamp":"2024-06-02T12:00:00Z"}`,
			with(func(e *Event) { e.Timestamp = ms("2024-06-02T12:00:00Z") })},
		{"timestamp at the past limit", `{"event_type":"a","timestamp":"2024-05-02T12:00:00Z"}`,
			with(func(e *Event) { e.Timestamp = ms("2024-05-02T12:00:00Z") })},
		{"user and session", `{"event_type":"a","user_id":"u<1>","session_id":"` + strings.Repeat("s", 256) + `"}`,
			with(func(e *Event) { e.UserID, e.SessionID = "u<1>", strings.Repeat("s", 256) })},
		{"properties compacted", "{\"event_type\":\"a\",\"properties\": { \"a b\" : [ 1 ,\n\t{\"c\": \"d e\"} ] } }",
			with(func(e *Event) { e.Properties = json.RawMessage(`{"a b":[1,{"c":"d e"}]}`) })},
		{"properties kept as sent", `{"properties":{"html":"<b>&amp;</b>","n":1.50e3,"u":"\u00e9"},"event_type":"a"}`,
			with(func(e *Event) { e.Properties = json.RawMessage(`{"html":"<b>&amp;</b>","n":1.50e3,"u":"\u00e9"}`) })},
		{"properties 8 deep", `{"event_type":"a","properties":{"a":{"b":[[{"c":[[{"d":1}]]}]]}}}`,
			with(func(e *Event) { e.Properties = json.RawMessage(`{"a":{"b":[[{"c":[[{"d":1}]]}]]}}`) })},
		{"empty properties", `{"event_type":"a","properties":{}}`, base},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := decodeString(t, tc.event, "")
			if len(b.Rejected) != 0 || len(b.Events) != 1 {
				t.Fatalf("accepted %+v, rejected %+v", b.Events, b.Rejected)
			}
			if got := b.Events[0]; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v (properties %s)\nwant %+v (properties %s)", got, got.Properties, tc.want, tc.want.Properties)
			}
			if !reflect.DeepEqual(b.Indexes, []int{0}) {
				t.Errorf("indexes %v, want [0]", b.Indexes)
			}
		})
	}
}

// TestDecodeRequestErrors checks requests refused as a whole.
func TestDecodeRequestErrors(t *testing.T) {
	small := DefaultLimits()
	small.MaxRequestBytes = 100
	small.MaxEventsPerRequest = 2
	notJSON := "body is not valid JSON: "
	for _, tc := range []struct {
		name                  string
		body                  []byte
		contentType, encoding string
		lim                   Limits
		status                int
		reason                string
	}{
		{"text/plain", []byte(`{}`), "text/plain", "", DefaultLimits(), 415,
			`content type "text/plain" is not supported; send application/json or application/x-ndjson`},
		{"json-seq", []byte(`{}`), "application/json-seq", "", DefaultLimits(), 415,
			`content type "application/json-seq" is not supported; send application/json or application/x-ndjson`},
		{"form", []byte(`{}`), "application/x-www-form-urlencoded", "", DefaultLimits(), 415,
			`content type "application/x-www-form-urlencoded" is not supported; send application/json or application/x-ndjson`},
		{"bad charset", []byte(`{}`), "application/json; charset=latin1", "", DefaultLimits(), 415,
			`charset "latin1" is not supported; send UTF-8`},
		{"malformed content type", []byte(`{}`), "application/json; charset", "", DefaultLimits(), 415,
			`content type "application/json; charset" is not valid: mime: invalid media parameter`},
		{"brotli", []byte(`{}`), "", "br", DefaultLimits(), 415, `content encoding "br" is not supported; send gzip or identity`},
		{"gzip twice", []byte(`{}`), "", "gzip, gzip", DefaultLimits(), 415, `content encoding "gzip, gzip" is not supported; send gzip or identity`},
		{"not gzip", []byte(`{"event_type":"a"}`), "", "gzip", DefaultLimits(), 400, "body is not valid gzip: gzip: invalid header"},
		{"empty gzip", nil, "", "gzip", DefaultLimits(), 400, "body is not valid gzip: EOF"},
		{"truncated gzip", gzipped(t, `{"event_type":"a"}`)[:20], "", "gzip", DefaultLimits(), 400, "body is not valid gzip: unexpected EOF"},
		{"gzip checksum", func() []byte {
			b := gzipped(t, `{"event_type":"a"}`)
			b[len(b)-5]++ // the CRC-32
			return b
		}(), "", "gzip", DefaultLimits(), 400, "body is not valid gzip: gzip: invalid checksum"},
		{"empty", nil, "application/json", "", DefaultLimits(), 400, "body is empty"},
		{"blank", []byte(" \r\n\t\n"), "application/x-ndjson", "", DefaultLimits(), 400, "body is empty"},
		{"empty gzipped", gzipped(t, ""), "", "gzip", DefaultLimits(), 400, "body is empty"},
		{"not JSON", []byte("hello"), "application/json", "", DefaultLimits(), 400,
			notJSON + "invalid character 'h' looking for beginning of value (at byte 1)"},
		{"not JSON, sniffed", []byte("hello\nworld"), "", "", DefaultLimits(), 400,
			notJSON + "invalid character 'h' looking for beginning of value (at byte 1)"},
		{"broken array", []byte(`[{"event_type":"a"},{"event_type":}]`), "application/json", "", DefaultLimits(), 400,
			notJSON + "invalid character '}' looking for beginning of value (at byte 35)"},
		{"unterminated object", []byte(`{"event_type":"a"`), "", "", DefaultLimits(), 400,
			notJSON + "unexpected end of JSON input (at byte 17)"},
		{"two objects as application/json", []byte("{\"event_type\":\"a\"}\n{\"event_type\":\"b\"}"), "application/json", "", DefaultLimits(), 400,
			notJSON + "invalid character '{' after top-level value (at byte 20)"},
		{"string", []byte(`"event"`), "application/json", "", DefaultLimits(), 400, "body must be a JSON object or an array of objects, not a string"},
		{"null", []byte(`null`), "", "", DefaultLimits(), 400, "body must be a JSON object or an array of objects, not null"},
		{"too large", []byte(`[` + strings.Repeat(" ", 100) + `]`), "", "", small, 413, "body is more than 100 bytes"},
		{"too large gzipped", gzipped(t, `[`+strings.Repeat(" ", 100)+`]`), "", "gzip", small, 413, "body is more than 100 bytes"},
		{"too many in an array", []byte(`[{},{},{}]`), "", "", small, 413, "request has more than 2 events"},
		{"too many lines", []byte("{}\n\n{}\n5\n"), "application/x-ndjson", "", small, 413, "request has more than 2 events"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Decode(bytes.NewReader(tc.body), tc.contentType, tc.encoding, tc.lim, testNow, seqIDs())
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("got %+v, %v; want a RequestError", b, err)
			}
			if re.Status != tc.status || re.Reason != tc.reason || re.Error() != tc.reason {
				t.Errorf("got %d %q\nwant %d %q", re.Status, re.Reason, tc.status, tc.reason)
			}
			if !reflect.DeepEqual(b, Batch{}) {
				t.Errorf("batch %+v returned with an error", b)
			}
		})
	}
}

func TestDecodeBodyAtTheLimit(t *testing.T) {
	lim := DefaultLimits()
	body := `{"event_type":"a"}`
	lim.MaxRequestBytes = len(body)
	for _, encoding := range []string{"", "gzip"} {
		in := []byte(body)
		if encoding == "gzip" {
			in = gzipped(t, body)
		}
		b, err := Decode(bytes.NewReader(in), "", encoding, lim, testNow, seqIDs())
		if err != nil || len(b.Events) != 1 {
			t.Errorf("encoding %q: %d events, %v; want 1 event", encoding, len(b.Events), err)
		}
	}
}

func TestDecodeInvalidLimits(t *testing.T) {
	for _, change := range []func(*Limits){
		func(l *Limits) { l.MaxRequestBytes = 0 },
		func(l *Limits) { l.MaxEventBytes = -1 },
		func(l *Limits) { l.MaxEventsPerRequest = 0 },
		func(l *Limits) { l.MaxDepth = 0 },
		func(l *Limits) { l.MaxFuture = 0 },
		func(l *Limits) { l.MaxPast = 0 },
	} {
		lim := DefaultLimits()
		change(&lim)
		_, err := Decode(strings.NewReader(`{"event_type":"a"}`), "", "", lim, testNow, nil)
		var re *RequestError
		if err == nil || errors.As(err, &re) {
			t.Errorf("limits %+v: error %v, want one that is not a RequestError", lim, err)
		}
	}
	if _, err := Decode(strings.NewReader(`{"event_type":"a"}`), "", "", Limits{}, testNow, nil); err == nil ||
		err.Error() != "events: limit MaxRequestBytes is 0, it must be positive" {
		t.Errorf("zero Limits: %v", err)
	}
}

// TestDecodeReadError checks that an error reading the body is passed back, not blamed on
// the client as a RequestError.
func TestDecodeReadError(t *testing.T) {
	broken := errors.New("connection reset")
	for _, encoding := range []string{"", "gzip"} {
		r := io.MultiReader(bytes.NewReader(gzipped(t, `{"event_type":"a"}`)[:15]), &failingReader{broken})
		if encoding == "" {
			r = io.MultiReader(strings.NewReader(`{"event_type":`), &failingReader{broken})
		}
		_, err := Decode(r, "", encoding, DefaultLimits(), testNow, nil)
		var re *RequestError
		if !errors.Is(err, broken) || errors.As(err, &re) {
			t.Errorf("encoding %q: %v, want the read error", encoding, err)
		}
	}
}

type failingReader struct{ err error }

func (r *failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestDecodeContentTypes(t *testing.T) {
	one := `{"event_type":"a"}`
	two := "{\"event_type\":\"a\"}\n{\"event_type\":\"b\"}\n"
	for _, tc := range []struct {
		name, body, contentType string
		types                   []string
	}{
		{"object", one, "application/json", []string{"a"}},
		{"object with charset", one, "application/json; charset=UTF-8", []string{"a"}},
		{"upper case", one, "Application/JSON", []string{"a"}},
		{"array", `[{"event_type":"a"},{"event_type":"b"}]`, "application/json", []string{"a", "b"}},
		{"array, spaced", " \n[ {\"event_type\":\"a\"} ,\n {\"event_type\":\"b\"}\n]\n", "application/json", []string{"a", "b"}},
		{"empty array", `[]`, "application/json", nil},
		{"ndjson", two, "application/x-ndjson", []string{"a", "b"}},
		{"ndjson with charset", two, "application/x-ndjson; charset=utf-8", []string{"a", "b"}},
		{"ndjson of one", one, "application/x-ndjson", []string{"a"}},
		{"sniffed object", one, "", []string{"a"}},
		{"sniffed pretty object", "{\n  \"event_type\": \"a\"\n}\n", "", []string{"a"}},
		{"sniffed array", `[{"event_type":"a"}]`, "", []string{"a"}},
		{"sniffed ndjson", two, "", []string{"a", "b"}},
		{"byte order mark", "\xef\xbb\xbf" + one, "", []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := decodeString(t, tc.body, tc.contentType)
			var types []string
			for _, e := range b.Events {
				types = append(types, e.EventType)
			}
			if !reflect.DeepEqual(types, tc.types) || len(b.Rejected) != 0 {
				t.Errorf("accepted %v, rejected %+v; want %v", types, b.Rejected, tc.types)
			}
		})
	}
}

// TestDecodeMixed checks partial success: good and bad events in one array.
func TestDecodeMixed(t *testing.T) {
	b := decodeString(t, `[
		{"event_type":"signup","user_id":"u1"},
		{"event_type":"","user_id":"u2"},
		{"event_type":"login","event_id":"e-3","timestamp":"2024-06-01T11:00:00Z"},
		42,
		{"event_type":"buy","timestamp":"2099-01-01T00:00:00Z"},
		{"event_type":"logout","properties":{"k":"v"}}
	]`, "application/json")
	wantRejected := []Rejection{
		{Index: 1, Field: "event_type", Reason: "event_type is empty"},
		{Index: 3, Reason: "event must be a JSON object, not a number"},
		{Index: 4, Field: "timestamp", Reason: "timestamp 2099-01-01T00:00:00Z is more than 24h0m0s in the future"},
	}
	if !reflect.DeepEqual(b.Rejected, wantRejected) {
		t.Errorf("rejected %+v\nwant %+v", b.Rejected, wantRejected)
	}
	if !reflect.DeepEqual(b.Indexes, []int{0, 2, 5}) {
		t.Errorf("indexes %v, want [0 2 5]", b.Indexes)
	}
	var got []string
	for _, e := range b.Events {
		got = append(got, e.EventType+"/"+e.EventID+"/"+e.UserID)
	}
	if want := []string{"signup/id-1/u1", "login/e-3/", "logout/id-2/"}; !reflect.DeepEqual(got, want) {
		t.Errorf("accepted %v, want %v", got, want)
	}
}

// TestDecodeNDJSON checks blank lines, CRLF, and a line that is not JSON in the middle:
// that line alone is rejected, and indexes count events, not lines.
func TestDecodeNDJSON(t *testing.T) {
	body := "\n{\"event_type\":\"a\"}\r\n\n   \n{\"event_type\":\"b\",oops}\r\n{\"event_type\":\"c\"}\n[1]\n{\"event_type\":\"d\"}"
	for _, tc := range []struct{ name, contentType, encoding string }{
		{"ndjson", "application/x-ndjson", ""},
		{"sniffed", "", ""},
		{"gzipped", "application/x-ndjson", "gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(body)
			if tc.encoding == "gzip" {
				in = gzipped(t, body)
			}
			b, err := Decode(bytes.NewReader(in), tc.contentType, tc.encoding, DefaultLimits(), testNow, seqIDs())
			if err != nil {
				t.Fatal(err)
			}
			wantRejected := []Rejection{
				{Index: 1, Reason: "line 5 is not valid JSON: invalid character 'o' looking for beginning of object key string (at byte 19)"},
				{Index: 3, Reason: "event must be a JSON object, not an array"},
			}
			if !reflect.DeepEqual(b.Rejected, wantRejected) {
				t.Errorf("rejected %+v\nwant %+v", b.Rejected, wantRejected)
			}
			var types []string
			for _, e := range b.Events {
				types = append(types, e.EventType)
			}
			if !reflect.DeepEqual(types, []string{"a", "c", "d"}) || !reflect.DeepEqual(b.Indexes, []int{0, 2, 4}) {
				t.Errorf("accepted %v at %v, want [a c d] at [0 2 4]", types, b.Indexes)
			}
		})
	}
}

func TestDecodeNDJSONLongLine(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxEventBytes = 30
	b, err := Decode(strings.NewReader("{\"event_type\":\"a\"}\n{\"event_type\":\"this one is too long\"}\n"),
		"application/x-ndjson", "", lim, testNow, seqIDs())
	want := []Rejection{{Index: 1, Reason: "event is 37 bytes, more than the limit of 30"}}
	if err != nil || !reflect.DeepEqual(b.Rejected, want) || len(b.Events) != 1 {
		t.Errorf("got %+v, %v; want one accepted and %+v", b, err, want)
	}
}

func TestDecodeGzip(t *testing.T) {
	body := gzipped(t, `[{"event_type":"a"},{"event_type":"b","properties":{"x": 1}}]`)
	for _, encoding := range []string{"gzip", "GZIP", "x-gzip"} {
		b, err := Decode(bytes.NewReader(body), "application/json", encoding, DefaultLimits(), testNow, seqIDs())
		if err != nil || len(b.Events) != 2 || string(b.Events[1].Properties) != `{"x":1}` {
			t.Errorf("encoding %q: %+v, %v", encoding, b, err)
		}
	}
	// Concatenated gzip members are one body (RFC 1952), as gzip(1) reads them.
	two := append(gzipped(t, `[{"event_type":"a"},`), gzipped(t, `{"event_type":"b"}]`)...)
	if b, err := Decode(bytes.NewReader(two), "", "gzip", DefaultLimits(), testNow, seqIDs()); err != nil || len(b.Events) != 2 {
		t.Errorf("two members: %+v, %v", b, err)
	}
}

// TestDecodeGzipBomb checks that 256 MiB of zeros, in about 250 KiB of gzip, is refused
// after allocating little more than MaxRequestBytes.
func TestDecodeGzipBomb(t *testing.T) {
	member := func() []byte {
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := zw.Write(make([]byte, 16<<20)); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}()
	bomb := bytes.Repeat(member, 16)
	lim := DefaultLimits()
	lim.MaxRequestBytes = 1 << 20

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Decode(bytes.NewReader(bomb), "application/json", "gzip", lim, testNow, nil)
	runtime.ReadMemStats(&after)

	var re *RequestError
	if !errors.As(err, &re) || re.Status != 413 {
		t.Fatalf("got %v, want a 413", err)
	}
	// The buffer doubles up to MaxRequestBytes+1 (about twice that in all); the gzip
	// reader's own state is a few hundred KiB.
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 3*uint64(lim.MaxRequestBytes) {
		t.Errorf("allocated %d bytes refusing a gzip bomb, limit %d", allocated, lim.MaxRequestBytes)
	}
}

var uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestDecodeAssignsIDs checks that, with no newID, events without an event_id get UUIDv7s
// for the time the request arrived, and those with one keep it.
func TestDecodeAssignsIDs(t *testing.T) {
	b, err := Decode(strings.NewReader(`[{"event_type":"a"},{"event_type":"b","event_id":"mine"},{"event_type":"c"}]`),
		"", "", DefaultLimits(), testNow, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 3 {
		t.Fatalf("events %+v", b.Events)
	}
	if b.Events[1].EventID != "mine" {
		t.Errorf("event_id %q, want mine", b.Events[1].EventID)
	}
	prefix := fmt.Sprintf("%012x", testNow.UnixMilli())
	for _, e := range []Event{b.Events[0], b.Events[2]} {
		if !uuidV7.MatchString(e.EventID) || strings.ReplaceAll(e.EventID, "-", "")[:12] != prefix {
			t.Errorf("assigned event_id %q, want a UUIDv7 starting with %s", e.EventID, prefix)
		}
	}
	if b.Events[0].EventID == b.Events[2].EventID {
		t.Errorf("two events got the same id %s", b.Events[0].EventID)
	}
}

// TestDecodePropertiesDoNotAlias checks that compacted and uncompacted properties each
// hold their own event's bytes.
func TestDecodePropertiesDoNotAlias(t *testing.T) {
	b := decodeString(t, `[{"event_type":"a","properties":{"n":1}},{"event_type":"b","properties":{ "n" : 2 }}]`, "")
	if len(b.Events) != 2 || string(b.Events[0].Properties) != `{"n":1}` || string(b.Events[1].Properties) != `{"n":2}` {
		t.Fatalf("events %+v", b.Events)
	}
}

// benchBody is n events of about 300 bytes with 8 properties, as an array or NDJSON.
func benchBody(n int, ndjson bool) []byte {
	var buf bytes.Buffer
	if !ndjson {
		buf.WriteByte('[')
	}
	for i := range n {
		if i > 0 && !ndjson {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"event_type":"page_view","timestamp":"2024-06-01T11:%02d:%02d.%03dZ","user_id":"user-%06d",`+
			`"session_id":"sess-%08x","properties":{"path":"/products/%d","referrer":"https://www.example.com/search?q=shoes",`+
			`"browser":"Firefox","os":"Linux","screen_width":1920,"screen_height":1080,"price":%d.99,"logged_in":true}}`,
			i/60%60, i%60, i%1000, i%5000, i*7919, i, i%100)
		if ndjson {
			buf.WriteByte('\n')
		}
	}
	if !ndjson {
		buf.WriteByte(']')
	}
	return buf.Bytes()
}

func BenchmarkDecode(b *testing.B) {
	const n = 1000
	array, lines := benchBody(n, false), benchBody(n, true)
	for _, bc := range []struct {
		name, contentType, encoding string
		body                        []byte
	}{
		{"array", "application/json", "", array},
		{"ndjson", "application/x-ndjson", "", lines},
		{"gzip-array", "application/json", "gzip", gzipped(b, string(array))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(array)))
			b.ReportAllocs()
			var r bytes.Reader
			for b.Loop() {
				r.Reset(bc.body)
				batch, err := Decode(&r, bc.contentType, bc.encoding, DefaultLimits(), testNow, nil)
				if err != nil || len(batch.Events) != n {
					b.Fatalf("%d events, %d rejected (%+v), %v", len(batch.Events), len(batch.Rejected), batch.Rejected[:min(1, len(batch.Rejected))], err)
				}
			}
			perEvent := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / n
			b.ReportMetric(perEvent, "ns/event")
		})
	}
}
