package events

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMarshal(t *testing.T) {
	e := Event{
		EventID:    "e-1",
		EventType:  `say "hi" <b>`,
		Timestamp:  time.Date(2024, 6, 1, 13, 0, 0, 123e6, time.FixedZone("", 2*3600)),
		ReceivedAt: testNow,
		UserID:     "u\n1",
		SessionID:  "s",
		Properties: json.RawMessage(`{"a":[1,"x"]}`),
	}
	got, err := Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"event_id":"e-1","event_type":"say \"hi\" <b>","timestamp":"2024-06-01T11:00:00.123Z",` +
		`"received_at":"2024-06-01T12:00:00.000Z","user_id":"u\n1","session_id":"s","properties":{"a":[1,"x"]}}`
	if string(got) != want {
		t.Errorf("Marshal:\ngot  %s\nwant %s", got, want)
	}

	e = Event{EventID: "e", EventType: "t", Timestamp: testNow, ReceivedAt: testNow}
	got, err = Marshal(e)
	want = `{"event_id":"e","event_type":"t","timestamp":"2024-06-01T12:00:00.000Z","received_at":"2024-06-01T12:00:00.000Z","properties":{}}`
	if err != nil || string(got) != want {
		t.Errorf("Marshal without the optional fields: %s, %v\nwant %s", got, err, want)
	}
}

func TestMarshalRefuses(t *testing.T) {
	good := Event{EventID: "e", EventType: "t", Timestamp: testNow, ReceivedAt: testNow, Properties: json.RawMessage(`{}`)}
	for _, tc := range []struct {
		name   string
		change func(*Event)
		err    string
	}{
		{"no event_id", func(e *Event) { e.EventID = "" }, "events: marshal: event_id is empty"},
		{"no event_type", func(e *Event) { e.EventType = "" }, "events: marshal: event_type is empty"},
		{"properties not JSON", func(e *Event) { e.Properties = json.RawMessage(`{"a":}`) }, "events: marshal: properties are not a JSON object"},
		{"properties an array", func(e *Event) { e.Properties = json.RawMessage(`[]`) }, "events: marshal: properties are not a JSON object"},
		{"year 10000", func(e *Event) { e.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "events: marshal: year 10000 is outside RFC 3339"},
	} {
		e := good
		tc.change(&e)
		if _, err := Marshal(e); err == nil || err.Error() != tc.err {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
	}
}

// TestMarshalStrings checks strings against encoding/json without HTML escaping: the
// same bytes.
func TestMarshalStrings(t *testing.T) {
	var all strings.Builder
	for c := range 0x80 {
		all.WriteByte(byte(c))
	}
	for _, s := range []string{"", "plain", all.String(), "é 购买 🎉", "line\u2028para\u2029", "bad \xff\xfe utf-8 \xe2\x82", "<&>"} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s); string(got) != strings.TrimSuffix(want.String(), "\n") {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want.String())
		}
	}
}

// TestRoundTrip decodes a request, then marshals and unmarshals each event.
func TestRoundTrip(t *testing.T) {
	b := decodeString(t, `[
		{"event_type":"a"},
		{"event_type":"b\u00e9\"","event_id":"x\\y","timestamp":1717239600123,"user_id":"é\u2028","session_id":"\u0000",
		 "properties":{ "html": "<b>", "nested": {"n": [1, 2.5e-3, null, true]}, "esc": "\ud83c\udf89\n" }}
	]`, "")
	if len(b.Events) != 2 {
		t.Fatalf("%+v", b)
	}
	for _, e := range b.Events {
		value, err := Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Unmarshal(value)
		if err != nil {
			t.Fatalf("Unmarshal(%s): %v", value, err)
		}
		got.IDAssigned = e.IDAssigned // a record header carries it, not the value
		if !reflect.DeepEqual(got, e) {
			t.Errorf("round trip through %s:\ngot  %+v\nwant %+v", value, got, e)
		}
	}
}

func TestUnmarshal(t *testing.T) {
	data := []byte(`{"event_id":"e","event_type":"t","timestamp":"2024-06-01T13:00:00.5+02:00","received_at":"2024-06-01T12:00:00Z",` +
		`"properties":{"a":1},"added_later":[1]}`)
	e, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	want := Event{EventID: "e", EventType: "t", Timestamp: time.Date(2024, 6, 1, 11, 0, 0, 5e8, time.UTC), ReceivedAt: testNow,
		Properties: json.RawMessage(`{"a":1}`)}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("got  %+v\nwant %+v", e, want)
	}
	copy(data[bytes.Index(data, []byte(`{"a"`)):], `{"b"`)
	if string(e.Properties) != `{"a":1}` {
		t.Errorf("properties share memory with the value: %s", e.Properties)
	}

	e, err = Unmarshal([]byte(`{"event_id":"e","event_type":"t","timestamp":"2024-06-01T12:00:00Z","received_at":"2024-06-01T12:00:00Z","properties":null}`))
	if err != nil || string(e.Properties) != "{}" {
		t.Errorf("null properties: %s, %v", e.Properties, err)
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	const times = `"timestamp":"2024-06-01T12:00:00Z","received_at":"2024-06-01T12:00:00Z"`
	for _, tc := range []struct{ value, err string }{
		{``, "events: unmarshal: value is not JSON"},
		{`{"event_id":"e",`, "events: unmarshal: value is not JSON"},
		{`[]`, "events: unmarshal: value is an array, not an object"},
		{`{"event_type":"t",` + times + `}`, "events: unmarshal: event_id is missing"},
		{`{"event_id":"e",` + times + `}`, "events: unmarshal: event_type is missing"},
		{`{"event_id":"e","event_type":"","` + times[1:] + `}`, "events: unmarshal: event_type is missing"},
		{`{"event_id":1,"event_type":"t",` + times + `}`, "events: unmarshal: event_id: is a number, not a string"},
		{`{"event_id":"e","event_type":"t","user_id":{},` + times + `}`, "events: unmarshal: user_id: is an object, not a string"},
		{`{"event_id":"e","event_type":"t","properties":[],` + times + `}`, "events: unmarshal: properties: is an array, not an object"},
		{`{"event_id":"e","event_type":"t","received_at":"2024-06-01T12:00:00Z"}`, "events: unmarshal: timestamp is missing"},
		{`{"event_id":"e","event_type":"t","timestamp":"2024-06-01T12:00:00Z"}`, "events: unmarshal: received_at is missing"},
		{`{"event_id":"e","event_type":"t","timestamp":1717243200000,"received_at":"2024-06-01T12:00:00Z"}`,
			"events: unmarshal: timestamp: is a number, not a string"},
		{"{\"event_id\":\"\xff\",\"event_type\":\"t\"," + times + "}", "events: unmarshal: event_id: is not valid UTF-8"},
	} {
		if _, err := Unmarshal([]byte(tc.value)); err == nil || err.Error() != tc.err {
			t.Errorf("Unmarshal(%s): %v, want %q", tc.value, err, tc.err)
		}
	}
	_, err := Unmarshal([]byte(`{"event_id":"e","event_type":"t","timestamp":"yesterday","received_at":"2024-06-01T12:00:00Z"}`))
	if err == nil || !strings.HasPrefix(err.Error(), "events: unmarshal: timestamp: is not an RFC 3339 time: ") {
		t.Errorf("bad timestamp: %v", err)
	}
}

func BenchmarkMarshal(b *testing.B) {
	batch, err := Decode(bytes.NewReader(benchBody(1000, false)), "", "", DefaultLimits(), testNow, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := Marshal(batch.Events[i%len(batch.Events)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	batch, err := Decode(bytes.NewReader(benchBody(1000, false)), "", "", DefaultLimits(), testNow, nil)
	if err != nil {
		b.Fatal(err)
	}
	values := make([][]byte, len(batch.Events))
	for i, e := range batch.Events {
		if values[i], err = Marshal(e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := Unmarshal(values[i%len(values)]); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAppendTime(t *testing.T) {
	for _, tm := range []time.Time{
		testNow,
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(999, 2, 3, 4, 5, 6, 7e6, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2024, 6, 1, 1, 30, 0, 120e6, time.FixedZone("", -5*3600)),
		time.UnixMilli(-1),
	} {
		want := `"` + tm.UTC().Format("2006-01-02T15:04:05.000Z07:00") + `"`
		if got := appendTime(nil, tm); string(got) != want {
			t.Errorf("appendTime(%v) = %s, want %s", tm, got, want)
		}
	}
}

// An event's two times are written right whether or not they share a date (the second
// copies the first's date when they do).
func TestMarshalTimes(t *testing.T) {
	day := func(y int, m time.Month, d, h, mi, s, ms int, loc *time.Location) time.Time {
		return time.Date(y, m, d, h, mi, s, ms*1e6, loc)
	}
	for _, tc := range []struct{ ts, received time.Time }{
		{day(2024, 5, 1, 12, 0, 0, 123, time.UTC), day(2024, 5, 1, 12, 0, 1, 456, time.UTC)},
		{day(2024, 5, 1, 23, 59, 59, 999, time.UTC), day(2024, 5, 2, 0, 0, 0, 1, time.UTC)},
		{day(2024, 4, 30, 0, 0, 0, 0, time.UTC), day(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
		// The same local date, two UTC dates.
		{day(2024, 5, 1, 20, 0, 0, 0, time.FixedZone("", -5*3600)), day(2024, 5, 1, 18, 0, 0, 0, time.FixedZone("", -5*3600))},
		{day(1969, 12, 31, 23, 0, 0, 0, time.UTC), day(1969, 12, 31, 23, 30, 0, 0, time.UTC)},
		{day(1969, 12, 31, 23, 59, 59, 999, time.UTC), day(1970, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		v, err := Marshal(Event{EventID: "e", EventType: "t", Timestamp: tc.ts, ReceivedAt: tc.received})
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Timestamp, ReceivedAt string }
		if err := json.Unmarshal(v, &struct {
			Timestamp  *string `json:"timestamp"`
			ReceivedAt *string `json:"received_at"`
		}{&got.Timestamp, &got.ReceivedAt}); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		const layout = "2006-01-02T15:04:05.000Z07:00"
		if want := tc.ts.UTC().Format(layout); got.Timestamp != want {
			t.Errorf("timestamp %s, want %s", got.Timestamp, want)
		}
		if want := tc.received.UTC().Format(layout); got.ReceivedAt != want {
			t.Errorf("received_at %s, want %s", got.ReceivedAt, want)
		}
	}
}
