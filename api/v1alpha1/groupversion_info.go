// Package v1alpha1 holds the analytics.shoal.dev/v1alpha1 API: Tenant, Pipeline, Dashboard
// and DataSource.
// +kubebuilder:object:generate=true
// +groupName=analytics.shoal.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every Shoal custom resource.
	GroupVersion = schema.GroupVersion{Group: "analytics.shoal.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the Shoal types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the Shoal types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
