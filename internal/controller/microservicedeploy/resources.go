package microservicedeploy

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	autoscalingv2ac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	"k8s.io/utils/ptr"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
)

// Labels on the objects of a MicroServiceDeploy.
const (
	// LabelInstance names the MicroServiceDeploy that owns an object; it is
	// the instance's pod selector.
	LabelInstance = "apps.opsmith.io/microservicedeploy"
	// LabelMicroService and LabelPath select the pods of every instance of
	// one msName and path: the shared Service routes to all of them.
	LabelMicroService = "apps.opsmith.io/microservice"
	LabelPath         = "apps.opsmith.io/path"

	// AnnotationConfigHash on the pod template changes with config, so that
	// a config change rolls the pods.
	AnnotationConfigHash = "apps.opsmith.io/config-hash"

	// ConfigMountPath is where the config ConfigMap is mounted, a file per
	// key.
	ConfigMountPath = "/etc/opsmith/config"

	containerName = "app"
	portName      = "http"
	servicePort   = 80
)

func instanceLabels(m *appsv1alpha1.MicroServiceDeploy) map[string]string {
	return map[string]string{
		LabelInstance:                m.Name,
		LabelMicroService:            m.Spec.MsName,
		LabelPath:                    m.Spec.Path,
		apply.LabelManagedBy:         apply.ManagedByValue,
		"app.kubernetes.io/name":     m.Spec.MsName,
		"app.kubernetes.io/instance": m.Name,
		"app.kubernetes.io/version":  m.Spec.Version,
	}
}

func selector(m *appsv1alpha1.MicroServiceDeploy) map[string]string {
	return map[string]string{LabelInstance: m.Name}
}

func ownerReference(m *appsv1alpha1.MicroServiceDeploy, controller bool) *metav1ac.OwnerReferenceApplyConfiguration {
	ref := metav1ac.OwnerReference().
		WithAPIVersion(appsv1alpha1.GroupVersion.String()).
		WithKind("MicroServiceDeploy").
		WithName(m.Name).
		WithUID(m.UID)
	if controller {
		ref.WithController(true).WithBlockOwnerDeletion(true)
	}
	return ref
}

// ConfigMapName is the name of the instance's runtime configuration.
func ConfigMapName(m *appsv1alpha1.MicroServiceDeploy) string { return m.Name + "-config" }

// port returns the port the microservice listens on.
func port(m *appsv1alpha1.MicroServiceDeploy) int32 {
	return ptr.Deref(m.Spec.Port, appsv1alpha1.DefaultMicroServicePort)
}

// ParseConfig reads properties lines into key/value pairs. Blank lines and
// comments (# or !) are skipped; a key ends at the first '=' or ':', and
// white space around key and value is dropped. Admission already rejected
// malformed lines.
func ParseConfig(config string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(config, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			continue
		}
		out[strings.TrimSpace(line[:i])] = strings.TrimSpace(line[i+1:])
	}
	return out
}

func configHash(m *appsv1alpha1.MicroServiceDeploy) string {
	kv := ParseConfig(m.Spec.Config)
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k + "=" + kv[k] + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// ServiceAccount builds the instance's ServiceAccount.
func ServiceAccount(m *appsv1alpha1.MicroServiceDeploy) *corev1ac.ServiceAccountApplyConfiguration {
	return corev1ac.ServiceAccount(m.Name, m.Namespace).
		WithLabels(instanceLabels(m)).
		WithOwnerReferences(ownerReference(m, true)).
		WithAutomountServiceAccountToken(m.Spec.AutomountServiceAccountToken)
}

// ConfigMap builds the instance's runtime configuration: one key per
// property.
func ConfigMap(m *appsv1alpha1.MicroServiceDeploy) *corev1ac.ConfigMapApplyConfiguration {
	cm := corev1ac.ConfigMap(ConfigMapName(m), m.Namespace).
		WithLabels(instanceLabels(m)).
		WithOwnerReferences(ownerReference(m, true))
	if kv := ParseConfig(m.Spec.Config); len(kv) > 0 {
		cm.WithData(kv)
	}
	return cm
}

// Deployment builds the instance's Deployment with replicas pods.
func Deployment(m *appsv1alpha1.MicroServiceDeploy, replicas int32) *appsv1ac.DeploymentApplyConfiguration {
	container := corev1ac.Container().
		WithName(containerName).
		WithImage(m.Spec.Image).
		WithPorts(corev1ac.ContainerPort().WithName(portName).WithContainerPort(port(m)).WithProtocol(corev1.ProtocolTCP)).
		WithEnvFrom(corev1ac.EnvFromSource().WithConfigMapRef(corev1ac.ConfigMapEnvSource().WithName(ConfigMapName(m)))).
		WithVolumeMounts(corev1ac.VolumeMount().WithName("config").WithMountPath(ConfigMountPath).WithReadOnly(true)).
		WithReadinessProbe(corev1ac.Probe().
			WithTCPSocket(corev1ac.TCPSocketAction().WithPort(intstr.FromString(portName))).
			WithPeriodSeconds(5)).
		WithSecurityContext(corev1ac.SecurityContext().WithAllowPrivilegeEscalation(false))
	if ref := m.Spec.ConfigSecretRef; ref != nil && ref.Name != "" {
		container.WithEnvFrom(corev1ac.EnvFromSource().WithSecretRef(corev1ac.SecretEnvSource().WithName(ref.Name)))
	}
	if res := resources(m.Spec.ResourceRequirements); res != nil {
		container.WithResources(res)
	}

	podLabels := instanceLabels(m)
	return appsv1ac.Deployment(m.Name, m.Namespace).
		WithLabels(instanceLabels(m)).
		WithOwnerReferences(ownerReference(m, true)).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(replicas).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(selector(m))).
			// Keep serving capacity during a rollout: a new pod must be
			// ready before an old one goes.
			WithStrategy(appsv1ac.DeploymentStrategy().
				WithType(appsv1.RollingUpdateDeploymentStrategyType).
				WithRollingUpdate(appsv1ac.RollingUpdateDeployment().
					WithMaxUnavailable(intstr.FromInt32(0)).
					WithMaxSurge(intstr.FromInt32(1)))).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(podLabels).
				WithAnnotations(map[string]string{AnnotationConfigHash: configHash(m)}).
				WithSpec(corev1ac.PodSpec().
					WithServiceAccountName(m.Name).
					WithPriorityClassName(PriorityClassName).
					WithAutomountServiceAccountToken(m.Spec.AutomountServiceAccountToken).
					WithSecurityContext(corev1ac.PodSecurityContext().
						WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))).
					WithVolumes(corev1ac.Volume().WithName("config").
						WithConfigMap(corev1ac.ConfigMapVolumeSource().WithName(ConfigMapName(m)))).
					WithContainers(container))))
}

func resources(r appsv1alpha1.ResourceRequirements) *corev1ac.ResourceRequirementsApplyConfiguration {
	limits, requests := resourceList(r.Limits), resourceList(r.Requests)
	if len(limits) == 0 && len(requests) == 0 {
		return nil
	}
	out := corev1ac.ResourceRequirements()
	if len(limits) > 0 {
		out.WithLimits(limits)
	}
	if len(requests) > 0 {
		out.WithRequests(requests)
	}
	return out
}

func resourceList(a appsv1alpha1.ResourceAmounts) corev1.ResourceList {
	l := corev1.ResourceList{}
	if a.CPU != nil {
		l[corev1.ResourceCPU] = *a.CPU
	}
	if a.Memory != nil {
		l[corev1.ResourceMemory] = *a.Memory
	}
	return l
}

// Service builds the instance's own ClusterIP Service, port 80.
func Service(m *appsv1alpha1.MicroServiceDeploy) *corev1ac.ServiceApplyConfiguration {
	return corev1ac.Service(m.Name, m.Namespace).
		WithLabels(instanceLabels(m)).
		WithOwnerReferences(ownerReference(m, true)).
		WithSpec(corev1ac.ServiceSpec().
			WithType(corev1.ServiceTypeClusterIP).
			WithSelector(selector(m)).
			WithPorts(corev1ac.ServicePort().WithName(portName).WithPort(servicePort).
				WithTargetPort(intstr.FromString(portName)).WithProtocol(corev1.ProtocolTCP)))
}

// AutoscalingBounds returns the autoscaler's minimum and maximum.
func AutoscalingBounds(m *appsv1alpha1.MicroServiceDeploy) (minReplicas, maxReplicas int32) {
	minReplicas = max(m.Spec.Replicas, 1)
	maxReplicas = max(appsv1alpha1.DefaultAutoscalingMaxReplicas, minReplicas)
	if p := m.Spec.AutoscalingPolicy; p != nil && p.MaxReplicas != nil {
		maxReplicas = max(*p.MaxReplicas, minReplicas)
	}
	return minReplicas, maxReplicas
}

// HorizontalPodAutoscaler builds the instance's autoscaler on CPU.
func HorizontalPodAutoscaler(m *appsv1alpha1.MicroServiceDeploy) *autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration {
	minReplicas, maxReplicas := AutoscalingBounds(m)
	target := appsv1alpha1.DefaultAutoscalingCPUUtilization
	if p := m.Spec.AutoscalingPolicy; p != nil && p.TargetCPUUtilizationPercentage != nil {
		target = *p.TargetCPUUtilizationPercentage
	}
	return autoscalingv2ac.HorizontalPodAutoscaler(m.Name, m.Namespace).
		WithLabels(instanceLabels(m)).
		WithOwnerReferences(ownerReference(m, true)).
		WithSpec(autoscalingv2ac.HorizontalPodAutoscalerSpec().
			WithScaleTargetRef(autoscalingv2ac.CrossVersionObjectReference().
				WithAPIVersion("apps/v1").WithKind("Deployment").WithName(m.Name)).
			WithMinReplicas(minReplicas).
			WithMaxReplicas(maxReplicas).
			WithMetrics(autoscalingv2ac.MetricSpec().
				WithType(autoscalingv2.ResourceMetricSourceType).
				WithResource(autoscalingv2ac.ResourceMetricSource().
					WithName(corev1.ResourceCPU).
					WithTarget(autoscalingv2ac.MetricTarget().
						WithType(autoscalingv2.UtilizationMetricType).
						WithAverageUtilization(target)))))
}

// NetworkPolicy admits traffic to the instance's pods only from the ingress
// controller's namespace, so that needAuth cannot be bypassed by calling
// the pods from inside the cluster.
func NetworkPolicy(m *appsv1alpha1.MicroServiceDeploy, cfg Config) *networkingv1ac.NetworkPolicyApplyConfiguration {
	return networkingv1ac.NetworkPolicy(m.Name, m.Namespace).
		WithLabels(instanceLabels(m)).
		WithOwnerReferences(ownerReference(m, true)).
		WithSpec(networkingv1ac.NetworkPolicySpec().
			WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(selector(m))).
			WithPolicyTypes(networkingv1.PolicyTypeIngress).
			WithIngress(networkingv1ac.NetworkPolicyIngressRule().
				WithFrom(networkingv1ac.NetworkPolicyPeer().
					WithNamespaceSelector(metav1ac.LabelSelector().
						WithMatchLabels(map[string]string{corev1.LabelMetadataName: cfg.IngressNamespace}))).
				WithPorts(networkingv1ac.NetworkPolicyPort().
					WithProtocol(corev1.ProtocolTCP).WithPort(intstr.FromString(portName)))))
}
