package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MicroServiceDeploy phases.
const (
	PhasePending     = "Pending"
	PhaseProgressing = "Progressing"
	PhaseRunning     = "Running"
	PhaseIdle        = "Idle"
	PhaseFailed      = "Failed"
)

// Condition types reported by a MicroServiceDeploy, besides Available and
// Progressing.
const (
	// ConditionIdle is True while the instance is idle (no pods).
	ConditionIdle = "Idle"
)

// Defaults of the optional MicroServiceDeploy fields.
const (
	DefaultMicroServicePort          int32 = 8080
	DefaultAutoscalingMaxReplicas    int32 = 10
	DefaultAutoscalingCPUUtilization int32 = 80
)

// AutoscalingPolicy tunes the HorizontalPodAutoscaler made when autoscaling
// is on. Its minimum is always spec.replicas.
// +kubebuilder:validation:XValidation:rule="!has(self.maxReplicas) || self.maxReplicas >= 1",message="maxReplicas must be at least 1"
type AutoscalingPolicy struct {
	// maxReplicas is the most pods the autoscaler may run; default 10, or
	// spec.replicas when that is larger.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	MaxReplicas *int32 `json:"maxReplicas,omitempty"`

	// targetCPUUtilizationPercentage is the average CPU use, in percent of
	// the requested CPU, the autoscaler aims at; default 80.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	TargetCPUUtilizationPercentage *int32 `json:"targetCPUUtilizationPercentage,omitempty"`
}

// MicroServiceDeploySpec describes one instance (one minor version) of a
// microservice. Instances of one msName and path serve the same domain name
// together.
// +kubebuilder:validation:XValidation:rule="size(self.msName) + size(self.path) <= 62",message="msName and path together may have at most 62 characters: they name the objects shared by the instances of a path"
// +kubebuilder:validation:XValidation:rule="!has(self.autoscalingPolicy) || !has(self.autoscalingPolicy.maxReplicas) || self.autoscalingPolicy.maxReplicas >= self.replicas",message="autoscalingPolicy.maxReplicas must not be below replicas (the autoscaler's minimum)"
type MicroServiceDeploySpec struct {
	// msName names the microservice. It is the second label of the domain
	// name, <path>.<msName>.<base domain>.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=50
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="msName must be a DNS label: lower-case letters, digits and '-', starting with a letter and ending with a letter or digit"
	MsName string `json:"msName"`

	// fullName names this instance; the objects it owns carry this name.
	// It must equal metadata.name and may be left out.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	FullName string `json:"fullName,omitempty"`

	// version of this instance, shown in its labels and status.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$')",message="version may contain letters, digits, '-', '_' and '.', and must start and end with a letter or digit"
	Version string `json:"version"`

	// path is the major version that appears in the domain name; the
	// instances of one msName and path share that domain name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=20
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="path must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit"
	Path string `json:"path"`

	// image is the container image of the microservice. It is not checked
	// at admission (the seed's sample has a placeholder here); a reference
	// the node cannot pull shows in status.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.trim() == self",message="image must not start or end with whitespace"
	Image string `json:"image"`

	// replicas is the number of pods; with autoscaling it is the minimum.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	Replicas int32 `json:"replicas"`

	// port the microservice listens on; default 8080. The instance's
	// Service and the shared route expose it on port 80.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`

	// autoscaling turns on a HorizontalPodAutoscaler on CPU, from replicas
	// up to autoscalingPolicy.maxReplicas.
	// +optional
	Autoscaling bool `json:"autoscaling,omitempty"`

	// autoscalingPolicy overrides the autoscaler's defaults.
	// +optional
	AutoscalingPolicy *AutoscalingPolicy `json:"autoscalingPolicy,omitempty"`

	// needAuth requires callers to pass tenant authentication: the route
	// checks every request with the operator's external authentication
	// service, and a NetworkPolicy admits traffic to the pods only from the
	// ingress controller's namespace, so the check cannot be bypassed from
	// inside the cluster.
	// +optional
	NeedAuth bool `json:"needAuth,omitempty"`

	// config is the runtime configuration, as Java properties lines
	// (key=value; blank lines and lines starting with # or ! are ignored).
	// It is stored in a ConfigMap, mounted at /etc/opsmith/config and
	// exported as environment variables. It is not secret: put passwords in
	// a Secret and name it in configSecretRef.
	// +optional
	// +kubebuilder:validation:MaxLength=16384
	// +kubebuilder:validation:XValidation:rule="self.matches('^([ \\t\\r]*([#!][^\\n]*|[-._a-zA-Z0-9]+[ \\t]*[=:][^\\n]*)?\\n)*[ \\t\\r]*([#!][^\\n]*|[-._a-zA-Z0-9]+[ \\t]*[=:][^\\n]*)?$')",messageExpression="'config lines must be key=value (or key: value) with a key of letters, digits, \\'-\\', \\'_\\' and \\'.\\'; malformed line: ' + self.find('(?m)^[ \\t\\r]*(?:[^-._a-zA-Z0-9#! \\t\\r\\n]|[-._a-zA-Z0-9]+(?:[ \\t]*$|[ \\t]*[^-._a-zA-Z0-9=: \\t\\r\\n]|[ \\t]+[-._a-zA-Z0-9])).*$')"
	// +kubebuilder:validation:XValidation:rule="!self.matches('(^|\\n)[ \\t\\r]*[-._a-zA-Z0-9]{254}')",message="config keys may have at most 253 characters (they name the keys of the instance's ConfigMap)"
	Config string `json:"config,omitempty"`

	// configSecretRef names a Secret in the same namespace whose keys are
	// exported as environment variables, for sensitive configuration.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.name) || self.name == '' || (size(self.name) <= 253 && self.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'))",message="configSecretRef.name must name a Secret: at most 253 lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"
	ConfigSecretRef *corev1.LocalObjectReference `json:"configSecretRef,omitempty"`

	// creationTimestamp is when the instance was created, in milliseconds
	// since the Unix epoch, as a decimal string (for example
	// "1535546718115"). It is informational.
	// +optional
	// +kubebuilder:validation:MaxLength=19
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+$')",message="creationTimestamp must be milliseconds since the Unix epoch, digits only, for example \"1535546718115\""
	CreationTimestamp string `json:"creationTimestamp,omitempty"`

	// resourceRequirements are the container's requests and limits. They
	// also size the namespace's ResourceQuota for microservices.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.limits) || !has(self.requests) || !has(self.limits.cpu) || !has(self.requests.cpu) || quantity(string(self.requests.cpu)).compareTo(quantity(string(self.limits.cpu))) <= 0",message="requests.cpu must not exceed limits.cpu"
	// +kubebuilder:validation:XValidation:rule="!has(self.limits) || !has(self.requests) || !has(self.limits.memory) || !has(self.requests.memory) || quantity(string(self.requests.memory)).compareTo(quantity(string(self.limits.memory))) <= 0",message="requests.memory must not exceed limits.memory"
	ResourceRequirements ResourceRequirements `json:"resourceRequirements,omitempty"`

	// idle puts the instance into an idle state: no pods run and the
	// autoscaler is removed, while its Service and route stay. Setting it
	// back to false restores the scale it had.
	// +optional
	Idle bool `json:"idle,omitempty"`

	// automountServiceAccountToken mounts the instance's ServiceAccount
	// token into its pods; off by default.
	// +optional
	AutomountServiceAccountToken bool `json:"automountServiceAccountToken,omitempty"`
}

// ResourceRequirements are a container's compute requests and limits.
type ResourceRequirements struct {
	// limits are the most the container may use.
	// +optional
	Limits ResourceAmounts `json:"limits,omitempty"`
	// requests are what the container is guaranteed.
	// +optional
	Requests ResourceAmounts `json:"requests,omitempty"`
}

// ResourceAmounts are amounts of CPU and memory.
type ResourceAmounts struct {
	// cpu in cores, for example "2" or "500m".
	// +optional
	// +kubebuilder:validation:XValidation:rule="!isQuantity(string(self)) || quantity(string(self)).compareTo(quantity('0')) >= 0",message="cpu must not be negative"
	CPU *resource.Quantity `json:"cpu,omitempty"`
	// memory in bytes, for example "4Gi".
	// +optional
	// +kubebuilder:validation:XValidation:rule="!isQuantity(string(self)) || quantity(string(self)).compareTo(quantity('0')) >= 0",message="memory must not be negative"
	Memory *resource.Quantity `json:"memory,omitempty"`
}

// MicroServiceDeployStatus is what the operator observed.
type MicroServiceDeployStatus struct {
	// observedGeneration is the generation of the spec this status
	// describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase summarizes the conditions: Pending, Progressing, Running,
	// Idle or Failed.
	// +optional
	// +kubebuilder:validation:Enum=Pending;Progressing;Running;Idle;Failed
	Phase string `json:"phase,omitempty"`

	// version is the version the pods run.
	// +optional
	Version string `json:"version,omitempty"`

	// replicas and readyReplicas count the instance's pods.
	// +optional
	Replicas int32 `json:"replicas"`
	// +optional
	ReadyReplicas int32 `json:"readyReplicas"`

	// resumeReplicas is the pod count the instance had when it went idle;
	// it is restored when idle is set back to false.
	// +optional
	ResumeReplicas *int32 `json:"resumeReplicas,omitempty"`

	// url is where the microservice is served: http://<path>.<msName>.<base domain>/.
	// +optional
	URL string `json:"url,omitempty"`

	// createdAt is spec.creationTimestamp in RFC 3339 form.
	// +optional
	CreatedAt string `json:"createdAt,omitempty"`

	// conditions are Available, Progressing and Idle.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// MicroServiceDeploy runs one instance of a microservice: its Deployment,
// Service, ServiceAccount, runtime configuration, autoscaler and access
// policy, plus the route and quota it shares with other instances.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=msd,categories=opsmith
// +kubebuilder:validation:XValidation:rule="!has(self.spec.fullName) || size(self.spec.fullName) == 0 || self.spec.fullName == self.metadata.name",message="spec.fullName must equal metadata.name (it names the instance's objects); leave it out to use metadata.name"
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be at most 63 characters of lower-case letters, digits and '-', starting with a letter: it names the instance's Service"
// +kubebuilder:printcolumn:name="MsName",type=string,JSONPath=`.spec.msName`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.version`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`,priority=1
// +kubebuilder:printcolumn:name="Created",type=string,JSONPath=`.status.createdAt`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MicroServiceDeploy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec MicroServiceDeploySpec `json:"spec"`
	// +optional
	Status MicroServiceDeployStatus `json:"status,omitempty"`
}

// MicroServiceDeployList is a list of MicroServiceDeploy.
//
// +kubebuilder:object:root=true
type MicroServiceDeployList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MicroServiceDeploy `json:"items"`
}

func init() {
	knownTypes = append(knownTypes, &MicroServiceDeploy{}, &MicroServiceDeployList{})
}
