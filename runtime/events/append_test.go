package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// AppendMarshal and AppendDecoded write exactly what Marshal does, after what the buffer
// held, and MarshalSizeHint is enough for events without escapes.
func TestAppendMarshal(t *testing.T) {
	for _, e := range []Event{
		{EventID: "e-1", EventType: `say "hi" <b>`, Timestamp: testNow, ReceivedAt: testNow,
			UserID: "u\n1", SessionID: "s", Properties: json.RawMessage(`{"a":[1,"x"]}`)},
		{EventID: "e", EventType: "t", Timestamp: testNow, ReceivedAt: testNow},
		{EventID: "0190b6a0-0000-7000-8000-000000000000", EventType: "page_view", Timestamp: testNow.Add(-time.Hour),
			ReceivedAt: testNow, UserID: "u-00001", SessionID: "s-00001", Properties: json.RawMessage(`{"path":"/p","ms":12}`)},
	} {
		want, err := Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		prefix := []byte("earlier value|")
		got, err := AppendMarshal(bytes.Clone(prefix), e)
		if err != nil || string(got) != string(prefix)+string(want) {
			t.Errorf("AppendMarshal(%q, %+v) = %s, %v; want %s%s", prefix, e, got, err, prefix, want)
		}
		if got := AppendDecoded(bytes.Clone(prefix), e); string(got) != string(prefix)+string(want) {
			t.Errorf("AppendDecoded(%q, %+v) = %s; want %s%s", prefix, e, got, prefix, want)
		}
		if !strings.ContainsAny(e.EventType+e.UserID, "\"\n") && MarshalSizeHint(e) < len(want) {
			t.Errorf("MarshalSizeHint = %d for an encoding of %d bytes", MarshalSizeHint(e), len(want))
		}
	}
}

func TestAppendMarshalRefusesAndKeepsTheBuffer(t *testing.T) {
	for _, e := range []Event{
		{EventType: "t", Timestamp: testNow, ReceivedAt: testNow},
		{EventID: "e", Timestamp: testNow, ReceivedAt: testNow},
		{EventID: "e", EventType: "t", Timestamp: testNow, ReceivedAt: testNow, Properties: json.RawMessage(`{"a":`)},
		{EventID: "e", EventType: "t", Timestamp: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), ReceivedAt: testNow},
	} {
		got, err := AppendMarshal([]byte("kept"), e)
		if err == nil || string(got) != "kept" {
			t.Errorf("AppendMarshal(%+v) = %q, %v; want an error and the buffer as it was", e, got, err)
		}
	}
}

// Every event Decode accepts encodes with AppendDecoded as with the checking Marshal: the
// shortcut may only skip checks, never change the output.
func TestAppendDecodedMatchesMarshalForDecodedEvents(t *testing.T) {
	body := `[{"event_type":"a","properties":{ "x" : [1, 2], "y":"\u00e9" }},` +
		`{"event_type":"b <&>","event_id":"id\"1","user_id":"u\u2028","timestamp":1717243200000},` +
		`{"event_type":"c","session_id":"s","properties":null}]`
	batch, err := Decode(strings.NewReader(body), "application/json", "", DefaultLimits(), testNow, seqIDs())
	if err != nil || len(batch.Events) != 3 {
		t.Fatalf("decoding: %d events, %v, rejected %+v", len(batch.Events), err, batch.Rejected)
	}
	for i, e := range batch.Events {
		want, err := Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendDecoded(nil, e); !bytes.Equal(got, want) {
			t.Errorf("event %d: AppendDecoded %s, Marshal %s", i, got, want)
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\`, "nl\n tab\t ctl\x01", "é ✓", "<&>", "\u2028\u2029"} {
		got := AppendString([]byte("x"), s)
		var back string
		if err := json.Unmarshal(got[1:], &back); err != nil || back != s || got[0] != 'x' {
			t.Errorf("AppendString(%q) = %s, which reads back as %q (%v)", s, got, back, err)
		}
	}
	if got := string(AppendString(nil, "a\xffb")); got != `"a\ufffdb"` {
		t.Errorf("invalid UTF-8: %s", got)
	}
}

// sizedReader is a reader that says how much is left, as the ingest server's body does,
// and counts the reads.
type sizedReader struct {
	r     *bytes.Reader
	len   int // what Len says, which may be wrong
	reads int
}

func (s *sizedReader) Read(p []byte) (int, error) { s.reads++; return s.r.Read(p) }
func (s *sizedReader) Len() int                   { return s.len }

func TestReadAtMostWithALength(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 3000) // 30000 bytes
	for _, tc := range []struct {
		name      string
		len       int
		limit     int
		wantErr   bool
		wantReads int // at most
	}{
		{"right length: one buffer", len(body), 1 << 20, false, 2},
		{"no length", -1, 1 << 20, false, 20},
		{"too small a length", 10, 1 << 20, false, 20},
		{"too large a length", 10 << 20, 1 << 20, false, 20},
		{"over the limit whatever the length says", len(body), 20000, true, 20},
		{"right length at the limit", len(body), len(body), false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &sizedReader{r: bytes.NewReader(body), len: tc.len}
			got, err := readAtMost(nil, r, tc.limit)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("read %d bytes with a limit of %d, want a 413", len(got), tc.limit)
				}
				return
			}
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("read %d bytes, %v; want the %d of the body", len(got), err, len(body))
			}
			if r.reads > tc.wantReads {
				t.Errorf("%d reads, want at most %d", r.reads, tc.wantReads)
			}
		})
	}
}

// A length announced but never sent costs no more than the largest chunk.
func TestReadAtMostLengthIsOnlyAHint(t *testing.T) {
	r := &sizedReader{r: bytes.NewReader(nil), len: 1 << 30}
	got, err := readAtMost(nil, io.Reader(r), 5<<20)
	if err != nil || len(got) != 0 {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if cap(got) > maxChunk {
		t.Errorf("an empty body announced as 1 GiB took a buffer of %d bytes, want at most %d", cap(got), maxChunk)
	}
}

// A Decoder decodes each body as Decode does, into the memory of the body before when it
// fits: the buffer the body is read into and the events. Its limits hold whatever it
// kept.
func TestDecoderReusesItsMemory(t *testing.T) {
	var dec Decoder
	decode := func(body, encoding string, lim Limits) (Batch, error) {
		t.Helper()
		in := []byte(body)
		if encoding == "gzip" {
			in = gzipped(t, body)
		}
		return dec.Decode(bytes.NewReader(in), "application/json", encoding, lim, testNow, seqIDs())
	}
	// Larger than the first read of a body of unknown length (gzip), so every body below
	// fits what it leaves.
	padded := `[{"event_type":"a","properties":{"k":1}},{"event_type":"b"},{"event_type":"c"}]` + strings.Repeat(" ", 8<<10)
	first, err := decode(padded, "", DefaultLimits())
	if err != nil || len(first.Events) != 3 {
		t.Fatalf("%d events, %v", len(first.Events), err)
	}
	body, events := &dec.body[:1][0], &first.Events[0]
	for _, tc := range []struct {
		name, body, encoding string
		limit                int
		wantTypes            string
		wantProps            string
		wantErr              bool
	}{
		{"smaller body", `[{"event_type":"x","properties":{"z":2}},{"event_type":"y"}]`, "", 1 << 20, "x,y", `{"z":2}`, false},
		{"gzip", `[{"event_type":"g","properties":{"q":[1]}}]`, "gzip", 1 << 20, "g", `{"q":[1]}`, false},
		{"one object", `{"event_type":"o"}`, "", 1 << 20, "o", `{}`, false},
		{"over a limit smaller than the buffer kept", `[{"event_type":"a"},{"event_type":"b"}]`, "", 20, "", "", true},
		{"after a refusal", `[{"event_type":"n","properties":{"n":null}}]`, "", 1 << 20, "n", `{"n":null}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim := DefaultLimits()
			lim.MaxRequestBytes = tc.limit
			batch, err := decode(tc.body, tc.encoding, lim)
			if tc.wantErr {
				var re *RequestError
				if !errors.As(err, &re) || re.Status != statusTooLarge {
					t.Fatalf("err %v, want a 413", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var types []string
			for _, e := range batch.Events {
				types = append(types, e.EventType)
			}
			if got := strings.Join(types, ","); got != tc.wantTypes {
				t.Fatalf("event types %s, want %s", got, tc.wantTypes)
			}
			if got := string(batch.Events[0].Properties); got != tc.wantProps {
				t.Errorf("properties %s, want %s", got, tc.wantProps)
			}
			if &dec.body[:1][0] != body {
				t.Errorf("the body was read into new memory")
			}
			if len(batch.Events) > 1 && &batch.Events[0] != events {
				t.Errorf("the events were built in new memory")
			}
		})
	}
}

// The ids of a request's events share one allocation; each must still be its own, with
// escapes undone, rejected events in between and assigned ids left alone.
func TestDecodeStringsOfManyEvents(t *testing.T) {
	type want struct{ id, user, session string }
	var parts []string
	var wants []want
	for i := range 60 {
		switch {
		case i%7 == 3: // rejected: no event_type
			parts = append(parts, `{"event_id":"bad","user_id":"x"}`)
			continue
		case i%5 == 0: // no ids at all
			parts = append(parts, `{"event_type":"t"}`)
			wants = append(wants, want{})
		case i%3 == 0: // escapes
			parts = append(parts, fmt.Sprintf(`{"event_type":"t","event_id":"e\"%d","user_id":"u\n%d","session_id":"\u00e9%d"}`, i, i, i))
			wants = append(wants, want{fmt.Sprintf(`e"%d`, i), fmt.Sprintf("u\n%d", i), fmt.Sprintf("é%d", i)})
		default:
			parts = append(parts, fmt.Sprintf(`{"event_type":"t","event_id":"e-%d","user_id":"u-%d","session_id":"s-%d"}`, i, i, i))
			wants = append(wants, want{fmt.Sprintf("e-%d", i), fmt.Sprintf("u-%d", i), fmt.Sprintf("s-%d", i)})
		}
	}
	for _, tc := range []struct {
		name, body, contentType string
	}{
		{"array", "[" + strings.Join(parts, ",") + "]", "application/json"},
		{"ndjson", strings.Join(parts, "\n"), "application/x-ndjson"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids := seqIDs()
			batch, err := Decode(strings.NewReader(tc.body), tc.contentType, "", DefaultLimits(), testNow, ids)
			if err != nil {
				t.Fatal(err)
			}
			if len(batch.Events) != len(wants) {
				t.Fatalf("%d events, want %d", len(batch.Events), len(wants))
			}
			assigned := map[string]bool{}
			for i, e := range batch.Events {
				w := wants[i]
				if w.id == "" {
					if e.EventID == "" || assigned[e.EventID] {
						t.Errorf("event %d: assigned id %q empty or seen before", i, e.EventID)
					}
					assigned[e.EventID] = true
				} else if e.EventID != w.id {
					t.Errorf("event %d: id %q, want %q", i, e.EventID, w.id)
				}
				if e.UserID != w.user || e.SessionID != w.session {
					t.Errorf("event %d: user %q session %q, want %q %q", i, e.UserID, e.SessionID, w.user, w.session)
				}
			}
		})
	}
}
