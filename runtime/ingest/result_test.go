package ingest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"testing"

	"github.com/shoal-dev/shoal/runtime/events"
)

// The hand-written answer must say what encoding/json would: byte for byte when no id
// holds a character json escapes for HTML, the same value always.
func TestAppendResult(t *testing.T) {
	for _, tc := range []struct {
		name     string
		r        Result
		sameText bool
	}{
		{"all accepted", Result{Accepted: 2, Rejected: []events.Rejection{}, EventIDs: []string{"a", "0190b6a0-0000-7000-8000-000000000000"}}, true},
		{"partial", Result{Accepted: 1, Rejected: []events.Rejection{{Index: 1, Field: "event_type", Reason: `event_type is "required"`}}, EventIDs: []string{"x"}}, true},
		{"all rejected", Result{Rejected: []events.Rejection{{Index: 0, Reason: "r"}}, EventIDs: []string{}}, true},
		{"nil lists", Result{}, true},
		{"ids needing escapes", Result{Accepted: 3, Rejected: []events.Rejection{}, EventIDs: []string{`q"\`, "nl\n", "é\u2028"}}, true},
		{"ids with html characters", Result{Accepted: 1, Rejected: []events.Rejection{}, EventIDs: []string{"<a&b>"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := appendResult(nil, tc.r)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(tc.r)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, '\n')
			if tc.sameText && string(got) != string(want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			var back, wantBack Result
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatalf("%s: %v", got, err)
			}
			_ = json.Unmarshal(want, &wantBack)
			if !reflect.DeepEqual(back, wantBack) {
				t.Errorf("reads back as %+v, want %+v", back, wantBack)
			}
		})
	}
}

// An answer states its length, and one written after a longer one holds nothing of it
// (the buffer is reused).
func TestWriteResultStatesItsLength(t *testing.T) {
	var s Server
	long := Result{Accepted: 3, Rejected: []events.Rejection{{Index: 3, Reason: "event_type is required"}}, EventIDs: []string{"e-1", "e-2", "e-3"}}
	if status := s.writeResult(httptest.NewRecorder(), http.StatusOK, long); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	rec := httptest.NewRecorder()
	r := Result{Accepted: 1, Rejected: []events.Rejection{}, EventIDs: []string{"e-1"}}
	if status := s.writeResult(rec, http.StatusOK, r); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	body := rec.Body.String()
	if got := rec.Header().Get("Content-Length"); got != strconv.Itoa(len(body)) {
		t.Errorf("Content-Length %q for a body of %d bytes", got, len(body))
	}
	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
	if body != `{"accepted":1,"rejected":[],"event_ids":["e-1"]}`+"\n" {
		t.Errorf("body %s", body)
	}
}
