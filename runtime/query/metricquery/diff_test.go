package metricquery

import (
	"strings"
	"testing"
	"time"
)

func TestResultDiff(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	result := func(group string, at time.Time, v float64) Result {
		return Result{Series: []Series{{Group: map[string]string{"plan": group}, Points: []Point{{Time: at, Values: map[string]float64{"n": v}}}}}}
	}
	base := result("pro", t0, 3)
	for _, tc := range []struct {
		name string
		got  Result
		want string // a part of the difference; "" for none
	}{
		{"equal", result("pro", t0, 3), ""},
		{"last bits", result("pro", t0, 3*(1+1e-12)), ""},
		{"value", result("pro", t0, 4), "point 0"},
		{"group", result("team", t0, 3), "group map[plan:team]"},
		{"time", result("pro", t0.Add(time.Hour), 3), "at 2026-11-01 01:00"},
		{"series", Result{}, "0 series, want 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.got.Diff(base)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("Diff = %q, want one containing %q", got, tc.want)
			}
		})
	}
}
