package e2e_test

import (
	"strings"
	"testing"
)

// TestKustomizeInstall checks that the plain-manifest install (kubectl apply -k config)
// renders and is accepted by a real API server.
func TestKustomizeInstall(t *testing.T) {
	out := mustKubectl(t, "kustomize", "config")
	for _, want := range []string{
		"kind: CustomResourceDefinition", "name: tenants.analytics.shoal.dev",
		"kind: ClusterRole", "kind: Deployment", "kind: ServiceAccount",
		"name: shoal-platform-", "kind: PlatformConfig",
		"- operator\n        - --config\n        - /etc/shoal/platform.yaml",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl kustomize config lacks %q", want)
		}
	}
	// Server-side dry run needs the namespace to exist for real.
	mustKubectl(t, "create", "namespace", "shoal-system")
	defer mustKubectl(t, "delete", "namespace", "shoal-system", "--wait=false")
	applied := mustKubectl(t, "apply", "--dry-run=server", "-k", "config")
	for _, want := range []string{"deployment.apps/shoal-operator", "clusterrole.rbac.authorization.k8s.io/shoal-operator", "configmap/shoal-platform-"} {
		if !strings.Contains(applied, want) {
			t.Errorf("apply -k config did not apply %s:\n%s", want, applied)
		}
	}
}
