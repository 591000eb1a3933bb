package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/httpapi"
	"github.com/shoal-dev/shoal/internal/metastore"
	"github.com/shoal-dev/shoal/internal/naming"
)

// Keys of a dashboard's share Secret.
const (
	ShareTokenKey = "token"
	ShareURLKey   = "url"
)

const shareSecretSuffix = "-share"

// shareSecretName is the Secret holding a public dashboard's share token:
// "<dashboard>-share", with a long name cut and made unique by a hash so the result stays
// a valid Secret name.
func shareSecretName(dashboard string) string {
	if len(dashboard)+len(shareSecretSuffix) <= validation.DNS1123SubdomainMaxLength {
		return dashboard + shareSecretSuffix
	}
	sum := sha256.Sum256([]byte(dashboard))
	hash := hex.EncodeToString(sum[:4])
	keep := validation.DNS1123SubdomainMaxLength - len(shareSecretSuffix) - len(hash) - 1
	return strings.TrimRight(dashboard[:keep], ".-") + "-" + hash + shareSecretSuffix
}

// shareSecret holds a public dashboard's share token and link. It is controlled by the
// dashboard, so it goes with it.
func shareSecret(d *v1alpha1.Dashboard, tenant, name, token, link string) *corev1.Secret {
	data := map[string][]byte{ShareTokenKey: []byte(token)}
	if link != "" {
		data[ShareURLKey] = []byte(link)
	}
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       d.Namespace,
			Labels:          naming.TenantLabels(tenant),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, v1alpha1.GroupVersion.WithKind("Dashboard"))},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
}

// shareSecretTakenError: a Secret of the share Secret's name exists and is not the
// dashboard's. It is never overwritten.
type shareSecretTakenError struct{ namespace, name string }

func (e *shareSecretTakenError) Error() string {
	return fmt.Sprintf("Secret %s/%s exists and does not belong to this dashboard: delete or rename it so the share token can be kept there", e.namespace, e.name)
}

// syncShare keeps, for a public dashboard, a share Secret whose token opens it, and
// removes the Secret of a private one. It returns the Secret's name, empty when private.
//
// The store keeps only a hash of the token and hands the token out once, when it mints
// it. A token that is lost (the Secret deleted, or the operator stopped between the
// store's write and the Secret's) cannot be read back, so the dashboard is synced private
// and then public again, which mints a new one; the old link stops working.
func (r *DashboardReconciler) syncShare(ctx context.Context, d *v1alpha1.Dashboard, tenant string, spec metastore.DashboardSpec, res metastore.SyncResult) (string, error) {
	name := shareSecretName(d.Name)
	current, err := r.readShareSecret(ctx, d, name)
	if err != nil {
		return "", err
	}
	if !spec.Public {
		if current != nil {
			if err := r.Client.Delete(ctx, current); err != nil && !apierrors.IsNotFound(err) {
				return "", fromBackend(backendKubernetes, fmt.Errorf("deleting share Secret %s: %w", name, err))
			}
		}
		return "", nil
	}
	token := res.ShareToken
	if token == "" && current != nil {
		opens, err := r.tokenOpens(ctx, string(current.Data[ShareTokenKey]), res.ID)
		if err != nil {
			return "", err
		}
		if opens {
			token = string(current.Data[ShareTokenKey])
		}
	}
	if token == "" {
		if token, err = r.mintShareToken(ctx, tenant, d, spec); err != nil {
			return "", err
		}
	}
	want := shareSecret(d, tenant, name, token, httpapi.PublicDashboardURL(r.BaseURL, token))
	if current != nil && secretDataEqual(current.Data, want.Data) {
		return name, nil
	}
	if err := apply(ctx, r.Client, want); err != nil {
		return "", fromBackend(backendKubernetes, err)
	}
	return name, nil
}

// readShareSecret reads the share Secret past the cache: taking a Secret written a
// moment ago for missing would mint yet another token. nil when there is none; an error
// when a Secret of that name is someone else's.
func (r *DashboardReconciler) readShareSecret(ctx context.Context, d *v1alpha1.Dashboard, name string) (*corev1.Secret, error) {
	reader := client.Reader(r.Client)
	if r.APIReader != nil {
		reader = r.APIReader
	}
	s := &corev1.Secret{}
	if err := reader.Get(ctx, types.NamespacedName{Namespace: d.Namespace, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fromBackend(backendKubernetes, fmt.Errorf("reading share Secret %s: %w", name, err))
	}
	if !metav1.IsControlledBy(s, d) {
		return nil, &shareSecretTakenError{namespace: d.Namespace, name: name}
	}
	return s, nil
}

// tokenOpens reports whether token opens the dashboard id.
func (r *DashboardReconciler) tokenOpens(ctx context.Context, token, id string) (bool, error) {
	if token == "" {
		return false, nil
	}
	got, err := r.Store.GetDashboardByShareToken(ctx, token)
	switch {
	case errors.Is(err, metastore.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fromBackend(backendMetastore, err)
	}
	return got.ID == id, nil
}

// mintShareToken gets a new token for a public dashboard whose token is lost, by syncing
// it private (which drops the token) and public again (which mints one).
func (r *DashboardReconciler) mintShareToken(ctx context.Context, tenant string, d *v1alpha1.Dashboard, spec metastore.DashboardSpec) (string, error) {
	private := spec
	private.Public = false
	if _, err := r.Store.SyncDashboard(ctx, tenant, managedBy(d), private); err != nil {
		return "", fromBackend(backendMetastore, err)
	}
	res, err := r.Store.SyncDashboard(ctx, tenant, managedBy(d), spec)
	if err != nil {
		return "", fromBackend(backendMetastore, err)
	}
	if res.ShareToken == "" {
		return "", fmt.Errorf("the metadata store minted no share token for public dashboard %s", res.ID)
	}
	return res.ShareToken, nil
}

func secretDataEqual(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || string(v) != string(w) {
			return false
		}
	}
	return true
}
