package bench

import (
	"context"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/testplatform"
)

// TestProcessAndFreshness runs both benchmarks small against real ClickHouse, S3 and
// Kafka: the processor must store every row (RunProcess fails otherwise), and every
// acknowledged event must be seen by the freshness queries.
func TestProcessAndFreshness(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ClickHouse, PostgreSQL, S3 and Kafka")
	}
	p := testplatform.Start(t, false)
	platform := &config.Platform{}
	p.Configure(platform)
	platform.Default()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("process", func(t *testing.T) {
		report, err := RunProcess(ctx, ProcessOptions{Platform: platform, Rows: 5000, BatchMaxRecords: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if report.Direct.Rows != 5000 || report.Processor.Rows != 5000 || report.Direct.Batches != 5 {
			t.Errorf("direct %+v, processor %+v; want 5000 rows each, the direct ones in 5 inserts", report.Direct, report.Processor)
		}
		if report.Processor.Batches < 5 || report.LakeObjects != report.Processor.Batches {
			t.Errorf("%d processor batches and %d lake objects; want at least 5 batches of at most 1000, one object each",
				report.Processor.Batches, report.LakeObjects)
		}
		if want := report.Processor.RowsPerSecond / report.Direct.RowsPerSecond; report.Ratio != want || want <= 0 {
			t.Errorf("ratio %v, want %v", report.Ratio, want)
		}
	})

	t.Run("freshness", func(t *testing.T) {
		report, err := RunFreshness(ctx, FreshnessOptions{
			Platform: platform, Rate: 1000, EventsPerRequest: 50, Duration: 2 * time.Second,
			BatchMaxWaits: []time.Duration{100 * time.Millisecond, 300 * time.Millisecond}, Drain: 20 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(report.Runs) != 2 {
			t.Fatalf("%d runs, want one per batch max wait", len(report.Runs))
		}
		for _, run := range report.Runs {
			if run.Acked != 2000 || run.Visible != run.Acked || run.Failed != 0 {
				t.Errorf("wait %vs: acked %d, visible %d, failed %d; want all 2000 acked and seen",
					run.BatchMaxWait, run.Acked, run.Visible, run.Failed)
			}
			// An event cannot be visible before its batch waited out: with a poll every
			// 50ms, p50 is at least a good part of the wait, and nothing takes 20s.
			if run.Freshness.P50 <= 0 || run.Freshness.Max >= 20 {
				t.Errorf("wait %vs: freshness %+v", run.BatchMaxWait, run.Freshness)
			}
		}
	})
}
