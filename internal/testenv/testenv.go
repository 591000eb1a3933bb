// Package testenv starts what tests and the local demo run against: a real kube-apiserver
// and etcd (through envtest) with Shoal's CRDs and, when the upstream Strimzi and Altinity
// CRDs are beside the repository, those too, so every object Shoal writes is checked by
// the real schema. The binaries come from bin/ (make controlplane); nothing is downloaded.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/shoal-dev/shoal/internal/kubescheme"
	"github.com/shoal-dev/shoal/internal/repo"
)

// Env is a running API server.
type Env struct {
	// Root is the repository root.
	Root string
	// Bin holds the built binaries (kube-apiserver, etcd, kubectl, helm).
	Bin string
	// Config reaches the API server as cluster admin.
	Config *rest.Config
	// Client is a client with Shoal's scheme.
	Client client.Client
	// Kubeconfig is a kubeconfig file for the API server, for kubectl.
	Kubeconfig string
	// UpstreamCRDs lists the upstream CRD folders installed, empty when absent.
	UpstreamCRDs []string

	env *envtest.Environment
	dir string
}

// BinDir is where the built binaries are: $SHOAL_BIN, else $KUBEBUILDER_ASSETS, else
// <root>/bin. It fails, saying how to build them, when kube-apiserver is not there.
func BinDir(root string) (string, error) {
	dir := filepath.Join(root, "bin")
	for _, env := range []string{"SHOAL_BIN", "KUBEBUILDER_ASSETS"} {
		if v := os.Getenv(env); v != "" {
			dir = v
			break
		}
	}
	for _, name := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return "", fmt.Errorf("%s not found in %s: run `make controlplane` (it builds kube-apiserver, etcd and kubectl from their Go modules)", name, dir)
		}
	}
	return dir, nil
}

// upstreamCRDDirs lists the folders of upstream CRDs to install: $SHOAL_UPSTREAM_CRDS
// (a path list), else ../shared/crds/{strimzi,altinity} beside the repository if present.
func upstreamCRDDirs(root string) []string {
	if v := os.Getenv("SHOAL_UPSTREAM_CRDS"); v != "" {
		return filepath.SplitList(v)
	}
	var dirs []string
	for _, name := range []string{"strimzi", "altinity"} {
		dir := filepath.Join(root, "..", "shared", "crds", name)
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			dirs = append(dirs, dir)
		}
	}
	return dirs
}

// Start starts an API server with every CRD installed. Call Stop when done.
func Start() (*Env, error) {
	root, err := repo.Root()
	if err != nil {
		return nil, err
	}
	bin, err := BinDir(root)
	if err != nil {
		return nil, err
	}
	scheme, err := kubescheme.New()
	if err != nil {
		return nil, err
	}
	upstream := upstreamCRDDirs(root)
	e := &Env{
		Root:         root,
		Bin:          bin,
		UpstreamCRDs: upstream,
		env: &envtest.Environment{
			BinaryAssetsDirectory: bin,
			CRDDirectoryPaths:     append([]string{filepath.Join(root, "config", "crd", "bases")}, upstream...),
			ErrorIfCRDPathMissing: true,
			Scheme:                scheme,
		},
	}
	e.Config, err = e.env.Start()
	if err != nil {
		// Start may fail after the processes are up (installing a CRD, say): stop them,
		// or they outlive the test.
		return nil, errors.Join(fmt.Errorf("starting kube-apiserver and etcd from %s: %w", bin, err), e.env.Stop())
	}
	if err := e.finishStart(scheme); err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	return e, nil
}

func (e *Env) finishStart(scheme *runtime.Scheme) error {
	var err error
	e.Client, err = client.New(e.Config, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("creating client: %w", err)
	}
	user, err := e.env.AddUser(envtest.User{Name: "shoal-test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding admin user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	e.dir, err = os.MkdirTemp("", "shoal-testenv-")
	if err != nil {
		return err
	}
	e.Kubeconfig = filepath.Join(e.dir, "kubeconfig")
	return os.WriteFile(e.Kubeconfig, kubeconfig, 0o600)
}

// Stop stops the API server and etcd and removes their files.
func (e *Env) Stop() error {
	err := e.env.Stop()
	if e.dir != "" {
		err = errors.Join(err, os.RemoveAll(e.dir))
	}
	return err
}
