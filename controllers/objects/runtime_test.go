package objects

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/config"
)

func dedicatedTenant() *v1alpha1.Tenant {
	return &v1alpha1.Tenant{
		ObjectMeta: metav1.ObjectMeta{Name: "globex", UID: "u1"},
		Spec: v1alpha1.TenantSpec{
			Isolation: v1alpha1.IsolationDedicated,
			Dedicated: &v1alpha1.DedicatedSpec{
				ClickHouse: v1alpha1.DedicatedClickHouse{Shards: 2, Replicas: 3, Storage: resource.MustParse("50Gi")},
				Runtime:    v1alpha1.DedicatedRuntime{IngestReplicas: 3, ProcessReplicas: 4, QueryReplicas: 2},
			},
		},
	}
}

func testRuntime() config.Runtime {
	p := &config.Platform{}
	p.Default()
	return p.Runtime
}

func TestRuntimeDeployment(t *testing.T) {
	tenant := dedicatedTenant()
	files := RuntimeFiles{Hash: "abc", Credentials: true}
	for _, tc := range []struct {
		role         RuntimeRole
		wantReplicas *int32
		wantPorts    []string
		wantArgs     []string
		wantMounts   []string
	}{
		{RoleIngest, nil, []string{"http"},
			[]string{"ingest", "--config", "/etc/shoal/platform.yaml", "--listen", ":8080"},
			[]string{"config:/etc/shoal", "credentials:/etc/shoal/secrets"}},
		{RoleProcess, ptr(int32(4)), []string{"health"},
			[]string{"process", "--config", "/etc/shoal/platform.yaml", "--tenant", "globex", "--clickhouse-credentials", "/etc/shoal/clickhouse", "--listen", ":8081"},
			[]string{"config:/etc/shoal", "credentials:/etc/shoal/secrets", "clickhouse:/etc/shoal/clickhouse"}},
		{RoleQuery, nil, []string{"http"},
			[]string{"query", "--config", "/etc/shoal/platform.yaml", "--tenant", "globex", "--clickhouse-credentials", "/etc/shoal/clickhouse", "--listen", ":8080"},
			[]string{"config:/etc/shoal", "credentials:/etc/shoal/secrets", "clickhouse:/etc/shoal/clickhouse"}},
	} {
		t.Run(string(tc.role), func(t *testing.T) {
			d := RuntimeDeployment(tenant, tc.role, testRuntime(), files)
			if d.Name != "shoal-"+string(tc.role) || d.Namespace != "tenant-globex" || !metav1.IsControlledBy(d, tenant) {
				t.Errorf("metadata = %+v", d.ObjectMeta)
			}
			switch {
			case tc.wantReplicas == nil && d.Spec.Replicas != nil:
				t.Errorf("replicas = %d, want unset (the autoscaler owns it)", *d.Spec.Replicas)
			case tc.wantReplicas != nil && (d.Spec.Replicas == nil || *d.Spec.Replicas != *tc.wantReplicas):
				t.Errorf("replicas = %v, want %d", d.Spec.Replicas, *tc.wantReplicas)
			}
			sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("selector %v does not match the pod labels %v", d.Spec.Selector, d.Spec.Template.Labels)
			}
			c := d.Spec.Template.Spec.Containers[0]
			if !slices.Equal(c.Args, tc.wantArgs) || c.Image != "shoal:latest" {
				t.Errorf("container = %s %v, want args %v", c.Image, c.Args, tc.wantArgs)
			}
			var mounts []string
			volumes := map[string]string{}
			for _, v := range d.Spec.Template.Spec.Volumes {
				volumes[v.Name] = v.Secret.SecretName
			}
			for _, m := range c.VolumeMounts {
				mounts = append(mounts, m.Name+":"+m.MountPath)
				if volumes[m.Name] == "" || !m.ReadOnly {
					t.Errorf("mount %s: volume %q, read-only %v", m.Name, volumes[m.Name], m.ReadOnly)
				}
			}
			if !slices.Equal(mounts, tc.wantMounts) {
				t.Errorf("mounts = %v, want %v", mounts, tc.wantMounts)
			}
			if volumes["clickhouse"] != "" && volumes["clickhouse"] != "globex-clickhouse" {
				t.Errorf("ClickHouse credentials from Secret %s", volumes["clickhouse"])
			}
			if d.Spec.Template.Annotations[ConfigHashAnnotation] != "abc" {
				t.Errorf("pod annotations = %v, want the files' hash", d.Spec.Template.Annotations)
			}
			if p := c.ReadinessProbe.HTTPGet.Port.StrVal; p != tc.wantPorts[0] {
				t.Errorf("readiness probe on port %s, want %s", p, tc.wantPorts[0])
			}
			var ports []string
			for _, p := range c.Ports {
				ports = append(ports, p.Name)
			}
			if !slices.Equal(ports, tc.wantPorts) {
				t.Errorf("ports = %v, want %v", ports, tc.wantPorts)
			}
			sc := c.SecurityContext
			if sc == nil || *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
				t.Errorf("container security context is not restricted: %+v", sc)
			}
			if c.Resources.Requests.Cpu().IsZero() {
				t.Error("no CPU request: the autoscaler needs one")
			}
		})
	}
}

func TestRuntimeAutoscalerAndBudget(t *testing.T) {
	tenant := dedicatedTenant()
	for _, tc := range []struct {
		role     RuntimeRole
		min, max int32
	}{
		{RoleIngest, 3, 12},
		{RoleQuery, 2, 8},
	} {
		hpa := RuntimeAutoscaler(tenant, tc.role)
		if *hpa.Spec.MinReplicas != tc.min || hpa.Spec.MaxReplicas != tc.max || hpa.Spec.ScaleTargetRef.Name != RuntimeName(tc.role) {
			t.Errorf("%s autoscaler = min %d max %d target %s", tc.role, *hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas, hpa.Spec.ScaleTargetRef.Name)
		}
		pdb := RuntimeDisruptionBudget(tenant, tc.role)
		if pdb.Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("%s budget maxUnavailable = %v", tc.role, pdb.Spec.MaxUnavailable)
		}
		svc := RuntimeService(tenant, tc.role)
		if svc.Spec.Selector["app.kubernetes.io/component"] != string(tc.role) || svc.Spec.Ports[0].Port != 80 {
			t.Errorf("%s service = %+v", tc.role, svc.Spec)
		}
	}
	if got := RuntimeEndpoint(tenant, RoleIngest); got != "http://shoal-ingest.tenant-globex.svc" {
		t.Errorf("endpoint = %s", got)
	}
	if RoleProcess.Serves() || !RoleIngest.Serves() || !RoleQuery.Serves() {
		t.Error("Serves: only ingest and query answer requests")
	}
}

func TestClickHouseInstallationSize(t *testing.T) {
	chi := ClickHouseInstallation(dedicatedTenant())
	if chi.GetNamespace() != "tenant-globex" || chi.GetName() != "clickhouse" || chi.GetKind() != "ClickHouseInstallation" {
		t.Errorf("identity = %s %s/%s", chi.GetKind(), chi.GetNamespace(), chi.GetName())
	}
	clusters := chi.Object["spec"].(map[string]any)["configuration"].(map[string]any)["clusters"].([]any)
	layout := clusters[0].(map[string]any)["layout"].(map[string]any)
	if layout["shardsCount"] != int64(2) || layout["replicasCount"] != int64(3) {
		t.Errorf("layout = %v", layout)
	}
}

func ptr[T any](v T) *T { return &v }

func TestRuntimeDeploymentWithoutCredentials(t *testing.T) {
	d := RuntimeDeployment(dedicatedTenant(), RoleIngest, testRuntime(), RuntimeFiles{})
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "credentials" {
			t.Error("credentials mounted although the platform has none to copy")
		}
	}
}

func TestRuntimeCredentials(t *testing.T) {
	data := map[string][]byte{"clickhouse-password": []byte("admin"), "metastore-dsn": []byte("postgres://x")}
	for _, tc := range []struct {
		name         string
		passwordFile string
		want         []string
	}{
		{"admin password file left out", "/etc/shoal/secrets/clickhouse-password", []string{"metastore-dsn"}},
		{"password elsewhere", "/var/run/ch/password", []string{"clickhouse-password", "metastore-dsn"}},
		{"inline password", "", []string{"clickhouse-password", "metastore-dsn"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &config.Platform{}
			p.Default()
			p.ClickHouse.PasswordFile = tc.passwordFile
			got := RuntimeCredentials(p, data)
			var keys []string
			for k := range got {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, tc.want) {
				t.Errorf("keys = %v, want %v", keys, tc.want)
			}
		})
	}
}

func TestRuntimeFilesHash(t *testing.T) {
	tenant := dedicatedTenant()
	a := RuntimeFilesHash(RuntimeConfigSecret(tenant, []byte("kafka: a")))
	if a != RuntimeFilesHash(RuntimeConfigSecret(tenant, []byte("kafka: a"))) {
		t.Error("the hash of the same content differs")
	}
	if a == RuntimeFilesHash(RuntimeConfigSecret(tenant, []byte("kafka: b"))) {
		t.Error("a config change leaves the hash alone: pods would not restart")
	}
	if a == RuntimeFilesHash(RuntimeConfigSecret(tenant, []byte("kafka: a")), RuntimeCredentialsSecret(tenant, map[string][]byte{"k": []byte("v")})) {
		t.Error("adding credentials leaves the hash alone")
	}
}
