// Package kubescheme builds the runtime.Scheme of every kind Shoal reads or writes.
package kubescheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/shoal-dev/shoal/api/v1alpha1"
)

// New returns a scheme with the built-in kinds and Shoal's.
func New() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return scheme, nil
}
