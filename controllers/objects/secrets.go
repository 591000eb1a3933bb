package objects

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/naming"
)

// Keys of the tenant Secrets.
const (
	// IngestKeySecretKey holds the plaintext ingest write key.
	IngestKeySecretKey = "key"

	ClickHouseSecretUser     = "user"
	ClickHouseSecretPassword = "password"
	ClickHouseSecretDatabase = "database"
	ClickHouseSecretAddress  = "address"
)

// IngestKeySecret holds the tenant's ingest write key: the only place its plaintext is
// kept.
func IngestKeySecret(t *v1alpha1.Tenant, key string) *corev1.Secret {
	return secret(t, naming.IngestKeySecret(t.Name), map[string][]byte{IngestKeySecretKey: []byte(key)})
}

// ClickHouseCredentials are what the tenant's runtime needs to reach its database.
type ClickHouseCredentials struct {
	User, Password, Database, Address string
}

// ClickHouseSecret holds the tenant's ClickHouse credentials.
func ClickHouseSecret(t *v1alpha1.Tenant, c ClickHouseCredentials) *corev1.Secret {
	return secret(t, naming.ClickHouseSecret(t.Name), map[string][]byte{
		ClickHouseSecretUser:     []byte(c.User),
		ClickHouseSecretPassword: []byte(c.Password),
		ClickHouseSecretDatabase: []byte(c.Database),
		ClickHouseSecretAddress:  []byte(c.Address),
	})
}

func secret(t *v1alpha1.Tenant, name string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: childMeta(t, name),
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}
