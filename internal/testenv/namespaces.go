package testenv

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/shoal-dev/shoal/api/v1alpha1"
)

// RunNamespaceController plays the namespace controller of kube-controller-manager, which
// envtest does not run, until ctx ends: a terminating namespace loses its Shoal objects and
// is finalized once no metadata finalizer holds it. Without it a deleted namespace would
// stay Terminating forever. A namespace with a metadata finalizer stays, as in a real
// cluster where something holds it.
func (e *Env) RunNamespaceController(ctx context.Context) error {
	clientset, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		return err
	}
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				e.finalizeNamespaces(ctx, clientset)
			}
		}
	}()
	return nil
}

func (e *Env) finalizeNamespaces(ctx context.Context, clientset kubernetes.Interface) {
	var list corev1.NamespaceList
	if err := e.Client.List(ctx, &list); err != nil {
		return
	}
	for i := range list.Items {
		ns := &list.Items[i]
		if ns.DeletionTimestamp == nil || len(ns.Finalizers) > 0 || len(ns.Spec.Finalizers) == 0 {
			continue
		}
		for _, obj := range []client.Object{&v1alpha1.Pipeline{}, &v1alpha1.Dashboard{}, &v1alpha1.DataSource{}} {
			_ = e.Client.DeleteAllOf(ctx, obj, client.InNamespace(ns.Name))
		}
		ns.Spec.Finalizers = nil
		_, _ = clientset.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{})
	}
}
