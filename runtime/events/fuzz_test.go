package events

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// fuzzLimits are small, so that fuzzing reaches every limit.
func fuzzLimits() Limits {
	return Limits{
		MaxRequestBytes:     8 << 10,
		MaxEventBytes:       512,
		MaxEventsPerRequest: 20,
		MaxDepth:            4,
		MaxFuture:           time.Hour,
		MaxPast:             48 * time.Hour,
	}
}

// FuzzDecode checks Decode's promises on any body. Its seed corpus is in
// testdata/fuzz/FuzzDecode; compress gzips body before Decode reads it, so that the fuzzer
// mutates what is inside a valid gzip stream too. One Decoder decodes every body as
// well, so what it keeps from a body must never change the next one's answer.
func FuzzDecode(f *testing.F) {
	var reused Decoder
	f.Fuzz(func(t *testing.T, body []byte, contentType, contentEncoding string, compress bool) {
		if compress {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = zw.Write(body)
			_ = zw.Close()
			body = buf.Bytes()
		}
		lim := fuzzLimits()
		b, err := Decode(bytes.NewReader(body), contentType, contentEncoding, lim, testNow, nil)
		elements, oracleErr := splitElements(body, contentType, contentEncoding, lim)
		fresh, freshErr := Decode(bytes.NewReader(body), contentType, contentEncoding, lim, testNow, seqIDs())
		again, againErr := reused.Decode(bytes.NewReader(body), contentType, contentEncoding, lim, testNow, seqIDs())
		if got, want := fmt.Sprintf("%v %v %v %v", again.Events, again.Indexes, again.Rejected, againErr),
			fmt.Sprintf("%v %v %v %v", fresh.Events, fresh.Indexes, fresh.Rejected, freshErr); got != want {
			t.Fatalf("a Decoder used before decoded\n%s\nwhere a new one decoded\n%s", got, want)
		}

		var re *RequestError
		switch {
		case err == nil && oracleErr != "":
			t.Fatalf("accepted a request that should be refused (%s): %+v", oracleErr, b)
		case errors.As(err, &re):
			if re.Status != 400 && re.Status != 413 && re.Status != 415 || re.Reason == "" {
				t.Fatalf("RequestError %+v", re)
			}
			if oracleErr == "" && (re.Status != 413 || len(elements) <= lim.MaxEventsPerRequest) {
				t.Fatalf("refused a readable request of %d events: %v", len(elements), err)
			}
			return
		case err != nil:
			t.Fatalf("error that is not a RequestError: %v", err)
		case len(elements) > lim.MaxEventsPerRequest:
			t.Fatalf("accepted %d events", len(elements))
		}

		// Every element is accounted for once, in request order.
		if len(b.Events)+len(b.Rejected) != len(elements) || len(b.Indexes) != len(b.Events) {
			t.Fatalf("%d elements, but %d accepted (%d indexes) and %d rejected: %+v",
				len(elements), len(b.Events), len(b.Indexes), len(b.Rejected), b.Rejected)
		}
		seen := make([]bool, len(elements))
		last := -1
		for _, i := range b.Indexes {
			if i <= last || seen[i] {
				t.Fatalf("indexes %v out of order", b.Indexes)
			}
			seen[i], last = true, i
		}
		last = -1
		for _, r := range b.Rejected {
			if r.Index <= last || r.Index >= len(elements) || seen[r.Index] || r.Reason == "" {
				t.Fatalf("rejection %+v (indexes %v)", r, b.Indexes)
			}
			seen[r.Index], last = true, r.Index
		}

		for k, e := range b.Events {
			checkEvent(t, e, elements[b.Indexes[k]], lim)
		}
	})
}

// checkEvent checks an accepted event against the limits and against encoding/json's
// reading of the element it came from.
func checkEvent(t *testing.T, e Event, element []byte, lim Limits) {
	t.Helper()
	if len(element) > lim.MaxEventBytes {
		t.Fatalf("accepted an event of %d bytes", len(element))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(element, &fields); err != nil {
		t.Fatalf("accepted %q, which encoding/json cannot read as an object: %v", element, err)
	}
	str := func(name string) string {
		var s *string
		if err := json.Unmarshal(fields[name], &s); fields[name] != nil && err != nil {
			t.Fatalf("accepted %s %s: %v", name, fields[name], err)
		}
		if s == nil {
			return ""
		}
		return *s
	}
	for name := range fields {
		switch name {
		case "event_type", "event_id", "timestamp", "user_id", "session_id", "properties":
		default:
			t.Fatalf("accepted an event with field %q", name)
		}
	}

	if e.EventType != str("event_type") || e.EventType == "" || len(e.EventType) > 128 {
		t.Fatalf("event_type %q from %s", e.EventType, fields["event_type"])
	}
	for _, r := range e.EventType {
		if !unicode.IsPrint(r) {
			t.Fatalf("event_type %q has %U", e.EventType, r)
		}
	}
	if id := str("event_id"); id != "" && e.EventID != id || id == "" && !uuidV7.MatchString(e.EventID) || len(e.EventID) > 128 {
		t.Fatalf("event_id %q from %s", e.EventID, fields["event_id"])
	}
	if e.UserID != str("user_id") || e.SessionID != str("session_id") || len(e.UserID) > 256 || len(e.SessionID) > 256 {
		t.Fatalf("user_id %q, session_id %q from %s", e.UserID, e.SessionID, element)
	}
	for _, s := range []string{e.EventType, e.EventID, e.UserID, e.SessionID, string(e.Properties)} {
		if !utf8.ValidString(s) {
			t.Fatalf("accepted invalid UTF-8 %q", s)
		}
	}

	want := testNow
	if ts := fields["timestamp"]; ts != nil && string(ts) != "null" {
		var s string
		var ms int64
		switch {
		case json.Unmarshal(ts, &s) == nil:
			parsed, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				t.Fatalf("accepted timestamp %s: %v", ts, err)
			}
			want = parsed.UTC().Truncate(time.Millisecond)
		case json.Unmarshal(ts, &ms) == nil:
			want = time.UnixMilli(ms).UTC()
		default:
			t.Fatalf("accepted timestamp %s", ts)
		}
	}
	if !e.Timestamp.Equal(want) || e.Timestamp.Location() != time.UTC ||
		e.Timestamp.Before(testNow.Add(-lim.MaxPast)) || e.Timestamp.After(testNow.Add(lim.MaxFuture)) {
		t.Fatalf("timestamp %v from %s, want %v", e.Timestamp, fields["timestamp"], want)
	}
	if !e.ReceivedAt.Equal(testNow) {
		t.Fatalf("received_at %v", e.ReceivedAt)
	}

	var props bytes.Buffer
	if p := fields["properties"]; p == nil || string(p) == "null" {
		props.WriteString("{}")
	} else if err := json.Compact(&props, p); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(e.Properties, props.Bytes()) || e.Properties[0] != '{' {
		t.Fatalf("properties %s from %s", e.Properties, fields["properties"])
	}
	if d := depth(t, e.Properties); d > lim.MaxDepth {
		t.Fatalf("properties %s are nested %d deep", e.Properties, d)
	}

	value, err := Marshal(e)
	if err != nil {
		t.Fatalf("Marshal(%+v): %v", e, err)
	}
	back, err := Unmarshal(value)
	if err != nil {
		t.Fatalf("Unmarshal(%s): %v", value, err)
	}
	back.IDAssigned = e.IDAssigned // a record header carries it, not the value
	if !reflect.DeepEqual(back, e) {
		t.Fatalf("round trip through %s:\ngot  %+v\nwant %+v", value, back, e)
	}
}

// depth measures nesting with encoding/json's tokens.
func depth(t *testing.T, v []byte) int {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber() // numbers beyond float64 are kept as sent
	level, most := 0, 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return most
		}
		if err != nil {
			t.Fatalf("properties %s: %v", v, err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			level++
			most = max(most, level)
		case json.Delim('}'), json.Delim(']'):
			level--
		}
	}
}

// splitElements is an oracle for Decode, written differently: it returns the events of a
// body as encoding/json sees them, or why the request as a whole must be refused.
func splitElements(body []byte, contentType, contentEncoding string, lim Limits) ([][]byte, string) {
	switch strings.ToLower(strings.TrimSpace(contentEncoding)) {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, "gzip"
		}
		body, err = io.ReadAll(io.LimitReader(zr, int64(lim.MaxRequestBytes)+1))
		if err != nil {
			return nil, "gzip"
		}
	default:
		return nil, "encoding"
	}
	if len(body) > lim.MaxRequestBytes {
		return nil, "size"
	}
	ndjson := false
	if contentType != "" {
		mediaType, params, err := mime.ParseMediaType(contentType)
		if err != nil {
			return nil, "content type"
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
			return nil, "charset"
		}
		switch mediaType {
		case "application/json":
		case "application/x-ndjson":
			ndjson = true
		default:
			return nil, "content type"
		}
	}
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, "empty"
	}
	if !ndjson {
		var array []json.RawMessage
		var object map[string]json.RawMessage
		switch {
		case trimmed[0] == '[':
			if json.Unmarshal(body, &array) != nil {
				return nil, "not JSON"
			}
			elements := make([][]byte, len(array))
			for i, a := range array {
				elements[i] = a
			}
			return elements, ""
		case trimmed[0] == '{' && json.Valid(body):
			_ = json.Unmarshal(body, &object)
			return [][]byte{bytes.TrimSpace(body)}, ""
		case trimmed[0] != '{' || contentType != "" || !bytes.Contains(bytes.TrimSpace(body), []byte("\n")):
			return nil, "not JSON"
		}
	}
	var elements [][]byte
	for line := range bytes.SplitSeq(body, []byte("\n")) {
		if line = bytes.Trim(line, " \t\r\n"); len(line) > 0 {
			elements = append(elements, line)
		}
	}
	return elements, ""
}
