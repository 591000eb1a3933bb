package testenv_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/shoal-dev/shoal/internal/testbackends"
	"github.com/shoal-dev/shoal/internal/testenv"
)

// ClickHouse re-reads users.d every few seconds; an API server round trip is quicker.
const converge = 60 * time.Second

func startEnv(t *testing.T) *testenv.Env {
	t.Helper()
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	})
	return env
}

func installation(namespace, name string, users map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "clickhouse.altinity.com/v1",
		"kind":       "ClickHouseInstallation",
		"metadata":   map[string]any{"namespace": namespace, "name": name},
		"spec": map[string]any{
			"configuration": map[string]any{
				"users":    users,
				"clusters": []any{map[string]any{"name": "events", "layout": map[string]any{"shardsCount": int64(1), "replicasCount": int64(1)}}},
			},
		},
	}}
	return u
}

func createNamespace(t *testing.T, ctx context.Context, c client.Client, name string) {
	t.Helper()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
}

func putSecret(t *testing.T, ctx context.Context, c client.Client, namespace, name, key, value string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	_, err := controllerutil.CreateOrUpdate(ctx, c, s, func() error {
		s.Data = map[string][]byte{key: []byte(value)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// installationStatus reads status.status, status.endpoint and status.error.
func installationStatus(ctx context.Context, c client.Client, namespace, name string) (state, endpoint, errMsg string, err error) {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("clickhouse.altinity.com/v1")
	u.SetKind("ClickHouseInstallation")
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, u); err != nil {
		return "", "", "", err
	}
	state, _, _ = unstructured.NestedString(u.Object, "status", "status")
	endpoint, _, _ = unstructured.NestedString(u.Object, "status", "endpoint")
	errMsg, _, _ = unstructured.NestedString(u.Object, "status", "error")
	return state, endpoint, errMsg, nil
}

func waitCompleted(t *testing.T, ctx context.Context, c client.Client, namespace, name, addr string) {
	t.Helper()
	testenv.Eventually(t, converge, func() error {
		state, endpoint, errMsg, err := installationStatus(ctx, c, namespace, name)
		if err != nil {
			return err
		}
		if state != "Completed" || endpoint != addr {
			return fmt.Errorf("installation %s/%s: status %q endpoint %q error %q, want Completed at %s", namespace, name, state, endpoint, errMsg, addr)
		}
		return nil
	})
}

func login(ctx context.Context, addr, user, password string) error {
	conn, err := ch.Open(&ch.Options{Addr: []string{addr}, Auth: ch.Auth{Username: user, Password: password}, DialTimeout: time.Second})
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// The installation's user owns its server: it creates databases.
	return conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+user+"_db")
}

func TestInstallationStandIn(t *testing.T) {
	env := startEnv(t)
	server := testbackends.StartClickHouse(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := env.RunInstallationStandIn(ctx, server.Addr, server.UsersDir); err != nil {
		t.Fatal(err)
	}
	c := env.Client

	t.Run("password from a Secret, then a changed Secret", func(t *testing.T) {
		createNamespace(t, ctx, c, "tenant-one")
		putSecret(t, ctx, c, "tenant-one", "one-clickhouse", "password", "first-password")
		chi := installation("tenant-one", "clickhouse", map[string]any{
			"one/k8s_secret_password": "tenant-one/one-clickhouse/password",
			"one/networks/ip":         []any{"::/0"},
			"one/profile":             "default",
		})
		if err := c.Create(ctx, chi); err != nil {
			t.Fatal(err)
		}
		waitCompleted(t, ctx, c, "tenant-one", "clickhouse", server.Addr)
		// Completed means the user logs in at once.
		if err := login(ctx, server.Addr, "one", "first-password"); err != nil {
			t.Fatalf("logging in as one after Completed: %v", err)
		}
		if err := login(ctx, server.Addr, "one", "wrong-password"); err == nil {
			t.Fatal("a wrong password logged in")
		}

		putSecret(t, ctx, c, "tenant-one", "one-clickhouse", "password", "second-password")
		testenv.Eventually(t, converge, func() error { return login(ctx, server.Addr, "one", "second-password") })
		waitCompleted(t, ctx, c, "tenant-one", "clickhouse", server.Addr)
	})

	t.Run("nested users and a Secret in the installation's namespace", func(t *testing.T) {
		createNamespace(t, ctx, c, "tenant-two")
		putSecret(t, ctx, c, "tenant-two", "two-clickhouse", "pw", "two-password")
		chi := installation("tenant-two", "clickhouse", map[string]any{
			"two": map[string]any{"k8s_secret_password": "two-clickhouse/pw"},
		})
		if err := c.Create(ctx, chi); err != nil {
			t.Fatal(err)
		}
		waitCompleted(t, ctx, c, "tenant-two", "clickhouse", server.Addr)
		if err := login(ctx, server.Addr, "two", "two-password"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("missing Secret aborts until it appears", func(t *testing.T) {
		createNamespace(t, ctx, c, "tenant-three")
		chi := installation("tenant-three", "clickhouse", map[string]any{
			"three/k8s_secret_password": "tenant-three/three-clickhouse/password",
		})
		if err := c.Create(ctx, chi); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, converge, func() error {
			state, _, errMsg, err := installationStatus(ctx, c, "tenant-three", "clickhouse")
			if err != nil {
				return err
			}
			if state != "Aborted" || !strings.Contains(errMsg, "three-clickhouse") {
				return fmt.Errorf("status %q error %q, want Aborted naming the Secret", state, errMsg)
			}
			return nil
		})
		putSecret(t, ctx, c, "tenant-three", "three-clickhouse", "password", "three-password")
		waitCompleted(t, ctx, c, "tenant-three", "clickhouse", server.Addr)
		if err := login(ctx, server.Addr, "three", "three-password"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a user another installation holds with another password", func(t *testing.T) {
		createNamespace(t, ctx, c, "tenant-four")
		putSecret(t, ctx, c, "tenant-four", "four-clickhouse", "password", "not-ones-password")
		chi := installation("tenant-four", "clickhouse", map[string]any{
			"one/k8s_secret_password": "tenant-four/four-clickhouse/password",
		})
		if err := c.Create(ctx, chi); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, converge, func() error {
			state, _, errMsg, err := installationStatus(ctx, c, "tenant-four", "clickhouse")
			if err != nil {
				return err
			}
			if state != "Aborted" || !strings.Contains(errMsg, "tenant-one/clickhouse") {
				return fmt.Errorf("status %q error %q, want Aborted naming tenant-one/clickhouse", state, errMsg)
			}
			return nil
		})
		if err := login(ctx, server.Addr, "one", "second-password"); err != nil {
			t.Fatalf("the older installation lost its user: %v", err)
		}
	})

	t.Run("a deleted installation loses its user", func(t *testing.T) {
		chi := installation("tenant-two", "clickhouse", nil)
		if err := c.Delete(ctx, chi); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, converge, func() error {
			if err := login(ctx, server.Addr, "two", "two-password"); err == nil {
				return errors.New("user two still logs in")
			}
			return nil
		})
		if _, err := os.Stat(filepath.Join(server.UsersDir, "chi-two.xml")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("chi-two.xml: %v, want it removed", err)
		}
	})
}

func TestInstallationStandInNeedsTheCRD(t *testing.T) {
	// Only Strimzi's CRDs, or none: no ClickHouseInstallation kind.
	t.Setenv("SHOAL_UPSTREAM_CRDS", t.TempDir())
	env := startEnv(t)
	err := env.RunInstallationStandIn(context.Background(), "127.0.0.1:9000", t.TempDir())
	if !errors.Is(err, testenv.ErrNoInstallationCRD) {
		t.Fatalf("got %v, want ErrNoInstallationCRD", err)
	}
}

func TestDeploymentStandIn(t *testing.T) {
	env := startEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := env.RunDeploymentStandIn(ctx); err != nil {
		t.Fatal(err)
	}
	c := env.Client
	createNamespace(t, ctx, c, "apps")

	tests := []struct {
		name     string
		replicas *int32
		want     int32
	}{
		{"three", int32Ptr(3), 3},
		{"unset", nil, 1},
		{"zero", int32Ptr(0), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			labels := map[string]string{"app": tt.name}
			d := &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: tt.name},
				Spec: appsv1.DeploymentSpec{
					Replicas: tt.replicas,
					Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
					},
				},
			}
			if err := c.Create(ctx, d); err != nil {
				t.Fatal(err)
			}
			waitAvailable(t, ctx, c, d, tt.want)

			// A new generation is observed too.
			if err := c.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
				t.Fatal(err)
			}
			d.Spec.Replicas = int32Ptr(tt.want + 2)
			if err := c.Update(ctx, d); err != nil {
				t.Fatal(err)
			}
			waitAvailable(t, ctx, c, d, tt.want+2)
		})
	}
}

func int32Ptr(n int32) *int32 { return &n }

func waitAvailable(t *testing.T, ctx context.Context, c client.Client, d *appsv1.Deployment, want int32) {
	t.Helper()
	testenv.Eventually(t, converge, func() error {
		got := &appsv1.Deployment{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(d), got); err != nil {
			return err
		}
		st := got.Status
		if st.ObservedGeneration != got.Generation || st.Replicas != want || st.ReadyReplicas != want ||
			st.AvailableReplicas != want || st.UpdatedReplicas != want {
			return fmt.Errorf("deployment %s at generation %d: status %+v, want %d replicas available", got.Name, got.Generation, st, want)
		}
		for _, cond := range st.Conditions {
			if cond.Type == appsv1.DeploymentAvailable && cond.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("deployment %s has no Available condition: %+v", got.Name, st.Conditions)
	})
}
