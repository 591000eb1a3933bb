package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/runtime/events"
)

func TestSampleEventsAreTheStatedSize(t *testing.T) {
	evs := SampleEvents(1000, time.Now(), func(int) string { return "s-00001" })
	size, err := wireSize(evs)
	if err != nil {
		t.Fatal(err)
	}
	// The targets are stated for events of about 300 bytes with 8 properties.
	if size < 270 || size > 350 {
		t.Errorf("events are %d bytes on the wire on average, want about 300", size)
	}
	for i, e := range evs {
		var props map[string]any
		if err := json.Unmarshal(e.Properties, &props); err != nil {
			t.Fatalf("event %d: properties: %v", i, err)
		}
		if len(props) != 8 {
			t.Fatalf("event %d has %d properties, want 8", i, len(props))
		}
	}
	ids := map[string]bool{}
	for _, e := range evs {
		ids[e.EventID] = true
	}
	if len(ids) != len(evs) {
		t.Errorf("%d distinct event ids among %d events", len(ids), len(evs))
	}
}

// Both request bodies must be what the ingest API accepts in full: a body it rejected
// events of would make the benchmark measure rejections.
func TestRequestBodiesDecodeInFull(t *testing.T) {
	now := time.Now()
	evs := SampleEvents(100, now, func(int) string { return "s-1" })
	plain, err := requestBody(evs)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := newBodyTemplate(evs)
	for _, tc := range []struct {
		name        string
		body        []byte
		wantSession string
		keepsIDs    bool
	}{
		{"throughput body", plain, "s-1", true},
		{"freshness body 0", tmpl.body(0), "r-0000000", false},
		{"freshness body 1234567", tmpl.body(1234567), "r-1234567", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			batch, err := events.Decode(bytes.NewReader(tc.body), "application/json", "", events.DefaultLimits(), now, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(batch.Rejected) > 0 || len(batch.Events) != len(evs) {
				t.Fatalf("%d accepted, rejected %+v; want all %d accepted", len(batch.Events), batch.Rejected, len(evs))
			}
			for i, e := range batch.Events {
				if e.SessionID != tc.wantSession {
					t.Fatalf("event %d has session %q, want %q", i, e.SessionID, tc.wantSession)
				}
				if tc.keepsIDs && e.EventID != evs[i].EventID {
					t.Fatalf("event %d has id %q, want %q", i, e.EventID, evs[i].EventID)
				}
				if !bytes.Equal(e.Properties, evs[i].Properties) {
					t.Fatalf("event %d has properties %s, want %s", i, e.Properties, evs[i].Properties)
				}
			}
		})
	}
	if a, b := len(tmpl.body(0)), len(tmpl.body(9999999)); a != b {
		t.Errorf("freshness bodies differ in size: %d and %d bytes", a, b)
	}
}

func TestSpreads(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	reqs := []request{
		// Acked after 10ms; 60 of its events show 500ms after the ack, 40 at 1s.
		{sent: at(0), acked: at(10), ok: true, seen: 100, shown: []shown{{60, at(510)}, {40, at(1010)}}},
		// Failed: neither its latency nor anything it showed counts.
		{sent: at(0), acked: at(5000), ok: false, shown: []shown{{100, at(100)}}},
		// Seen before this process noted its ack: no delay, not a negative one.
		{sent: at(20), acked: at(30), ok: true, seen: 1, shown: []shown{{1, at(25)}}},
	}
	fresh, ack := spreads(reqs)
	if want := (Latency{P50: 0.5, P90: 1, P99: 1, Max: 1}); fresh != want {
		t.Errorf("freshness = %+v, want %+v", fresh, want)
	}
	if want := (Latency{P50: 0.01, P90: 0.01, P99: 0.01, Max: 0.01}); ack != want {
		t.Errorf("ack = %+v, want %+v", ack, want)
	}
}

func TestPollerDone(t *testing.T) {
	p := &sessionPoller{perRequest: 100}
	for _, tc := range []struct {
		name string
		r    request
		want bool
	}{
		{"not answered yet", request{}, false},
		{"answered, partly seen", request{acked: time.Now(), ok: true, seen: 99}, false},
		{"answered, all seen", request{acked: time.Now(), ok: true, seen: 100}, true},
		{"failed", request{acked: time.Now(), ok: false}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.done(&tc.r); got != tc.want {
				t.Errorf("done = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReportsText(t *testing.T) {
	var b strings.Builder
	ingest := &IngestReport{Broker: BrokerInProcess, EventBytes: 325, EventsPerRequest: 100, RequestBytes: 28551,
		ProducerBatching: producerBatching(100), Raw: Throughput{EventsPerSecond: 1000}, Floor: Throughput{EventsPerSecond: 900},
		Ingest: Throughput{EventsPerSecond: 850}, Ratio: 0.85, FloorRatio: 0.9, IngestOfFloor: 0.944, Target: IngestTarget}
	if err := ingest.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	proc := &ProcessReport{BatchMaxRecords: 10000, Direct: RowsThroughput{RowsPerSecond: 100}, Processor: RowsThroughput{RowsPerSecond: 40},
		Ratio: 0.4, Target: ProcessTarget}
	if err := proc.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	fresh := &FreshnessReport{TargetP99: FreshnessTargetP99, Runs: []FreshnessRun{
		{BatchMaxWait: 0.5, Acked: 10, Visible: 10, Freshness: Latency{P50: 0.4, P99: 0.9}},
		{BatchMaxWait: 1, Acked: 10, Visible: 9, Freshness: Latency{P50: 0.4, P99: 0.9}},
	}}
	if err := fresh.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"in-process kfake", "325 bytes", "28551 bytes", "one ProduceSync of 100 records",
		"0.85x (target >= 0.8x: met)", "0.90x (the most any HTTP ingest", "0.94x (what authentication",
		"0.40x (target >= 0.5x: NOT met)", "max 10000 records", "up to 10000 rows",
		"500ms", "0.900s", "1s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	// A run that lost events fails its target whatever its p99.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; !strings.HasSuffix(last, "NOT met") {
		t.Errorf("a run with events not visible should not meet the target: %q", last)
	}
	if prev := lines[len(lines)-2]; !strings.HasSuffix(prev, " met") || strings.HasSuffix(prev, "NOT met") {
		t.Errorf("a complete run under the target should meet it: %q", prev)
	}
}

// TestRunIngest runs the ingest comparison briefly against an in-process broker: both
// sides must move events, and the ratio is theirs.
func TestRunIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker and an ingest server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	report, err := RunIngest(ctx, IngestOptions{Phase: 300 * time.Millisecond, Rounds: 1, Warmup: 100 * time.Millisecond, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if report.Broker != BrokerInProcess {
		t.Errorf("broker = %q, want the in-process one", report.Broker)
	}
	if report.Raw.Events <= 0 || report.Floor.Events <= 0 || report.Ingest.Events <= 0 {
		t.Fatalf("raw %d events, floor %d, ingest %d: every side should have moved some", report.Raw.Events, report.Floor.Events, report.Ingest.Events)
	}
	if report.Raw.Events%100 != 0 || report.Floor.Events%100 != 0 || report.Ingest.Events%100 != 0 {
		t.Errorf("events are counted per request of 100: raw %d, floor %d, ingest %d", report.Raw.Events, report.Floor.Events, report.Ingest.Events)
	}
	for _, r := range []struct {
		name      string
		got, want float64
	}{
		{"ratio", report.Ratio, report.Ingest.EventsPerSecond / report.Raw.EventsPerSecond},
		{"floor ratio", report.FloorRatio, report.Floor.EventsPerSecond / report.Raw.EventsPerSecond},
		{"ingest of floor", report.IngestOfFloor, report.Ingest.EventsPerSecond / report.Floor.EventsPerSecond},
	} {
		if r.got != r.want {
			t.Errorf("%s = %v, want %v", r.name, r.got, r.want)
		}
	}
}
