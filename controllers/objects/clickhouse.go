package objects

import (
	"net"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/naming"
)

// ClickHouseInstallationGVK is the Altinity operator's kind. No Go module of its types
// can be had, so the few fields Shoal writes are built as unstructured content; the
// upstream CRD in the test API server checks them.
var ClickHouseInstallationGVK = schema.GroupVersionKind{Group: "clickhouse.altinity.com", Version: "v1", Kind: "ClickHouseInstallation"}

// ClickHouseClusterName is the cluster inside a Dedicated tenant's installation.
const ClickHouseClusterName = "events"

// ClickHouseInstallation builds a Dedicated tenant's installation, sized from
// spec.dedicated.clickhouse: shards x replicas, each replica with a data volume of the
// requested size.
func ClickHouseInstallation(t *v1alpha1.Tenant) *unstructured.Unstructured {
	ch := v1alpha1.DedicatedClickHouse{}
	if t.Spec.Dedicated != nil {
		ch = t.Spec.Dedicated.ClickHouse
	}
	meta := childMeta(t, naming.ClickHouseInstallation)
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"defaults": map[string]any{
				"templates": map[string]any{"dataVolumeClaimTemplate": "data"},
			},
			"configuration": map[string]any{
				// The one user the operator and the tenant's runtime connect as; its
				// password is read from the tenant's ClickHouse Secret by the Altinity
				// operator, so it never appears in the installation.
				"users": map[string]any{
					naming.DedicatedClickHouseUser + "/k8s_secret_password": meta.Namespace + "/" + naming.ClickHouseSecret(t.Name) + "/" + ClickHouseSecretPassword,
					naming.DedicatedClickHouseUser + "/networks/ip":         []any{"::/0"},
					naming.DedicatedClickHouseUser + "/profile":             "default",
				},
				"clusters": []any{map[string]any{
					"name": ClickHouseClusterName,
					"layout": map[string]any{
						"shardsCount":   int64(ch.Shards),
						"replicasCount": int64(ch.Replicas),
					},
				}},
			},
			"templates": map[string]any{
				"volumeClaimTemplates": []any{map[string]any{
					"name": "data",
					"spec": map[string]any{
						"accessModes": []any{"ReadWriteOnce"},
						"resources": map[string]any{
							"requests": map[string]any{"storage": ch.Storage.String()},
						},
					},
				}},
			},
		},
	}}
	u.SetGroupVersionKind(ClickHouseInstallationGVK)
	u.SetName(meta.Name)
	u.SetNamespace(meta.Namespace)
	u.SetLabels(meta.Labels)
	u.SetOwnerReferences(meta.OwnerReferences)
	return u
}

// ClickHouseNativePort is the native protocol port of ClickHouse installations.
const ClickHouseNativePort = "9000"

// ClickHouseInstallationAddress is host:port of the installation's native protocol, from
// the endpoint the Altinity operator reports; empty until it reports one. An endpoint
// with a port keeps it.
func ClickHouseInstallationAddress(u *unstructured.Unstructured) string {
	endpoint, _, _ := unstructured.NestedString(u.Object, "status", "endpoint")
	if endpoint == "" {
		return ""
	}
	if _, _, err := net.SplitHostPort(endpoint); err == nil {
		return endpoint
	}
	return net.JoinHostPort(endpoint, ClickHouseNativePort)
}

// ClickHouseInstallationCompleted reads whether the Altinity operator finished
// reconciling the installation, and its status text for messages.
func ClickHouseInstallationCompleted(u *unstructured.Unstructured) (bool, string) {
	status, _, _ := unstructured.NestedString(u.Object, "status", "status")
	return status == "Completed", status
}
