package naming

import (
	"regexp"
	"testing"
)

func TestTenantNamespace(t *testing.T) {
	for _, tc := range []struct{ tenant, want string }{
		{"acme", "tenant-acme"},
		{"a", "tenant-a"},
		{"big-co-2", "tenant-big-co-2"},
	} {
		if got := TenantNamespace(tc.tenant); got != tc.want {
			t.Errorf("TenantNamespace(%q) = %q, want %q", tc.tenant, got, tc.want)
		}
	}
}

func TestTenantLabels(t *testing.T) {
	got := TenantLabels("acme")
	if got[TenantLabel] != "acme" || got[ManagedByLabel] != ManagedByValue || len(got) != 2 {
		t.Errorf("TenantLabels(acme) = %v", got)
	}
	got[TenantLabel] = "changed"
	if TenantLabels("acme")[TenantLabel] != "acme" {
		t.Error("TenantLabels returns a shared map")
	}
}

func TestTenantFromNamespace(t *testing.T) {
	for _, tc := range []struct {
		namespace, tenant string
		ok                bool
	}{
		{"tenant-acme", "acme", true},
		{TenantNamespace("big-co"), "big-co", true},
		{"tenant-", "", false},
		{"default", "", false},
		{"kube-system", "", false},
	} {
		got, ok := TenantFromNamespace(tc.namespace)
		if got != tc.tenant || ok != tc.ok {
			t.Errorf("TenantFromNamespace(%q) = %q, %v; want %q, %v", tc.namespace, got, ok, tc.tenant, tc.ok)
		}
	}
}

func TestBackendNames(t *testing.T) {
	pattern := regexp.MustCompile(TopicPattern)
	for _, tc := range []struct {
		tenant, topic, database, prefix, secret string
	}{
		{"acme", "shoal-events-acme", "tenant_acme", "standard/tenant=acme/", "acme-ingest-key"},
		{"big-co-2", "shoal-events-big-co-2", "tenant_big_co_2", "standard/tenant=big-co-2/", "big-co-2-ingest-key"},
	} {
		if got := Topic(tc.tenant); got != tc.topic || !pattern.MatchString(got) {
			t.Errorf("Topic(%q) = %q (matches pattern: %v), want %q", tc.tenant, got, pattern.MatchString(got), tc.topic)
		}
		if got := Database(tc.tenant); got != tc.database {
			t.Errorf("Database(%q) = %q, want %q", tc.tenant, got, tc.database)
		}
		if got := LakePrefix("Standard", tc.tenant); got != tc.prefix {
			t.Errorf("LakePrefix(Standard, %q) = %q, want %q", tc.tenant, got, tc.prefix)
		}
		if got := IngestKeySecret(tc.tenant); got != tc.secret {
			t.Errorf("IngestKeySecret(%q) = %q, want %q", tc.tenant, got, tc.secret)
		}
		if got, ok := TenantFromTopic(Topic(tc.tenant)); !ok || got != tc.tenant {
			t.Errorf("TenantFromTopic(Topic(%q)) = %q, %v", tc.tenant, got, ok)
		}
		if got, want := ClickHouseSecret(tc.tenant), tc.tenant+"-clickhouse"; got != want {
			t.Errorf("ClickHouseSecret(%q) = %q, want %q", tc.tenant, got, want)
		}
	}
	for _, other := range []string{"shoal-events-", "events-acme", "__consumer_offsets"} {
		if tenant, ok := TenantFromTopic(other); ok && tenant == "" || other == "events-acme" && ok {
			t.Errorf("TenantFromTopic(%q) = %q, %v", other, tenant, ok)
		}
	}
	for _, other := range []string{"shoal-events-", "events-acme", "shoal-events-Acme", "__consumer_offsets"} {
		if pattern.MatchString(other) {
			t.Errorf("TopicPattern matches %q", other)
		}
	}
}

func TestPipelineNames(t *testing.T) {
	identifier := regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	for _, tc := range []struct{ pipeline, hash, table string }{
		{"revenue", "0123456789", "pipeline_revenue_0123456789"},
		{"daily-active.users", "abcdef0123", "pipeline_daily_active_users_abcdef0123"},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "0000000000", "pipeline_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_0000000000"},
	} {
		table, view := PipelineTable(tc.pipeline, tc.hash), PipelineView(tc.pipeline, tc.hash)
		if table != tc.table || view != tc.table+"_mv" {
			t.Errorf("PipelineTable/View(%q) = %q, %q, want %q", tc.pipeline, table, view, tc.table)
		}
		if !identifier.MatchString(table) || !identifier.MatchString(view) {
			t.Errorf("%q or %q is not a ClickHouse identifier", table, view)
		}
	}
	if g := ProcessorGroup("acme", false); g != "shoal-process" {
		t.Errorf("shared group %q", g)
	}
	if g := ProcessorGroup("acme", true); g != "shoal-process-acme" {
		t.Errorf("dedicated group %q", g)
	}
}
