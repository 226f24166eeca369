package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types reported by an AppService.
const (
	// ConditionAvailable is True when at least the requested number of pods is
	// ready (or size is 0 and the Deployment exists).
	ConditionAvailable = "Available"
	// ConditionProgressing is True while the Deployment is rolling out or
	// scaling, False when the rollout finished or is stuck.
	ConditionProgressing = "Progressing"
)

// AppServicePort is one port the application listens on. Each port becomes a
// container port of the pods and a port of the NodePort Service.
type AppServicePort struct {
	// name of the port in the Service; defaults to "<protocol>-<port>" in
	// lower case.
	// +optional
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name,omitempty"`

	// port is the port the Service exposes inside the cluster.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// targetPort is the port the container listens on; defaults to port.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	TargetPort int32 `json:"targetPort,omitempty"`

	// nodePort is the port opened on every node. Leave it empty to let
	// Kubernetes choose a free one from the node port range.
	// +optional
	// +kubebuilder:validation:Minimum=30000
	// +kubebuilder:validation:Maximum=32767
	NodePort int32 `json:"nodePort,omitempty"`

	// protocol of the port: TCP (default), UDP or SCTP.
	// +optional
	// +kubebuilder:default=TCP
	// +kubebuilder:validation:Enum=TCP;UDP;SCTP
	Protocol corev1.Protocol `json:"protocol,omitempty"`
}

// AppServiceSpec is what the user asks for: size copies of image, reachable
// on ports through a NodePort Service.
// +kubebuilder:validation:XValidation:rule="self.ports.all(p, !has(p.nodePort) || self.ports.exists_one(q, has(q.nodePort) && q.nodePort == p.nodePort))",message="each nodePort may be used by only one port"
// +kubebuilder:validation:XValidation:rule="self.ports.all(p, self.ports.exists_one(q, q.port == p.port && (has(q.protocol) ? q.protocol : 'TCP') == (has(p.protocol) ? p.protocol : 'TCP')))",message="each port number may appear only once per protocol"
// +kubebuilder:validation:XValidation:rule="self.ports.all(p, !has(p.name) || size(p.name) == 0 || (self.ports.exists_one(q, has(q.name) && q.name == p.name) && self.ports.all(q, (has(q.name) && size(q.name) > 0) || !(p.name.startsWith((has(q.protocol) ? q.protocol : 'TCP').lowerAscii() + '-') && p.name.substring(size(has(q.protocol) ? q.protocol : 'TCP') + 1) == string(q.port)))))",message="each port name may be used only once (a port without a name is named <protocol>-<port>, for example tcp-80): the names name the Service's ports"
type AppServiceSpec struct {
	// size is the number of pods to run. 0 keeps the Deployment and Service
	// but runs no pods.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	Size *int32 `json:"size"`

	// image is the container image to run, for example nginx:1.7.9.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.contains(' ')",message="image must not contain spaces"
	// +kubebuilder:validation:XValidation:rule="self.trim() == self",message="image must not start or end with whitespace"
	Image string `json:"image"`

	// ports the application listens on; each is exposed through the
	// AppService's NodePort Service.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=port
	// +listMapKey=protocol
	Ports []AppServicePort `json:"ports"`

	// resources are the compute requests and limits of the application
	// container. Requests may not exceed limits; hugepages and extended
	// resources need a limit equal to their request.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.limits) || self.limits.all(k, type(self.limits[k]) == string ? !self.limits[k].startsWith('-') : self.limits[k] >= 0)",message="limits must not be negative"
	// +kubebuilder:validation:XValidation:rule="!has(self.requests) || self.requests.all(k, type(self.requests[k]) == string ? !self.requests[k].startsWith('-') : self.requests[k] >= 0)",message="requests must not be negative"
	// +kubebuilder:validation:XValidation:rule="!has(self.limits) || !has(self.requests) || !('cpu' in self.limits) || !('cpu' in self.requests) || !isQuantity(string(self.limits['cpu'])) || !isQuantity(string(self.requests['cpu'])) || quantity(string(self.requests['cpu'])).compareTo(quantity(string(self.limits['cpu']))) <= 0",message="requests.cpu must not exceed limits.cpu"
	// +kubebuilder:validation:XValidation:rule="!has(self.limits) || !has(self.requests) || !('memory' in self.limits) || !('memory' in self.requests) || !isQuantity(string(self.limits['memory'])) || !isQuantity(string(self.requests['memory'])) || quantity(string(self.requests['memory'])).compareTo(quantity(string(self.limits['memory']))) <= 0",message="requests.memory must not exceed limits.memory"
	// +kubebuilder:validation:XValidation:rule="!has(self.limits) || !has(self.requests) || !('ephemeral-storage' in self.limits) || !('ephemeral-storage' in self.requests) || !isQuantity(string(self.limits['ephemeral-storage'])) || !isQuantity(string(self.requests['ephemeral-storage'])) || quantity(string(self.requests['ephemeral-storage'])).compareTo(quantity(string(self.limits['ephemeral-storage']))) <= 0",message="requests.ephemeral-storage must not exceed limits.ephemeral-storage"
	// +kubebuilder:validation:XValidation:rule="!has(self.requests) || self.requests.all(k, k == 'cpu' || k == 'memory' || k == 'ephemeral-storage' || (has(self.limits) && k in self.limits))",message="requests of resources other than cpu, memory and ephemeral-storage (hugepages, extended resources) need a limit equal to the request"
	// +kubebuilder:validation:XValidation:rule="!has(self.limits) || self.limits.all(k, k == 'cpu' || k == 'memory' || k == 'ephemeral-storage' || k.startsWith('hugepages-') || k.contains('/'))",message="limits may name cpu, memory, ephemeral-storage, hugepages-<size> and extended resources with a domain (example.com/gpu)"
	// +kubebuilder:validation:XValidation:rule="!has(self.requests) || self.requests.all(k, k == 'cpu' || k == 'memory' || k == 'ephemeral-storage' || k.startsWith('hugepages-') || k.contains('/'))",message="requests may name cpu, memory, ephemeral-storage, hugepages-<size> and extended resources with a domain (example.com/gpu)"
	// +kubebuilder:validation:XValidation:rule="!((has(self.limits) && self.limits.exists(k, k.startsWith('hugepages-'))) || (has(self.requests) && self.requests.exists(k, k.startsWith('hugepages-')))) || (has(self.limits) && ('cpu' in self.limits || 'memory' in self.limits)) || (has(self.requests) && ('cpu' in self.requests || 'memory' in self.requests))",message="hugepages need a cpu or memory request or limit too"
	// +kubebuilder:validation:XValidation:rule="!has(self.claims) || size(self.claims) == 0",message="claims are not supported: the pods have no resource claims"
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// envs are environment variables of the application container.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:XValidation:rule="self.all(e, size(e.name) > 0)",message="every env var needs a name"
	// +kubebuilder:validation:XValidation:rule="self.all(e, !has(e.valueFrom) || !has(e.value) || size(e.value) == 0)",message="an env var has either value or valueFrom, not both"
	// +kubebuilder:validation:XValidation:rule="self.all(e, !has(e.valueFrom) || !has(e.valueFrom.fileKeyRef))",message="valueFrom.fileKeyRef is not supported: the pods have no volumes to read it from"
	// +kubebuilder:validation:XValidation:rule="self.all(e, !has(e.valueFrom) || (has(e.valueFrom.fieldRef) ? 1 : 0) + (has(e.valueFrom.resourceFieldRef) ? 1 : 0) + (has(e.valueFrom.configMapKeyRef) ? 1 : 0) + (has(e.valueFrom.secretKeyRef) ? 1 : 0) + (has(e.valueFrom.fileKeyRef) ? 1 : 0) == 1)",message="valueFrom must set exactly one of fieldRef, resourceFieldRef, configMapKeyRef and secretKeyRef"
	// +kubebuilder:validation:XValidation:rule="self.all(e, !has(e.valueFrom) || !has(e.valueFrom.fieldRef) || ((!has(e.valueFrom.fieldRef.apiVersion) || e.valueFrom.fieldRef.apiVersion == 'v1') && (e.valueFrom.fieldRef.fieldPath in ['metadata.name', 'metadata.namespace', 'metadata.uid', 'spec.nodeName', 'spec.serviceAccountName', 'status.hostIP', 'status.hostIPs', 'status.podIP', 'status.podIPs'] || e.valueFrom.fieldRef.fieldPath.startsWith('metadata.labels[') || e.valueFrom.fieldRef.fieldPath.startsWith('metadata.annotations['))))",message="valueFrom.fieldRef.fieldPath must be one of metadata.name, metadata.namespace, metadata.uid, metadata.labels['<key>'], metadata.annotations['<key>'], spec.nodeName, spec.serviceAccountName, status.hostIP, status.hostIPs, status.podIP and status.podIPs (apiVersion v1)"
	// +kubebuilder:validation:XValidation:rule="self.all(e, !has(e.valueFrom) || !has(e.valueFrom.resourceFieldRef) || e.valueFrom.resourceFieldRef.resource in ['limits.cpu', 'limits.memory', 'limits.ephemeral-storage', 'requests.cpu', 'requests.memory', 'requests.ephemeral-storage'] || e.valueFrom.resourceFieldRef.resource.startsWith('limits.hugepages-') || e.valueFrom.resourceFieldRef.resource.startsWith('requests.hugepages-'))",message="valueFrom.resourceFieldRef.resource must be one of limits.cpu, limits.memory, limits.ephemeral-storage, limits.hugepages-<size>, requests.cpu, requests.memory, requests.ephemeral-storage and requests.hugepages-<size>"
	// +kubebuilder:validation:XValidation:rule="self.all(e, !has(e.valueFrom) || !has(e.valueFrom.configMapKeyRef) || (has(e.valueFrom.configMapKeyRef.name) && size(e.valueFrom.configMapKeyRef.name) > 0 && size(e.valueFrom.configMapKeyRef.key) > 0))",message="valueFrom.configMapKeyRef needs the name of a ConfigMap and a key"
	// +kubebuilder:validation:XValidation:rule="self.all(e, !has(e.valueFrom) || !has(e.valueFrom.secretKeyRef) || (has(e.valueFrom.secretKeyRef.name) && size(e.valueFrom.secretKeyRef.name) > 0 && size(e.valueFrom.secretKeyRef.key) > 0))",message="valueFrom.secretKeyRef needs the name of a Secret and a key"
	// +listType=map
	// +listMapKey=name
	Envs []corev1.EnvVar `json:"envs,omitempty"`
}

// AppServiceStatus is what the operator observed.
type AppServiceStatus struct {
	// observedGeneration is the generation of the spec that this status
	// describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// replicas is the number of pods of the Deployment, ready or not.
	// +optional
	Replicas int32 `json:"replicas"`

	// readyReplicas is the number of pods that are ready.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas"`

	// conditions are Available and Progressing.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AppService runs a stateless application: a Deployment of size pods of
// image and a NodePort Service exposing ports.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.size,statuspath=.status.replicas
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be at most 63 characters of lower-case letters, digits and '-', starting with a letter: it also names the Service"
// +kubebuilder:resource:shortName=appsvc;as,categories=opsmith
// +kubebuilder:printcolumn:name="Size",type=integer,JSONPath=`.spec.size`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Available",type=string,JSONPath=`.status.conditions[?(@.type=="Available")].status`
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.image`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AppService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec AppServiceSpec `json:"spec"`
	// +optional
	Status AppServiceStatus `json:"status,omitempty"`
}

// AppServiceList is a list of AppService.
//
// +kubebuilder:object:root=true
type AppServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AppService `json:"items"`
}

func init() {
	knownTypes = append(knownTypes, &AppService{}, &AppServiceList{})
}
