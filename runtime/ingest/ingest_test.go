package ingest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/internal/testbackends"
	"github.com/shoal-dev/shoal/runtime/events"
	"github.com/shoal-dev/shoal/runtime/ingest"
)

func TestRoundTrip(t *testing.T) {
	e := newEnv(t, envOptions{})
	key := e.addTenant("acme", "free")

	first := e.event("page_view", map[string]any{"path": "/pricing", "ms": 1234})
	first["event_id"] = "0190d3c8-1111-7000-8000-000000000001"
	resp := e.post(key, first, e.event("signup", nil))
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	res := resp.result(t)
	if res.Accepted != 2 || len(res.Rejected) != 0 || len(res.EventIDs) != 2 || res.EventIDs[0] != first["event_id"] || res.EventIDs[1] == "" {
		t.Fatalf("result %+v, want 2 accepted with the client's id kept and one assigned", res)
	}
	// The other header, and NDJSON compressed with gzip.
	ndjson := append(jsonLine(t, e.event("click", nil)), jsonLine(t, e.event("click", nil))...)
	resp = e.do(request{key: key, keyHeader: "X-Shoal-Key", body: bytes.NewReader(gzipped(t, ndjson)),
		headers: map[string]string{"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}})
	if resp.status != http.StatusOK || resp.result(t).Accepted != 2 {
		t.Fatalf("NDJSON with gzip and X-Shoal-Key: status %d: %s", resp.status, resp.body)
	}
	ids := append(res.EventIDs, resp.result(t).EventIDs...)

	records := e.readTopic("acme")
	if len(records) != len(ids) {
		t.Fatalf("the topic holds %d records, want %d", len(records), len(ids))
	}
	byID := map[string]events.Event{}
	for _, r := range records {
		if r.Topic != naming.Topic("acme") {
			t.Errorf("record on topic %s", r.Topic)
		}
		var ev events.Event
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			t.Fatalf("record value %s: %v", r.Value, err)
		}
		// Only the ids ingest assigned are marked so: the processor looks the others up.
		want := []kgo.RecordHeader{{Key: "content-type", Value: []byte(events.WireFormat)}}
		if ev.EventID != first["event_id"] {
			want = append(want, kgo.RecordHeader{Key: "shoal-id-assigned", Value: []byte("1")})
		}
		if !reflect.DeepEqual(r.Headers, want) {
			t.Errorf("record of %s: headers %v, want %v", ev.EventID, r.Headers, want)
		}
		if string(r.Key) != ev.EventID {
			t.Errorf("record key %q, event id %q", r.Key, ev.EventID)
		}
		byID[ev.EventID] = ev
	}
	for _, id := range ids {
		if _, ok := byID[id]; !ok {
			t.Errorf("accepted event %s is not on the topic", id)
		}
	}
	got := byID[first["event_id"].(string)]
	if got.EventType != "page_view" || got.UserID != "u-1" || got.ReceivedAt.IsZero() {
		t.Errorf("event read back: %+v", got)
	}
	var props map[string]any
	if err := json.Unmarshal(got.Properties, &props); err != nil || props["path"] != "/pricing" {
		t.Errorf("properties read back %s (%v)", got.Properties, err)
	}
}

func jsonLine(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t, envOptions{})
	key := e.addTenant("acme", "free")
	body := func() io.Reader { return bytes.NewReader(jsonArray(t, []map[string]any{e.event("x", nil)})) }

	for _, tc := range []struct {
		name string
		req  request
		want int
	}{
		{"bearer", request{key: key}, http.StatusOK},
		{"lower-case bearer", request{key: key, keyHeader: "Authorization", headers: map[string]string{"Authorization": "bearer " + key}}, http.StatusOK},
		{"X-Shoal-Key", request{key: key, keyHeader: "X-Shoal-Key"}, http.StatusOK},
		{"missing", request{}, http.StatusUnauthorized},
		{"empty bearer", request{headers: map[string]string{"Authorization": "Bearer "}}, http.StatusUnauthorized},
		{"basic auth", request{headers: map[string]string{"Authorization": "Basic " + key}}, http.StatusUnauthorized},
		{"unknown", request{key: key[:len(key)-4] + "AAAA"}, http.StatusUnauthorized},
		{"not a shoal key", request{key: "hunter2", keyHeader: "X-Shoal-Key"}, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.body = body()
			resp := e.do(tc.req)
			if resp.status != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.status, tc.want, resp.body)
			}
			if tc.want != http.StatusUnauthorized {
				return
			}
			// One message for every refused key: no oracle for which keys exist.
			p := resp.problem(t)
			if !strings.Contains(p.Detail, "a valid ingest key is required") {
				t.Errorf("detail %q", p.Detail)
			}
			if resp.header.Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate header")
			}
		})
	}
}

func TestSuspensionRevocationAndDeletionWithinTheCacheTTL(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := testContext(t)
	key := e.addTenant("acme", "free")
	if resp := e.post(key, e.event("x", nil)); resp.status != http.StatusOK {
		t.Fatalf("before suspension: %d %s", resp.status, resp.body)
	}

	if err := e.store.SetSuspended(ctx, "acme", true, "payment overdue"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(ingest.DefaultKeyCacheTTL)
	resp := e.post(key, e.event("x", nil))
	if resp.status != http.StatusForbidden {
		t.Fatalf("a TTL after suspension: %d %s", resp.status, resp.body)
	}
	if p := resp.problem(t); !strings.Contains(p.Detail, "payment overdue") {
		t.Errorf("the 403 does not give the reason: %q", p.Detail)
	}

	if err := e.store.SetSuspended(ctx, "acme", false, ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(ingest.DefaultKeyCacheTTL)
	if resp := e.post(key, e.event("x", nil)); resp.status != http.StatusOK {
		t.Fatalf("a TTL after resuming: %d %s", resp.status, resp.body)
	}

	// A new key revokes the old one.
	newKey, _, err := e.store.EnsureIngestKey(ctx, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(ingest.DefaultKeyCacheTTL)
	if resp := e.post(key, e.event("x", nil)); resp.status != http.StatusUnauthorized {
		t.Fatalf("the revoked key, a TTL later: %d %s", resp.status, resp.body)
	}
	if resp := e.post(newKey, e.event("x", nil)); resp.status != http.StatusOK {
		t.Fatalf("the new key: %d %s", resp.status, resp.body)
	}

	if err := e.store.MarkTenantDeleted(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(ingest.DefaultKeyCacheTTL)
	if resp := e.post(newKey, e.event("x", nil)); resp.status != http.StatusUnauthorized {
		t.Fatalf("a deleted tenant's key: %d %s", resp.status, resp.body)
	}
}

func TestSuspendedTenant(t *testing.T) {
	e := newEnv(t, envOptions{})
	key := e.addTenant("acme", "free")
	if err := e.store.SetSuspended(testContext(t), "acme", true, "terms of service"); err != nil {
		t.Fatal(err)
	}
	resp := e.post(key, e.event("x", nil))
	if resp.status != http.StatusForbidden {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	if p := resp.problem(t); !strings.Contains(p.Detail, "terms of service") {
		t.Errorf("detail %q", p.Detail)
	}
	if recs := e.readTopic("acme"); len(recs) != 0 {
		t.Errorf("a suspended tenant's events reached the topic: %d", len(recs))
	}
}

func TestRequestLimits(t *testing.T) {
	e := newEnv(t, envOptions{})
	key := e.addTenant("acme", "small") // 2048 bytes, 512 per event, 8 events per request
	valid := jsonArray(t, []map[string]any{e.event("x", nil)})
	big := jsonArray(t, []map[string]any{e.event("x", map[string]any{"pad": strings.Repeat("a", 3000)})})
	manyEvents := make([]map[string]any, 9)
	for i := range manyEvents {
		manyEvents[i] = e.event("x", nil)
	}

	for _, tc := range []struct {
		name    string
		body    io.Reader
		headers map[string]string
		want    int
	}{
		{"valid", bytes.NewReader(valid), nil, http.StatusOK},
		{"content length over the limit", bytes.NewReader(big), nil, http.StatusRequestEntityTooLarge},
		{"chunked body over the limit", io.MultiReader(bytes.NewReader(big)), nil, http.StatusRequestEntityTooLarge},
		{"gzip inflating over the limit", bytes.NewReader(gzipped(t, big)), map[string]string{"Content-Encoding": "gzip"}, http.StatusRequestEntityTooLarge},
		{"too many events", bytes.NewReader(jsonArray(t, manyEvents)), nil, http.StatusRequestEntityTooLarge},
		{"unsupported encoding", bytes.NewReader(valid), map[string]string{"Content-Encoding": "br"}, http.StatusUnsupportedMediaType},
		{"unsupported content type", bytes.NewReader(valid), map[string]string{"Content-Type": "text/csv"}, http.StatusUnsupportedMediaType},
		{"broken gzip", strings.NewReader("not gzip at all"), map[string]string{"Content-Encoding": "gzip"}, http.StatusBadRequest},
		{"not JSON", strings.NewReader("{{{"), nil, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(request{key: key, body: tc.body, headers: tc.headers})
			if resp.status != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.status, tc.want, resp.body)
			}
			if tc.want != http.StatusOK {
				resp.problem(t)
			}
		})
	}
}

func TestPartialSuccess(t *testing.T) {
	e := newEnv(t, envOptions{})
	key := e.addTenant("acme", "small")
	noType := e.event("", nil)
	delete(noType, "event_type")

	resp := e.post(key, e.event("a", nil), noType, e.event("c", nil))
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	res := resp.result(t)
	if res.Accepted != 2 || len(res.EventIDs) != 2 || len(res.Rejected) != 1 {
		t.Fatalf("result %+v, want 2 accepted and 1 rejected", res)
	}
	if r := res.Rejected[0]; r.Index != 1 || r.Field != "event_type" || r.Reason == "" {
		t.Errorf("rejection %+v, want index 1, field event_type", r)
	}
	var onTopic []string
	for _, r := range e.readTopic("acme") {
		onTopic = append(onTopic, string(r.Key))
	}
	slices.Sort(onTopic)
	want := slices.Sorted(slices.Values(res.EventIDs))
	if !slices.Equal(onTopic, want) {
		t.Errorf("on the topic %v, accepted %v", onTopic, want)
	}

	// Nothing valid: 400 with the same body shape, and nothing charged or written.
	resp = e.post(key, noType, noType)
	if resp.status != http.StatusBadRequest {
		t.Fatalf("all rejected: status %d: %s", resp.status, resp.body)
	}
	res = resp.result(t)
	if res.Accepted != 0 || len(res.Rejected) != 2 || res.EventIDs == nil || res.Rejected[1].Index != 1 {
		t.Errorf("all rejected: result %s", resp.body)
	}
	if got := resp.header.Get("RateLimit-Remaining"); got != "18" {
		t.Errorf("RateLimit-Remaining %q after 2 accepted events of a burst of 20", got)
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, envOptions{})
	key := e.addTenant("acme", "small") // 10 events/s, burst 20
	batch := func(n int) []map[string]any {
		evs := make([]map[string]any, n)
		for i := range evs {
			evs[i] = e.event("x", nil)
		}
		return evs
	}
	headers := func(r response) [3]string {
		return [3]string{r.header.Get("RateLimit-Limit"), r.header.Get("RateLimit-Remaining"), r.header.Get("RateLimit-Reset")}
	}

	resp := e.post(key, batch(8)...)
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	if got, want := headers(resp), [3]string{"20", "12", "1"}; got != want {
		t.Errorf("after 8 of 20: RateLimit headers %v, want %v", got, want)
	}
	resp = e.post(key, batch(8)...)
	if got, want := headers(resp), [3]string{"20", "4", "2"}; resp.status != http.StatusOK || got != want {
		t.Errorf("after 16 of 20: status %d, RateLimit headers %v, want %v", resp.status, got, want)
	}

	resp = e.post(key, batch(8)...)
	if resp.status != http.StatusTooManyRequests {
		t.Fatalf("over the burst: status %d: %s", resp.status, resp.body)
	}
	resp.problem(t)
	if got := resp.header.Get("Retry-After"); got != "1" { // 4 tokens there, 8 needed at 10/s
		t.Errorf("Retry-After %q, want 1", got)
	}
	if got, want := headers(resp), [3]string{"20", "4", "2"}; got != want {
		t.Errorf("on 429: RateLimit headers %v, want %v (a refused request costs nothing)", got, want)
	}

	e.clock.Advance(time.Second)
	if resp := e.post(key, batch(8)...); resp.status != http.StatusOK {
		t.Fatalf("a second later: status %d: %s", resp.status, resp.body)
	}
	if n := len(e.readTopic("acme")); n != 24 {
		t.Errorf("the topic holds %d events, want 24", n)
	}
}

func TestRequestLargerThanTheBurst(t *testing.T) {
	e := newEnv(t, envOptions{})
	key := e.addTenant("acme", "tight") // burst 2, 1000 events per request
	resp := e.post(key, e.event("x", nil), e.event("x", nil), e.event("x", nil))
	if resp.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	if p := resp.problem(t); !strings.Contains(p.Detail, "burst of 2") {
		t.Errorf("detail %q", p.Detail)
	}
	if resp := e.post(key, e.event("x", nil), e.event("x", nil)); resp.status != http.StatusOK {
		t.Fatalf("within the burst: status %d: %s", resp.status, resp.body)
	}
}

func TestKafkaDown(t *testing.T) {
	broker := testbackends.StartKafka(t)
	e := newEnv(t, envOptions{kafka: broker, ackTimeout: 500 * time.Millisecond})
	key := e.addTenant("acme", "free")
	if resp := e.post(key, e.event("before", nil)); resp.status != http.StatusOK {
		t.Fatalf("before the outage: %d %s", resp.status, resp.body)
	}
	if resp := e.get("/readyz"); resp.status != http.StatusOK {
		t.Fatalf("/readyz before the outage: %d", resp.status)
	}

	broker.Stop()
	lost := []map[string]any{e.event("during", nil), e.event("during", nil)}
	lost[0]["event_id"] = "0190d3c8-2222-7000-8000-000000000001"
	lost[1]["event_id"] = "0190d3c8-2222-7000-8000-000000000002"
	resp := e.post(key, lost...)
	if resp.status != http.StatusServiceUnavailable {
		t.Fatalf("with Kafka down: status %d: %s", resp.status, resp.body)
	}
	if p := resp.problem(t); p.Error == "" || bytes.Contains(resp.body, []byte(`"accepted"`)) {
		t.Errorf("503 body %s", resp.body)
	}
	if ra, err := strconv.Atoi(resp.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q", resp.header.Get("Retry-After"))
	}
	e.clock.Advance(time.Minute) // past the readiness cache
	if resp := e.get("/readyz"); resp.status != http.StatusServiceUnavailable {
		t.Errorf("/readyz with Kafka down: %d", resp.status)
	}

	broker.Start()
	marker := e.event("after", nil)
	marker["event_id"] = "0190d3c8-3333-7000-8000-000000000001"
	// The producer reconnects with backoff: the first attempts after the restart may
	// still be 503, which is the promise (never a silent drop).
	for attempt := 0; ; attempt++ {
		resp := e.post(key, marker)
		if resp.status == http.StatusOK {
			break
		}
		if resp.status != http.StatusServiceUnavailable || attempt == 100 {
			t.Fatalf("after the restart, attempt %d: status %d: %s", attempt, resp.status, resp.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Whatever the producer still held would be written by now.
	if err := e.producer.Flush(testContext(t)); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, r := range e.readTopic("acme") {
		keys[string(r.Key)] = true
	}
	if !keys[marker["event_id"].(string)] {
		t.Error("the event sent after the restart is not on the topic")
	}
	for _, ev := range lost {
		if keys[ev["event_id"].(string)] {
			t.Errorf("event %s of the request answered 503 is on the topic", ev["event_id"])
		}
	}
	e.clock.Advance(time.Minute)
	if resp := e.get("/readyz"); resp.status != http.StatusOK {
		t.Errorf("/readyz after the restart: %d", resp.status)
	}
}

func TestPostgresDown(t *testing.T) {
	pg := testbackends.StartPostgres(t)
	e := newEnv(t, envOptions{postgres: pg})
	key := e.addTenant("acme", "free")
	other := e.addTenant("other", "free")
	if resp := e.post(key, e.event("x", nil)); resp.status != http.StatusOK {
		t.Fatalf("warming the cache: %d %s", resp.status, resp.body)
	}

	pg.Stop(t)
	if resp := e.post(key, e.event("x", nil)); resp.status != http.StatusOK {
		t.Fatalf("cached key within the TTL: %d %s", resp.status, resp.body)
	}
	e.clock.Advance(ingest.DefaultKeyCacheTTL + time.Second)
	if resp := e.post(key, e.event("x", nil)); resp.status != http.StatusOK {
		t.Fatalf("cached key past the TTL, store down: %d %s", resp.status, resp.body)
	}
	resp := e.post(other, e.event("x", nil))
	if resp.status != http.StatusServiceUnavailable || resp.header.Get("Retry-After") == "" {
		t.Fatalf("uncached key, store down: %d (Retry-After %q) %s", resp.status, resp.header.Get("Retry-After"), resp.body)
	}
	resp.problem(t)
	e.clock.Advance(ingest.DefaultKeyCacheMaxStale)
	if resp := e.post(key, e.event("x", nil)); resp.status != http.StatusServiceUnavailable {
		t.Fatalf("cached key past TTL and max staleness, store down: %d %s", resp.status, resp.body)
	}

	pg.Start(t)
	// A failed lookup holds the next one off for a second, so an outage costs one
	// lookup a second rather than one per request.
	if resp := e.post(other, e.event("x", nil)); resp.status != http.StatusServiceUnavailable {
		t.Fatalf("store back, within a second of the last failure: %d %s", resp.status, resp.body)
	}
	e.clock.Advance(time.Second)
	if resp := e.post(other, e.event("x", nil)); resp.status != http.StatusOK {
		t.Fatalf("store back: %d %s", resp.status, resp.body)
	}
}

func TestEndpoints(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/healthz", http.StatusOK},
		{http.MethodGet, "/readyz", http.StatusOK},
		{http.MethodGet, "/metrics", http.StatusOK},
		{http.MethodGet, ingest.Path, http.StatusMethodNotAllowed},
		{http.MethodGet, "/nope", http.StatusNotFound},
	} {
		req, err := http.NewRequest(tc.method, e.url+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp := e.send(req); resp.status != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.status, tc.want)
		}
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, envOptions{})
	key := e.addTenant("acme", "free")
	noType := e.event("", nil)
	delete(noType, "event_type")
	e.post(key, e.event("a", nil), noType, e.event("b", nil))
	e.post(key, e.event("c", nil))
	e.post("", e.event("d", nil))

	counts := gather(t, e)
	for name, want := range map[string]float64{
		`shoal_ingest_requests_total{code="200",tenant="acme"}`:       2,
		`shoal_ingest_requests_total{code="401",tenant=""}`:           1,
		`shoal_ingest_events_total{outcome="accepted",tenant="acme"}`: 3,
		`shoal_ingest_events_total{outcome="rejected",tenant="acme"}`: 1,
		`shoal_ingest_produce_seconds_count`:                          2,
	} {
		if counts[name] != want {
			t.Errorf("%s = %v, want %v (all: %v)", name, counts[name], want, counts)
		}
	}
	resp := e.get("/metrics")
	if !bytes.Contains(resp.body, []byte("shoal_ingest_produce_seconds_bucket")) {
		t.Errorf("/metrics lacks the produce histogram:\n%s", resp.body)
	}
}

// gather flattens the registry into "name{label="value",...}" -> value, labels sorted by
// name as the registry gives them.
func gather(t *testing.T, e *env) map[string]float64 {
	t.Helper()
	families, err := e.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			name := f.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[name+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// Requests in flight at once, of different sizes and encodings, each with rejected events
// among the accepted ones, every answer and every record carry exactly their own events:
// the server reuses the memory of one request (body, events, records, answer) for the
// next, and none may be reused while another request or the producer still reads it.
func TestConcurrentRequestsKeepTheirOwnEvents(t *testing.T) {
	e := newEnv(t, envOptions{})
	key := e.addTenant("crowd", "unlimited")
	const senders, requests = 6, 15
	type sent struct{ props string }
	var mu sync.Mutex
	want := map[string]sent{} // event_id -> what was sent
	var wg sync.WaitGroup
	errs := make(chan error, senders*requests)
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range requests {
				n := 1 + (g*7+r*13)%60 // events in this request
				var evs []map[string]any
				mine := map[int]string{} // index -> event_id, for the accepted ones
				for i := range n {
					id := fmt.Sprintf("g%d-r%d-e%d", g, r, i)
					ev := e.event("t", map[string]any{"id": id, "pad": strings.Repeat("x", (g*31+r*17+i*5)%400)})
					ev["event_id"] = id
					if i%9 == 4 {
						delete(ev, "event_type") // rejected
					} else {
						mine[i] = id
					}
					evs = append(evs, ev)
				}
				body := jsonArray(t, evs)
				req := request{key: key, body: bytes.NewReader(body)}
				if r%3 == 0 {
					req.body, req.headers = bytes.NewReader(gzipped(t, body)), map[string]string{"Content-Encoding": "gzip"}
				}
				resp := e.do(req)
				if resp.status != http.StatusOK {
					errs <- fmt.Errorf("sender %d request %d: status %d: %s", g, r, resp.status, resp.body)
					return
				}
				res := resp.result(t)
				var ids []string
				for i := range n {
					if id, ok := mine[i]; ok {
						ids = append(ids, id)
					}
				}
				if !reflect.DeepEqual(res.EventIDs, ids) || len(res.Rejected) != n-len(ids) {
					errs <- fmt.Errorf("sender %d request %d: answer %+v, want ids %v", g, r, res, ids)
					return
				}
				mu.Lock()
				for _, ev := range evs {
					if _, ok := ev["event_type"]; ok {
						p, _ := json.Marshal(ev["properties"])
						want[ev["event_id"].(string)] = sent{props: string(p)}
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	records := e.readTopic("crowd")
	if len(records) != len(want) {
		t.Errorf("the topic holds %d records, want %d", len(records), len(want))
	}
	seen := map[string]bool{}
	for _, r := range records {
		ev, err := events.Unmarshal(r.Value)
		if err != nil {
			t.Fatalf("record %s: %v", r.Value, err)
		}
		w, ok := want[ev.EventID]
		switch {
		case !ok || seen[ev.EventID]:
			t.Errorf("record of %s: not sent, or twice", ev.EventID)
		case string(r.Key) != ev.EventID:
			t.Errorf("record of %s has the key %s", ev.EventID, r.Key)
		case string(ev.Properties) != w.props:
			t.Errorf("record of %s holds properties %s, want %s", ev.EventID, ev.Properties, w.props)
		}
		seen[ev.EventID] = true
	}
}
