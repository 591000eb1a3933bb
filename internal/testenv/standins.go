package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/shoal-dev/shoal/internal/clickhouse"
)

// ErrNoInstallationCRD is returned by RunInstallationStandIn when the API server has no
// ClickHouseInstallation kind to watch.
var ErrNoInstallationCRD = errors.New("the Altinity ClickHouseInstallation CRD (clickhouse.altinity.com/v1) is not installed: " +
	"put the upstream CRDs in ../shared/crds/altinity beside the repository or name their folder in SHOAL_UPSTREAM_CRDS")

// The Altinity operator's kind, read as unstructured: no Go module of its types exists.
const (
	installationGroup   = "clickhouse.altinity.com"
	installationVersion = "v1"
	installationKind    = "ClickHouseInstallation"
)

// Installation status values the Altinity operator reports.
const (
	installationInProgress = "InProgress"
	installationCompleted  = "Completed"
	installationAborted    = "Aborted"
)

// standInPoll is how often the stand-ins look at the API server again.
const standInPoll = 200 * time.Millisecond

// standInUserFilePrefix marks the users.d files the installation stand-in owns, so it
// removes only its own.
const standInUserFilePrefix = "chi-"

// clickHouseUserName is what the stand-in accepts as a user name: it becomes an XML
// element and a file name.
var clickHouseUserName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// RunInstallationStandIn plays the Altinity ClickHouse operator, which is not run
// locally, until ctx ends. Every ClickHouseInstallation is served by the one ClickHouse
// server at clickhouseAddr (host:port, native protocol): each user the installation
// declares with `<user>/k8s_secret_password: <namespace>/<secret>/<key>` (or
// `<secret>/<key>` in the installation's namespace) gets a users.d file in usersDir with
// that Secret's password, on every database, and the installation's status becomes
// Completed with endpoint clickhouseAddr once the server lets that user log in. A changed
// Secret or installation is picked up on the next look. An installation that is being
// deleted, or whose namespace is, loses its users.
//
// Because one server stands in for every installation, two installations cannot declare
// the same user with different passwords: the older one keeps the user and the other is
// Aborted with an error saying so.
func (e *Env) RunInstallationStandIn(ctx context.Context, clickhouseAddr, usersDir string) error {
	gk := schema.GroupKind{Group: installationGroup, Kind: installationKind}
	if _, err := e.Client.RESTMapper().RESTMapping(gk, installationVersion); err != nil {
		if meta.IsNoMatchError(err) {
			return ErrNoInstallationCRD
		}
		return fmt.Errorf("looking up %s: %w", gk, err)
	}
	if st, err := os.Stat(usersDir); err != nil || !st.IsDir() {
		return fmt.Errorf("ClickHouse users.d directory %q: not a directory (%w)", usersDir, err)
	}
	s := &installationStandIn{
		client:   e.Client,
		addr:     clickhouseAddr,
		usersDir: usersDir,
		loaded:   map[types.NamespacedName]string{},
	}
	go poll(ctx, s.sync)
	return nil
}

// RunDeploymentStandIn plays the deployment controller and the kubelet, which are not run
// locally, until ctx ends: every Deployment reports its current generation observed and
// all its replicas (spec.replicas, 1 when unset) updated, ready and available, so whatever
// waits for a rollout sees it finish.
func (e *Env) RunDeploymentStandIn(ctx context.Context) error {
	go poll(ctx, func(ctx context.Context) { markDeploymentsAvailable(ctx, e.Client) })
	return nil
}

// poll runs fn every standInPoll until ctx ends.
func poll(ctx context.Context, fn func(context.Context)) {
	tick := time.NewTicker(standInPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			fn(ctx)
		}
	}
}

func markDeploymentsAvailable(ctx context.Context, c client.Client) {
	var list appsv1.DeploymentList
	if err := c.List(ctx, &list); err != nil {
		return
	}
	for i := range list.Items {
		d := &list.Items[i]
		if d.DeletionTimestamp != nil || deploymentAvailable(d) {
			continue
		}
		orig := d.DeepCopy()
		replicas := int32(1)
		if d.Spec.Replicas != nil {
			replicas = *d.Spec.Replicas
		}
		now := metav1.Now()
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation,
			Replicas:           replicas,
			UpdatedReplicas:    replicas,
			ReadyReplicas:      replicas,
			AvailableReplicas:  replicas,
			Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable",
					Message: "Deployment has minimum availability.", LastUpdateTime: now, LastTransitionTime: now},
				{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable",
					Message: "All replicas are available.", LastUpdateTime: now, LastTransitionTime: now},
			},
		}
		// A conflict or a deleted Deployment is retried or dropped on the next look.
		_ = c.Status().Patch(ctx, d, client.MergeFrom(orig))
	}
}

// deploymentAvailable reports whether the stand-in has nothing left to do for d.
func deploymentAvailable(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	if st.ObservedGeneration != d.Generation || st.Replicas != want || st.UpdatedReplicas != want ||
		st.ReadyReplicas != want || st.AvailableReplicas != want {
		return false
	}
	available, progressing := false, false
	for _, c := range st.Conditions {
		switch {
		case c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue:
			available = true
		case c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionTrue:
			progressing = true
		}
	}
	return available && progressing
}

type installationStandIn struct {
	client   client.Client
	addr     string
	usersDir string
	// loaded maps an installation to the users.d content the server was seen to accept
	// (every user logged in), so the login check runs only after a change.
	loaded map[types.NamespacedName]string
}

// installationUser is one user an installation declares, with the file serving it.
type installationUser struct {
	name     string
	owner    types.NamespacedName
	password string // kept in memory for the login check only; the file holds its hash
	content  []byte
}

// installation is what one look found for one ClickHouseInstallation.
type installation struct {
	obj   *unstructured.Unstructured
	key   types.NamespacedName
	users []installationUser
	err   error
}

func (s *installationStandIn) sync(ctx context.Context) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(schema.GroupVersionKind{Group: installationGroup, Version: installationVersion, Kind: installationKind + "List"})
	if err := s.client.List(ctx, list); err != nil {
		return
	}
	live, err := s.liveNamespaces(ctx)
	if err != nil {
		return
	}
	items := list.Items
	// The oldest installation keeps a user that two declare.
	sort.SliceStable(items, func(i, j int) bool {
		ti, tj := items[i].GetCreationTimestamp(), items[j].GetCreationTimestamp()
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return items[i].GetNamespace()+"/"+items[i].GetName() < items[j].GetNamespace()+"/"+items[j].GetName()
	})

	owners := map[string]installationUser{}
	var insts []*installation
	seen := map[types.NamespacedName]bool{}
	for i := range items {
		obj := &items[i]
		key := types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}
		if obj.GetDeletionTimestamp() != nil || !live[obj.GetNamespace()] {
			continue
		}
		seen[key] = true
		inst := &installation{obj: obj, key: key}
		inst.users, inst.err = s.declaredUsers(ctx, obj)
		for _, u := range inst.users {
			if inst.err != nil {
				break
			}
			if prev, ok := owners[u.name]; ok && string(prev.content) != string(u.content) {
				inst.err = fmt.Errorf("user %s is already declared with another password by installation %s: "+
					"the local stand-in serves every installation from one ClickHouse server", u.name, prev.owner)
			}
		}
		if inst.err == nil {
			for _, u := range inst.users {
				if _, ok := owners[u.name]; !ok {
					owners[u.name] = u
				}
			}
		}
		insts = append(insts, inst)
	}
	for key := range s.loaded {
		if !seen[key] {
			delete(s.loaded, key)
		}
	}

	fileErr := s.writeUserFiles(owners)
	for _, inst := range insts {
		if inst.err == nil {
			inst.err = fileErr
		}
		s.report(ctx, inst)
	}
}

// liveNamespaces lists the namespaces that exist and are not terminating: an
// installation elsewhere is on its way out, as its pods would be.
func (s *installationStandIn) liveNamespaces(ctx context.Context) (map[string]bool, error) {
	var list corev1.NamespaceList
	if err := s.client.List(ctx, &list); err != nil {
		return nil, err
	}
	live := make(map[string]bool, len(list.Items))
	for _, ns := range list.Items {
		if ns.DeletionTimestamp == nil {
			live[ns.Name] = true
		}
	}
	return live, nil
}

// declaredUsers reads spec.configuration.users, in the flat (`user/key: value`) or nested
// (`user: {key: value}`) form the Altinity operator accepts, and the password of each user
// with a k8s_secret_password.
func (s *installationStandIn) declaredUsers(ctx context.Context, obj *unstructured.Unstructured) ([]installationUser, error) {
	raw, _, err := unstructured.NestedMap(obj.Object, "spec", "configuration", "users")
	if err != nil {
		return nil, fmt.Errorf("spec.configuration.users: %w", err)
	}
	settings := map[string]any{}
	flatten("", raw, settings)
	names := make([]string, 0, len(settings))
	for key := range settings {
		if user, ok := strings.CutSuffix(key, "/k8s_secret_password"); ok {
			names = append(names, user)
		}
	}
	sort.Strings(names)
	owner := types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}
	users := make([]installationUser, 0, len(names))
	for _, name := range names {
		if !clickHouseUserName.MatchString(name) || name == "default" {
			return nil, fmt.Errorf("user %q: the stand-in serves users named like identifiers, other than the server's admin default", name)
		}
		ref, ok := settings[name+"/k8s_secret_password"].(string)
		if !ok {
			return nil, fmt.Errorf("%s/k8s_secret_password: want a string <namespace>/<secret>/<key>", name)
		}
		password, err := s.secretValue(ctx, obj.GetNamespace(), ref)
		if err != nil {
			return nil, fmt.Errorf("%s/k8s_secret_password: %w", name, err)
		}
		users = append(users, installationUser{name: name, owner: owner, password: password, content: installationUserFile(owner, name, password)})
	}
	return users, nil
}

// flatten turns nested maps into slash-joined keys.
func flatten(prefix string, in map[string]any, out map[string]any) {
	for k, v := range in {
		key := k
		if prefix != "" {
			key = prefix + "/" + k
		}
		if m, ok := v.(map[string]any); ok {
			flatten(key, m, out)
			continue
		}
		out[key] = v
	}
}

// secretValue reads a Secret key named <namespace>/<secret>/<key>, or <secret>/<key> in
// namespace.
func (s *installationStandIn) secretValue(ctx context.Context, namespace, ref string) (string, error) {
	parts := strings.Split(ref, "/")
	switch len(parts) {
	case 2:
		parts = append([]string{namespace}, parts...)
	case 3:
	default:
		return "", fmt.Errorf("%q: want <namespace>/<secret>/<key>", ref)
	}
	var secret corev1.Secret
	if err := s.client.Get(ctx, types.NamespacedName{Namespace: parts[0], Name: parts[1]}, &secret); err != nil {
		return "", fmt.Errorf("reading Secret %s/%s: %w", parts[0], parts[1], err)
	}
	value, ok := secret.Data[parts[2]]
	if !ok || len(value) == 0 {
		return "", fmt.Errorf("key %s of Secret %s/%s is missing or empty", parts[2], parts[0], parts[1])
	}
	return string(value), nil
}

// installationUserFile is a users.d file for a user of a dedicated installation. Unlike a
// Shared tenant's user (clickhouse.UserFile) it is not limited to one database: an
// installation's user owns its server, creates its databases and reads them all.
func installationUserFile(owner types.NamespacedName, user, password string) []byte {
	return fmt.Appendf(nil, `<?xml version="1.0"?>
<!-- User %[2]s of ClickHouseInstallation %[1]s, written by the local stand-in for the Altinity operator. -->
<yandex>
  <users>
    <%[2]s>
      <password_sha256_hex>%[3]s</password_sha256_hex>
      <networks><ip>::/0</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </%[2]s>
  </users>
</yandex>
`, owner, user, clickhouse.PasswordSHA256Hex(password))
}

// writeUserFiles makes the stand-in's users.d files exactly the users given.
func (s *installationStandIn) writeUserFiles(users map[string]installationUser) error {
	var errs []error
	for name, u := range users {
		errs = append(errs, writeFileAtomic(filepath.Join(s.usersDir, standInUserFilePrefix+name+".xml"), u.content))
	}
	stale, err := filepath.Glob(filepath.Join(s.usersDir, standInUserFilePrefix+"*.xml"))
	errs = append(errs, err)
	for _, path := range stale {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), standInUserFilePrefix), ".xml")
		if _, ok := users[name]; !ok {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// writeFileAtomic replaces path with content unless it holds it already; the server
// re-reads users.d when a file changes, and must never read half of one. The temp name
// does not end in .xml, so the server never merges it.
func writeFileAtomic(path string, content []byte) error {
	if old, err := os.ReadFile(path); err == nil && string(old) == string(content) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // no-op after the rename
	_, err = tmp.Write(content)
	err = errors.Join(err, tmp.Close())
	// The server may run as another user; the file holds a hash, never a password.
	err = errors.Join(err, os.Chmod(tmp.Name(), 0o644))
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// report sets the installation's status: Aborted with the error, InProgress until the
// server lets every user log in, then Completed with the endpoint.
func (s *installationStandIn) report(ctx context.Context, inst *installation) {
	state, errMsg := installationCompleted, ""
	if inst.err != nil {
		state, errMsg = installationAborted, inst.err.Error()
		delete(s.loaded, inst.key)
	} else if digest := usersDigest(inst.users); s.loaded[inst.key] != digest {
		if err := s.canLogIn(ctx, inst.users); err != nil {
			state = installationInProgress
		} else {
			s.loaded[inst.key] = digest
		}
	}
	modified := inst.obj.DeepCopy()
	status, _, _ := unstructured.NestedMap(modified.Object, "status")
	want := map[string]any{}
	for k, v := range status {
		want[k] = v
	}
	want["status"] = state
	want["generation"] = inst.obj.GetGeneration()
	if state == installationCompleted {
		want["endpoint"] = s.addr
		want["endpoints"] = []any{s.addr}
	}
	if errMsg != "" {
		want["error"] = errMsg
		want["errors"] = []any{errMsg}
	} else {
		delete(want, "error")
		delete(want, "errors")
	}
	if reflect.DeepEqual(status, want) {
		return
	}
	if err := unstructured.SetNestedMap(modified.Object, want, "status"); err != nil {
		return
	}
	// A failed patch (a conflict, a deleted object) is retried or dropped on the next look.
	_ = s.client.Status().Patch(ctx, modified, client.MergeFrom(inst.obj))
}

// usersDigest identifies the users.d content of an installation.
func usersDigest(users []installationUser) string {
	var b strings.Builder
	for _, u := range users {
		b.Write(u.content)
	}
	return b.String()
}

// canLogIn checks that the server accepts each user: it re-reads users.d on its own a few
// seconds after a change, and the first connection after Completed must work.
func (s *installationStandIn) canLogIn(ctx context.Context, users []installationUser) error {
	for _, u := range users {
		if err := clickHouseLogin(ctx, s.addr, u.name, u.password); err != nil {
			return err
		}
	}
	return nil
}

// clickHouseLogin connects as user and runs SELECT 1.
func clickHouseLogin(ctx context.Context, addr, user, password string) error {
	conn, err := ch.Open(&ch.Options{
		Addr:        []string{addr},
		Auth:        ch.Auth{Username: user, Password: password},
		DialTimeout: time.Second,
	})
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var one uint8
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}
