package metricquery

import (
	"fmt"
	"math"
)

// Diff says how r differs from want, "" when it does not: the same series in the same
// order, the same points, values equal up to a relative 1e-9 (sums and averages may
// differ in the last bits with the order of additions). Benchmarks and tests use it to
// check two ways of answering a query agree.
func (r Result) Diff(want Result) string {
	if len(r.Series) != len(want.Series) {
		return fmt.Sprintf("%d series, want %d", len(r.Series), len(want.Series))
	}
	for i := range want.Series {
		g, w := r.Series[i], want.Series[i]
		if fmt.Sprint(g.Group) != fmt.Sprint(w.Group) {
			return fmt.Sprintf("series %d is group %v, want %v", i, g.Group, w.Group)
		}
		if len(g.Points) != len(w.Points) {
			return fmt.Sprintf("series %d (%v): %d points, want %d", i, g.Group, len(g.Points), len(w.Points))
		}
		for j := range w.Points {
			gp, wp := g.Points[j], w.Points[j]
			if !gp.Time.Equal(wp.Time) {
				return fmt.Sprintf("series %d point %d at %s, want %s", i, j, gp.Time, wp.Time)
			}
			if !sameValues(gp.Values, wp.Values) {
				return fmt.Sprintf("series %d (%v) point %d (%s): %v, want %v", i, g.Group, j, wp.Time, gp.Values, wp.Values)
			}
		}
	}
	return ""
}

func sameValues(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || (x != y && math.Abs(x-y) > 1e-9*math.Max(math.Abs(x), math.Abs(y))) {
			return false
		}
	}
	return true
}
