package httpapi

import "testing"

func TestDashboardLinks(t *testing.T) {
	for _, tc := range []struct{ base, id, dash, share string }{
		{"https://analytics.example", "id1", "https://analytics.example/api/v1/dashboards/id1", "https://analytics.example/api/v1/public/dashboards/id1"},
		{"https://analytics.example/", "id1", "https://analytics.example/api/v1/dashboards/id1", "https://analytics.example/api/v1/public/dashboards/id1"},
		{"https://analytics.example", "a/b", "https://analytics.example/api/v1/dashboards/a%2Fb", "https://analytics.example/api/v1/public/dashboards/a%2Fb"},
		{"", "id1", "", ""},
		{"https://analytics.example", "", "", ""},
	} {
		if got := DashboardURL(tc.base, tc.id); got != tc.dash {
			t.Errorf("DashboardURL(%q, %q) = %q, want %q", tc.base, tc.id, got, tc.dash)
		}
		if got := PublicDashboardURL(tc.base, tc.id); got != tc.share {
			t.Errorf("PublicDashboardURL(%q, %q) = %q, want %q", tc.base, tc.id, got, tc.share)
		}
	}
}
