package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	buckets := NewBuckets()
	b := buckets.Get("acme", Rate{PerSecond: 10, Burst: 20})
	for _, tc := range []struct {
		advance time.Duration
		n       int
		want    Taken
	}{
		{0, 15, Taken{OK: true, Limit: 20, Remaining: 5, Reset: 2}},
		{0, 10, Taken{RetryAfter: 1, Limit: 20, Remaining: 5, Reset: 2}},
		{500 * time.Millisecond, 10, Taken{OK: true, Limit: 20, Remaining: 0, Reset: 2}},
		{0, 21, Taken{Never: true, Limit: 20, Remaining: 0, Reset: 2}},
		{3 * time.Second, 0, Taken{OK: true, Limit: 20, Remaining: 20, Reset: 0}},
	} {
		now = now.Add(tc.advance)
		if got := b.Take(now, tc.n); got != tc.want {
			t.Errorf("take %d after %s: %+v, want %+v", tc.n, tc.advance, got, tc.want)
		}
	}
	// Another key has a bucket of its own; a changed rate applies to the existing one.
	if got := buckets.Get("globex", Rate{PerSecond: 10, Burst: 20}).Peek(now); got.Remaining != 20 {
		t.Errorf("another tenant's bucket: %+v", got)
	}
	if got := buckets.Get("acme", Rate{PerSecond: 1, Burst: 5}).Peek(now); got.Limit != 5 || got.Remaining != 5 {
		t.Errorf("after a plan change: %+v", got)
	}
	h := http.Header{}
	Taken{Limit: 20, Remaining: 5, Reset: 2}.SetHeaders(h)
	if h.Get("RateLimit-Limit") != "20" || h.Get("RateLimit-Remaining") != "5" || h.Get("RateLimit-Reset") != "2" {
		t.Errorf("headers %v", h)
	}
}

func TestRequestIDAndProblem(t *testing.T) {
	handler := WithRequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteProblem(w, r, Problem{
			Type: "query/invalid", Status: http.StatusBadRequest, Detail: "bad", RetryAfter: 3,
			InvalidParams: []InvalidParam{{Name: "limit", Reason: "too big"}},
		})
	}))
	for _, tc := range []struct {
		name, sent string
		keep       bool
	}{
		{"none", "", false},
		{"client's own", "req-123.abc", true},
		{"malformed", "bad id\nInjected: x", false},
		{"too long", string(make([]byte, 200)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			if tc.sent != "" {
				req.Header[RequestIDHeader] = []string{tc.sent}
			}
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			id := rec.Header().Get(RequestIDHeader)
			if tc.keep != (id == tc.sent) || !validRequestID.MatchString(id) {
				t.Errorf("request id %q for %q sent", id, tc.sent)
			}
			var body struct {
				Type, Title, Detail, Error, RequestID string
				Status                                int
				InvalidParams                         []InvalidParam
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if rec.Code != 400 || rec.Header().Get("Content-Type") != "application/problem+json" || rec.Header().Get("Retry-After") != "3" ||
				body.Type != ProblemTypeBase+"query/invalid" || body.Status != 400 || body.Title != "Bad Request" ||
				body.Detail != "bad" || body.Error != "bad" || body.RequestID != id ||
				len(body.InvalidParams) != 1 || body.InvalidParams[0].Name != "limit" {
				t.Errorf("answer %d %v %s", rec.Code, rec.Header(), rec.Body)
			}
		})
	}
}
