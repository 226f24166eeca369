package appservice

import (
	"encoding/json"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/utils/ptr"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
)

// Labels put on every object an AppService owns.
const (
	// LabelManagedBy marks objects written by opsmith; the manager's cache
	// only holds Deployments and Services that carry it.
	LabelManagedBy = apply.LabelManagedBy
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = apply.ManagedByValue
	// LabelAppService names the AppService that owns an object. It is the
	// pod selector, so it never changes for the life of an AppService.
	LabelAppService = "apps.opsmith.io/appservice"

	labelName     = "app.kubernetes.io/name"
	labelInstance = "app.kubernetes.io/instance"

	// containerName is the name of the application container.
	containerName = "app"
)

func selectorLabels(as *appsv1alpha1.AppService) map[string]string {
	return map[string]string{LabelAppService: as.Name}
}

func objectLabels(as *appsv1alpha1.AppService) map[string]string {
	return map[string]string{
		LabelAppService: as.Name,
		LabelManagedBy:  ManagedByValue,
		labelName:       "appservice",
		labelInstance:   as.Name,
	}
}

func ownerReference(as *appsv1alpha1.AppService) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(appsv1alpha1.GroupVersion.String()).
		WithKind("AppService").
		WithName(as.Name).
		WithUID(as.UID).
		WithController(true).
		WithBlockOwnerDeletion(true)
}

// portName is the name of a port in the Service: the one the user gave, or
// "<protocol>-<port>".
func portName(p appsv1alpha1.AppServicePort) string {
	if p.Name != "" {
		return p.Name
	}
	return fmt.Sprintf("%s-%d", strings.ToLower(string(protocol(p))), p.Port)
}

func protocol(p appsv1alpha1.AppServicePort) corev1.Protocol {
	if p.Protocol == "" {
		return corev1.ProtocolTCP
	}
	return p.Protocol
}

func targetPort(p appsv1alpha1.AppServicePort) int32 {
	if p.TargetPort == 0 {
		return p.Port
	}
	return p.TargetPort
}

// Deployment builds the Deployment that runs the AppService's pods. It has
// the AppService's name and is controlled by it.
func Deployment(as *appsv1alpha1.AppService) *appsv1ac.DeploymentApplyConfiguration {
	container := corev1ac.Container().
		WithName(containerName).
		WithImage(as.Spec.Image).
		WithSecurityContext(corev1ac.SecurityContext().
			WithAllowPrivilegeEscalation(false))

	// Several Service ports may target one container port; list each
	// container port once.
	type key struct {
		port  int32
		proto corev1.Protocol
	}
	seen := map[key]bool{}
	var probePort int32
	for _, p := range as.Spec.Ports {
		k := key{targetPort(p), protocol(p)}
		if seen[k] {
			continue
		}
		seen[k] = true
		container.WithPorts(corev1ac.ContainerPort().
			WithContainerPort(k.port).
			WithProtocol(k.proto))
		if probePort == 0 && k.proto == corev1.ProtocolTCP {
			probePort = k.port
		}
	}
	// A pod is ready when it accepts connections on its first TCP port, so
	// that readyReplicas means "serving", not just "started".
	if probePort != 0 {
		container.WithReadinessProbe(corev1ac.Probe().
			WithTCPSocket(corev1ac.TCPSocketAction().WithPort(intstr.FromInt32(probePort))).
			WithPeriodSeconds(5))
	}
	for i := range as.Spec.Envs {
		container.WithEnv(envVar(as.Spec.Envs[i]))
	}
	if res := resources(as.Spec.Resources); res != nil {
		container.WithResources(res)
	}

	return appsv1ac.Deployment(as.Name, as.Namespace).
		WithLabels(objectLabels(as)).
		WithOwnerReferences(ownerReference(as)).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(ptr.Deref(as.Spec.Size, 0)).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(selectorLabels(as))).
			WithStrategy(appsv1ac.DeploymentStrategy().WithType(appsv1.RollingUpdateDeploymentStrategyType)).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(objectLabels(as)).
				WithSpec(corev1ac.PodSpec().
					WithSecurityContext(corev1ac.PodSecurityContext().
						WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))).
					WithContainers(container))))
}

// Service builds the NodePort Service that exposes the AppService's ports.
func Service(as *appsv1alpha1.AppService) *corev1ac.ServiceApplyConfiguration {
	spec := corev1ac.ServiceSpec().
		WithType(corev1.ServiceTypeNodePort).
		WithSelector(selectorLabels(as))
	for _, p := range as.Spec.Ports {
		port := corev1ac.ServicePort().
			WithName(portName(p)).
			WithProtocol(protocol(p)).
			WithPort(p.Port).
			WithTargetPort(intstr.FromInt32(targetPort(p)))
		if p.NodePort != 0 {
			port.WithNodePort(p.NodePort)
		}
		spec.WithPorts(port)
	}
	return corev1ac.Service(as.Name, as.Namespace).
		WithLabels(objectLabels(as)).
		WithOwnerReferences(ownerReference(as)).
		WithSpec(spec)
}

func resources(r corev1.ResourceRequirements) *corev1ac.ResourceRequirementsApplyConfiguration {
	if len(r.Limits) == 0 && len(r.Requests) == 0 {
		return nil
	}
	out := corev1ac.ResourceRequirements()
	if len(r.Limits) > 0 {
		out.WithLimits(r.Limits)
	}
	if len(r.Requests) > 0 {
		out.WithRequests(r.Requests)
	}
	return out
}

// envVar converts a typed EnvVar into its apply configuration. Both have the
// same JSON form, so a round trip through JSON converts every field,
// including value sources added in later Kubernetes versions.
func envVar(e corev1.EnvVar) *corev1ac.EnvVarApplyConfiguration {
	out := &corev1ac.EnvVarApplyConfiguration{}
	data, err := json.Marshal(e)
	if err == nil {
		err = json.Unmarshal(data, out)
	}
	if err != nil {
		// Both sides are generated from one Go type; a failure here is a
		// programming error, not bad input.
		panic(fmt.Sprintf("converting env var %q: %v", e.Name, err))
	}
	return out
}
