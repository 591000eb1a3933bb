package objects

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/config"
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

// RuntimeConfigSecret holds the platform config a Dedicated tenant's runtime pods read
// (config.Platform.RuntimeDocument). A Secret, not a ConfigMap: sections may hold inline
// credentials.
func RuntimeConfigSecret(t *v1alpha1.Tenant, doc []byte) *corev1.Secret {
	return secret(t, RuntimeConfigSecretName, map[string][]byte{RuntimeConfigFile: doc})
}

// RuntimeCredentialsSecret is the tenant namespace's copy of the platform's credentials
// Secret (RuntimeCredentials chooses its keys).
func RuntimeCredentialsSecret(t *v1alpha1.Tenant, data map[string][]byte) *corev1.Secret {
	return secret(t, RuntimeCredentialsSecretName, data)
}

// RuntimeCredentials are the keys of the platform's credentials Secret a tenant's runtime
// may have: all but the file the ClickHouse admin password is read from, since the
// tenant's pods reach the tenant's own installation with the tenant's credentials.
func RuntimeCredentials(platform *config.Platform, data map[string][]byte) map[string][]byte {
	adminPassword := ""
	if f := platform.ClickHouse.PasswordFile; f != "" && filepath.Dir(f) == filepath.Clean(platform.Runtime.CredentialsDir) {
		adminPassword = filepath.Base(f)
	}
	out := make(map[string][]byte, len(data))
	for k, v := range data {
		if k != adminPassword {
			out[k] = v
		}
	}
	return out
}

// RuntimeFilesHash is the hash of the runtime Secrets' content, for ConfigHashAnnotation.
func RuntimeFilesHash(secrets ...*corev1.Secret) string {
	h := sha256.New()
	for _, s := range secrets {
		keys := make([]string, 0, len(s.Data))
		for k := range s.Data {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		h.Write([]byte(s.Name + "\x00"))
		for _, k := range keys {
			h.Write([]byte(k + "\x00"))
			h.Write(s.Data[k])
			h.Write([]byte{0})
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
