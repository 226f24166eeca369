// Package common holds API types that several opsmith kinds share: the
// resources and scheduling of their pods and the storage of their data
// volumes, each with the admission rules that come with it.
//
// +kubebuilder:object:generate=true
package common

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// ResourceRequirements are the resources of a workload's container.
// Requests may not exceed limits; hugepages and extended resources need a
// limit equal to their request.
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
type ResourceRequirements corev1.ResourceRequirements

// Scheduling says where the pods of a workload may run.
type Scheduling struct {

	// nodeSelector of the pods: node label keys and the values
	// they must have.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 317 && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$'))",message="nodeSelector keys must be label keys: an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
	NodeSelector map[string]LabelValue `json:"nodeSelector,omitempty"`

	// affinity of the pods.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.nodeAffinity) || !has(self.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution) || size(self.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms) > 0",message="nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution needs at least one node selector term"
	// +kubebuilder:validation:XValidation:rule="!has(self.podAffinity) || ((!has(self.podAffinity.requiredDuringSchedulingIgnoredDuringExecution) || self.podAffinity.requiredDuringSchedulingIgnoredDuringExecution.all(t, size(t.topologyKey) > 0)) && (!has(self.podAffinity.preferredDuringSchedulingIgnoredDuringExecution) || self.podAffinity.preferredDuringSchedulingIgnoredDuringExecution.all(t, size(t.podAffinityTerm.topologyKey) > 0)))",message="every podAffinity term needs a topologyKey (for example kubernetes.io/hostname)"
	// +kubebuilder:validation:XValidation:rule="!has(self.podAntiAffinity) || ((!has(self.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution) || self.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution.all(t, size(t.topologyKey) > 0)) && (!has(self.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution) || self.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.all(t, size(t.podAffinityTerm.topologyKey) > 0)))",message="every podAntiAffinity term needs a topologyKey (for example kubernetes.io/hostname)"
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// tolerations of the pods.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(t, !has(t.operator) || t.operator == '' || t.operator == 'Equal' || t.operator == 'Exists')",message="toleration operator must be Equal or Exists"
	// +kubebuilder:validation:XValidation:rule="self.all(t, (has(t.key) && size(t.key) > 0) || (has(t.operator) && t.operator == 'Exists'))",message="a toleration without a key must have operator Exists (it then tolerates every taint)"
	// +kubebuilder:validation:XValidation:rule="self.all(t, !has(t.operator) || t.operator != 'Exists' || !has(t.value) || size(t.value) == 0)",message="a toleration with operator Exists must not have a value"
	// +kubebuilder:validation:XValidation:rule="self.all(t, !has(t.value) || size(t.value) <= 63)",message="a toleration value must be a label value: at most 63 characters"
	// +kubebuilder:validation:XValidation:rule="self.all(t, !has(t.effect) || t.effect == '' || t.effect == 'NoSchedule' || t.effect == 'PreferNoSchedule' || t.effect == 'NoExecute')",message="toleration effect must be NoSchedule, PreferNoSchedule or NoExecute"
	// +kubebuilder:validation:XValidation:rule="self.all(t, !has(t.tolerationSeconds) || (has(t.effect) && t.effect == 'NoExecute'))",message="tolerationSeconds needs effect NoExecute"
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
}

// LabelValue is the value of a label: at most 63 letters, digits, '-', '_'
// and '.', starting and ending with a letter or digit, or empty.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:XValidation:rule="self.matches('^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$')",message="a label value may have at most 63 letters, digits, '-', '_' and '.', and must start and end with a letter or digit"
type LabelValue string

// Volume reclaim policies of data volumes.
const (
	// ReclaimRetain keeps the data volumes (and so the data) when the
	// resource is deleted.
	ReclaimRetain = "Retain"
	// ReclaimDelete deletes them with it.
	ReclaimDelete = "Delete"
)

// DefaultStorageSize is the default size of each data volume.
const DefaultStorageSize = "1Gi"

// Storage describes each member's data volume.
type Storage struct {
	// size of each member's PersistentVolumeClaim; default 1Gi.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!isQuantity(string(self)) || quantity(string(self)).compareTo(quantity('0')) > 0",message="size must be greater than zero, for example 1Gi"
	Size *resource.Quantity `json:"size,omitempty"`

	// storageClassName of the PersistentVolumeClaims; default: the
	// cluster's default StorageClass.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == '' || self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="storageClassName must name a StorageClass: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"
	StorageClassName *string `json:"storageClassName,omitempty"`

	// reclaimPolicy says what happens to the data volumes when the
	// resource is deleted: Retain (default) keeps them, Delete removes
	// them with it. Volumes of members removed by scaling in are always
	// deleted, since a removed member's data can never rejoin.
	// +optional
	// +kubebuilder:default=Retain
	// +kubebuilder:validation:Enum=Retain;Delete
	ReclaimPolicy string `json:"reclaimPolicy,omitempty"`
}
