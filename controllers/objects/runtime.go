package objects

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/naming"
)

// RuntimeRole is one data-plane service of a Dedicated tenant.
type RuntimeRole string

// Runtime roles, each a subcommand of the shoal binary.
const (
	RoleIngest  RuntimeRole = "ingest"
	RoleProcess RuntimeRole = "process"
	RoleQuery   RuntimeRole = "query"
)

// RuntimeRoles lists the roles in the order they are applied.
func RuntimeRoles() []RuntimeRole { return []RuntimeRole{RoleIngest, RoleProcess, RoleQuery} }

// Ports every runtime pod serves: the role's HTTP API (ingest and query) and health.
const (
	HTTPPort   = 8080
	HealthPort = 8081
	// autoscaleFactor is how far the autoscaler may grow a role above its minimum.
	autoscaleFactor = 4
	// cpuTargetPercent is the autoscaler's target CPU utilisation of the request.
	cpuTargetPercent = 70
)

// Serves reports whether the role answers requests from outside the pod, and so gets a
// Service and an autoscaler. The processor's parallelism is bounded by the topic's
// partitions, so it runs a fixed count.
func (r RuntimeRole) Serves() bool { return r == RoleIngest || r == RoleQuery }

// RuntimeName is the name of a role's Deployment, Service, autoscaler and budget.
func RuntimeName(role RuntimeRole) string { return "shoal-" + string(role) }

func runtimeLabels(t *v1alpha1.Tenant, role RuntimeRole) map[string]string {
	labels := naming.TenantLabels(t.Name)
	labels["app.kubernetes.io/name"] = "shoal"
	labels["app.kubernetes.io/component"] = string(role)
	return labels
}

func runtimeSelector(t *v1alpha1.Tenant, role RuntimeRole) map[string]string {
	return map[string]string{
		naming.TenantLabel:            t.Name,
		"app.kubernetes.io/component": string(role),
	}
}

func runtimeMeta(t *v1alpha1.Tenant, role RuntimeRole) metav1.ObjectMeta {
	meta := childMeta(t, RuntimeName(role))
	meta.Labels = runtimeLabels(t, role)
	return meta
}

// minReplicas is the role's replica count from spec.dedicated.runtime.
func minReplicas(t *v1alpha1.Tenant, role RuntimeRole) int32 {
	if t.Spec.Dedicated == nil {
		return 1
	}
	rt := t.Spec.Dedicated.Runtime
	n := map[RuntimeRole]int32{RoleIngest: rt.IngestReplicas, RoleProcess: rt.ProcessReplicas, RoleQuery: rt.QueryReplicas}[role]
	return max(n, 1)
}

func roleConfig(rt config.Runtime, role RuntimeRole) config.RuntimeRole {
	switch role {
	case RoleIngest:
		return rt.Ingest
	case RoleProcess:
		return rt.Process
	default:
		return rt.Query
	}
}

// Where a runtime pod finds its files.
const (
	// RuntimeConfigDir holds platform.yaml, the platform config the pod reads.
	RuntimeConfigDir = "/etc/shoal"
	// RuntimeConfigFile is the platform config's file name in RuntimeConfigDir and its
	// key in the RuntimeConfigSecret.
	RuntimeConfigFile = "platform.yaml"
	// RuntimeClickHouseDir holds the tenant's ClickHouse Secret (address, user,
	// password) for the roles that reach its installation.
	RuntimeClickHouseDir = "/etc/shoal/clickhouse"
	// RuntimeConfigSecretName and RuntimeCredentialsSecretName are the Secrets in a
	// Dedicated tenant's namespace holding the platform config and the copy of the
	// platform's backend credentials.
	RuntimeConfigSecretName      = "shoal-runtime-config"
	RuntimeCredentialsSecretName = "shoal-runtime-credentials"
	// ConfigHashAnnotation on the pod template changes with the files' content, so a
	// config change rolls the pods.
	ConfigHashAnnotation = "shoal.dev/config-hash"
)

// RuntimeFiles says what a Dedicated tenant's runtime pods mount besides the tenant's
// ClickHouse Secret.
type RuntimeFiles struct {
	// Hash of the config and credentials Secrets' content.
	Hash string
	// Credentials is whether the platform's credentials are copied into the namespace.
	Credentials bool
}

// runtimeArgs is the role's command line. Ingest serves its API, health and metrics on
// one port; the processor serves health and metrics only.
func runtimeArgs(t *v1alpha1.Tenant, role RuntimeRole) []string {
	args := []string{string(role), "--config", RuntimeConfigDir + "/" + RuntimeConfigFile}
	if role != RoleIngest {
		// The ingest API finds the tenant from the write key; the others serve one tenant.
		args = append(args, "--tenant", t.Name, "--clickhouse-credentials", RuntimeClickHouseDir)
	}
	return append(args, "--listen", fmt.Sprintf(":%d", rolePort(role)))
}

func rolePort(role RuntimeRole) int32 {
	if role.Serves() {
		return HTTPPort
	}
	return HealthPort
}

func rolePortName(role RuntimeRole) string {
	if role.Serves() {
		return "http"
	}
	return "health"
}

// runtimeVolumes are the role's volumes and their mounts: the platform config, the
// platform's credentials when copied, and the tenant's ClickHouse Secret for the roles
// that reach the installation.
func runtimeVolumes(t *v1alpha1.Tenant, role RuntimeRole, rt config.Runtime, files RuntimeFiles) ([]corev1.Volume, []corev1.VolumeMount) {
	secretVolume := func(name, secret string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}}
	}
	vols := []corev1.Volume{secretVolume("config", RuntimeConfigSecretName)}
	mounts := []corev1.VolumeMount{{Name: "config", MountPath: RuntimeConfigDir, ReadOnly: true}}
	if files.Credentials {
		vols = append(vols, secretVolume("credentials", RuntimeCredentialsSecretName))
		mounts = append(mounts, corev1.VolumeMount{Name: "credentials", MountPath: rt.CredentialsDir, ReadOnly: true})
	}
	if role != RoleIngest {
		vols = append(vols, secretVolume("clickhouse", naming.ClickHouseSecret(t.Name)))
		mounts = append(mounts, corev1.VolumeMount{Name: "clickhouse", MountPath: RuntimeClickHouseDir, ReadOnly: true})
	}
	return vols, mounts
}

// RuntimeDeployment runs one role of a Dedicated tenant's runtime (`shoal <role>`) as a
// restricted pod reading the files the operator put in the namespace. Roles under an
// autoscaler leave spec.replicas to it, so the operator and the autoscaler never fight
// over the count.
func RuntimeDeployment(t *v1alpha1.Tenant, role RuntimeRole, rt config.Runtime, files RuntimeFiles) *appsv1.Deployment {
	var replicas *int32
	if !role.Serves() {
		n := minReplicas(t, role)
		replicas = &n
	}
	yes, no := true, false
	ports := []corev1.ContainerPort{{Name: rolePortName(role), ContainerPort: rolePort(role)}}
	volumes, mounts := runtimeVolumes(t, role, rt, files)
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: runtimeMeta(t, role),
		Spec: appsv1.DeploymentSpec{
			Replicas: replicas,
			Selector: &metav1.LabelSelector{MatchLabels: runtimeSelector(t, role)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      runtimeLabels(t, role),
					Annotations: map[string]string{ConfigHashAnnotation: files.Hash},
				},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: &no,
					Volumes:                      volumes,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   &yes,
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:            string(role),
						Image:           rt.Image,
						ImagePullPolicy: rt.ImagePullPolicy,
						Args:            runtimeArgs(t, role),
						Ports:           ports,
						VolumeMounts:    mounts,
						Resources:       roleConfig(rt, role).Resources,
						LivenessProbe:   httpProbe("/healthz", rolePortName(role)),
						ReadinessProbe:  httpProbe("/readyz", rolePortName(role)),
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: &no,
							ReadOnlyRootFilesystem:   &yes,
							RunAsNonRoot:             &yes,
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
						},
					}},
				},
			},
		},
	}
}

func httpProbe(path, port string) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString(port)}},
	}
}

// RuntimeService exposes a serving role inside the cluster on port 80.
func RuntimeService(t *v1alpha1.Tenant, role RuntimeRole) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: runtimeMeta(t, role),
		Spec: corev1.ServiceSpec{
			Selector: runtimeSelector(t, role),
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
}

// RuntimeEndpoint is the in-cluster URL of a serving role.
func RuntimeEndpoint(t *v1alpha1.Tenant, role RuntimeRole) string {
	return fmt.Sprintf("http://%s.%s.svc", RuntimeName(role), naming.TenantNamespace(t.Name))
}

// RuntimeAutoscaler scales a serving role between its minimum and four times that on CPU.
func RuntimeAutoscaler(t *v1alpha1.Tenant, role RuntimeRole) *autoscalingv2.HorizontalPodAutoscaler {
	minimum := minReplicas(t, role)
	target := int32(cpuTargetPercent)
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: runtimeMeta(t, role),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: RuntimeName(role)},
			MinReplicas:    &minimum,
			MaxReplicas:    autoscaleFactor * minimum,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name:   corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &target},
				},
			}},
		},
	}
}

// RuntimeDisruptionBudget lets voluntary disruptions take one pod of a role at a time.
func RuntimeDisruptionBudget(t *v1alpha1.Tenant, role RuntimeRole) *policyv1.PodDisruptionBudget {
	one := intstr.FromInt32(1)
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: runtimeMeta(t, role),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: &one,
			Selector:       &metav1.LabelSelector{MatchLabels: runtimeSelector(t, role)},
		},
	}
}

// SharedRuntimeEndpoint is the URL of a serving role of the shared runtime, which runs in
// the platform's namespace and serves every Shared tenant.
func SharedRuntimeEndpoint(role RuntimeRole, namespace string) string {
	return fmt.Sprintf("http://%s.%s.svc", RuntimeName(role), namespace)
}
