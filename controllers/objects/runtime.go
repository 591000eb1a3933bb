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

// RuntimeDeployment runs one role of a Dedicated tenant's runtime: `shoal <role> --tenant
// <name>`, as a restricted pod. Roles under an autoscaler leave spec.replicas to it, so
// the operator and the autoscaler never fight over the count.
func RuntimeDeployment(t *v1alpha1.Tenant, role RuntimeRole, rt config.Runtime) *appsv1.Deployment {
	var replicas *int32
	if !role.Serves() {
		n := minReplicas(t, role)
		replicas = &n
	}
	yes, no := true, false
	ports := []corev1.ContainerPort{{Name: "health", ContainerPort: HealthPort}}
	if role.Serves() {
		ports = append([]corev1.ContainerPort{{Name: "http", ContainerPort: HTTPPort}}, ports...)
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: runtimeMeta(t, role),
		Spec: appsv1.DeploymentSpec{
			Replicas: replicas,
			Selector: &metav1.LabelSelector{MatchLabels: runtimeSelector(t, role)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: runtimeLabels(t, role)},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: &no,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   &yes,
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:            string(role),
						Image:           rt.Image,
						ImagePullPolicy: rt.ImagePullPolicy,
						Args:            []string{string(role), "--tenant", t.Name},
						Ports:           ports,
						Resources:       roleConfig(rt, role).Resources,
						LivenessProbe:   httpProbe("/healthz"),
						ReadinessProbe:  httpProbe("/readyz"),
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

func httpProbe(path string) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("health")}},
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
