// Package v1alpha1 holds the analytics.shoal.dev/v1alpha1 API: Tenant, Pipeline, Dashboard
// and DataSource. It imports only apimachinery, so any client can use it.
// +kubebuilder:object:generate=true
// +groupName=analytics.shoal.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every Shoal custom resource.
	GroupVersion = schema.GroupVersion{Group: "analytics.shoal.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the Shoal types with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the Shoal types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion,
		&Tenant{}, &TenantList{},
		&Pipeline{}, &PipelineList{},
		&Dashboard{}, &DashboardList{},
		&DataSource{}, &DataSourceList{},
	)
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
