package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// table writes name-value lines aligned, as the tenants report does.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer) table { return table{tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)} }

func (t table) line(name, format string, args ...any) {
	_, _ = fmt.Fprintf(t.tw, "%s\t"+format+"\n", append([]any{name}, args...)...)
}

func (t table) flush() error { return t.tw.Flush() }

// verdict says whether a figure met its target.
func verdict(met bool) string {
	if met {
		return "met"
	}
	return "NOT met"
}

// WriteText writes the report for people.
func (r *IngestReport) WriteText(w io.Writer) error {
	t := newTable(w)
	t.line("broker", "%s", r.Broker)
	t.line("cpus", "%d (load average %.1f at the start, %.1f at the end)", r.CPUs, r.LoadAverage.Start, r.LoadAverage.End)
	t.line("events", "%d bytes on the wire on average, %d properties", r.EventBytes, r.EventProperties)
	t.line("requests", "%d events, %d bytes of JSON array", r.EventsPerRequest, r.RequestBytes)
	t.line("producer batching", "%s", r.ProducerBatching)
	t.line("topic", "%d partitions", r.Partitions)
	t.line("in flight", "%d requests / produce calls", r.Concurrency)
	t.line("rounds", "%d x %s per side, alternating", r.Rounds, seconds(r.PhaseSeconds))
	t.line("raw franz-go producer", "%.0f events/s (%d in %s), %.2f µs CPU per event", r.Raw.EventsPerSecond, r.Raw.Events, seconds(r.Raw.Seconds), r.Raw.CPUMicrosPerEvent)
	t.line("HTTP floor", "%.0f events/s (%d in %s), %.2f µs CPU per event", r.Floor.EventsPerSecond, r.Floor.Events, seconds(r.Floor.Seconds), r.Floor.CPUMicrosPerEvent)
	t.line("ingest API", "%.0f events/s (%d in %s), %.2f µs CPU per event", r.Ingest.EventsPerSecond, r.Ingest.Events, seconds(r.Ingest.Seconds), r.Ingest.CPUMicrosPerEvent)
	t.line("ratio", "%.2fx (target >= %.1fx: %s)", r.Ratio, r.Target, verdict(r.Ratio >= r.Target))
	t.line("HTTP floor ratio", "%.2fx (the most any HTTP ingest could reach here: reads the body, produces prepared records)", r.FloorRatio)
	t.line("ingest of floor", "%.2fx (what authentication, decoding, validation and encoding leave of the floor)", r.IngestOfFloor)
	t.line("CPU ratio", "%.2fx (raw CPU per event / ingest CPU per event, client and in-process broker included)", r.CPURatio)
	return t.flush()
}

// WriteText writes the report for people.
func (r *ProcessReport) WriteText(w io.Writer) error {
	t := newTable(w)
	t.line("broker", "%s", r.Broker)
	t.line("clickhouse", "%s (%s)", r.ClickHouse, r.ClickHouseVersion)
	t.line("cpus", "%d (load average %.1f at the start, %.1f at the end)", r.CPUs, r.LoadAverage.Start, r.LoadAverage.End)
	ids := "assigned at ingest: looked up only where a commit cannot rule them out"
	if r.ClientIDs {
		ids = "the clients': every one looked up before inserting"
	}
	t.line("rows", "%d events, %d bytes on the wire on average, %d properties", r.Processor.Rows, r.EventBytes, r.EventProperties)
	t.line("event ids", "%s", ids)
	t.line("processor batching", "max %d records, %d bytes, %s wait; %d partitions", r.BatchMaxRecords, r.BatchMaxBytes, time.Duration(r.BatchMaxWait*float64(time.Second)), r.Partitions)
	t.line("direct insert", "%.0f rows/s (%d inserts of up to %d rows, %d at a time, in %s)",
		r.Direct.RowsPerSecond, r.Direct.Batches, r.BatchMaxRecords, r.DirectConcurrency, seconds(r.Direct.Seconds))
	t.line("processor", "%.0f rows/s (%d batches, %d lake objects, in %s; joining the group took %s, not timed)",
		r.Processor.RowsPerSecond, r.Processor.Batches, r.LakeObjects, seconds(r.Processor.Seconds), seconds(r.JoinSeconds))
	t.line("ratio", "%.2fx (target >= %.1fx: %s)", r.Ratio, r.Target, verdict(r.Ratio >= r.Target))
	return t.flush()
}

// WriteText writes the report for people: the setup, then one line per batching.
func (r *FreshnessReport) WriteText(w io.Writer) error {
	t := newTable(w)
	t.line("broker", "%s", r.Broker)
	t.line("clickhouse", "%s (%s)", r.ClickHouse, r.ClickHouseVersion)
	t.line("cpus", "%d (load average %.1f at the start, %.1f at the end)", r.CPUs, r.LoadAverage.Start, r.LoadAverage.End)
	t.line("load", "%d events/s for %s, %d events (%d bytes) per request, events of %d bytes with %d properties",
		r.Rate, seconds(r.DurationSeconds), r.EventsPerRequest, r.RequestBytes, r.EventBytes, r.EventProperties)
	t.line("processor batching", "max %d records, %d bytes; %d partitions", r.BatchMaxRecords, r.BatchMaxBytes, r.Partitions)
	t.line("visible", "at the end of the first query returning the event; a query every %s", seconds(r.PollSeconds))
	if err := t.flush(); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	t = newTable(w)
	t.line("batch max wait", "sent/s\tacked\tvisible\tfailed\tlate\trows/batch\tack p50\tack p99\tfresh p50\tfresh p99\tfresh max\ttarget p99 <= %s", seconds(r.TargetP99))
	for _, run := range r.Runs {
		t.line(time.Duration(run.BatchMaxWait*float64(time.Second)).String(), "%.0f\t%d\t%d\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s",
			run.SentRate, run.Acked, run.Visible, run.Failed, run.Late, run.RowsPerBatch,
			millis(run.Ack.P50), millis(run.Ack.P99),
			millis(run.Freshness.P50), millis(run.Freshness.P99), millis(run.Freshness.Max),
			verdict(run.Visible == run.Acked && run.Failed == 0 && run.Freshness.P99 <= r.TargetP99))
	}
	return t.flush()
}

// millis formats seconds to the millisecond, for latencies well under a second.
func millis(s float64) string { return fmt.Sprintf("%.3fs", s) }
