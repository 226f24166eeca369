package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults of an EtcdCluster's optional fields.
const (
	// DefaultRepository is the image repository of the etcd members; the
	// image of version X.Y.Z is <repository>:vX.Y.Z.
	DefaultRepository = "gcr.io/etcd-development/etcd"
	// DefaultStorageSize is the size of each member's data volume.
	DefaultStorageSize = "1Gi"
)

// Condition types reported by an EtcdCluster.
const (
	// ConditionAvailable is True when a quorum of voting members is healthy,
	// so that the cluster serves reads and writes.
	ConditionAvailable = "Available"
	// ConditionProgressing is True while the operator changes the cluster
	// (bootstrap, scaling, member replacement, upgrade), False when the
	// cluster matches the spec or the next step is blocked; the reason and
	// message then name what blocks it.
	ConditionProgressing = "Progressing"
	// ConditionDegraded is True when a member is unhealthy or missing, or
	// an operation is blocked by an invariant that protects the data.
	ConditionDegraded = "Degraded"
)

// Phases of an EtcdCluster.
const (
	PhaseCreating  = "Creating"
	PhaseRunning   = "Running"
	PhaseScaling   = "Scaling"
	PhaseUpgrading = "Upgrading"
	PhaseRepairing = "Repairing"
	PhaseDegraded  = "Degraded"
	PhasePaused    = "Paused"
)

// Volume reclaim policies of an EtcdCluster's data volumes.
const (
	// ReclaimRetain keeps the members' PersistentVolumeClaims (and so their
	// data) when the EtcdCluster is deleted.
	ReclaimRetain = "Retain"
	// ReclaimDelete deletes them with the EtcdCluster.
	ReclaimDelete = "Delete"
)

// EtcdStorage describes each member's data volume.
type EtcdStorage struct {
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
	// EtcdCluster is deleted: Retain (default) keeps them, Delete removes
	// them with it. Volumes of members removed by scaling in are always
	// deleted, since a removed member's data can never rejoin.
	// +optional
	// +kubebuilder:default=Retain
	// +kubebuilder:validation:Enum=Retain;Delete
	ReclaimPolicy string `json:"reclaimPolicy,omitempty"`
}

// EtcdPodPolicy holds the parts of the member pods a user may set.
type EtcdPodPolicy struct {
	// resources of the etcd container. Requests may not exceed limits;
	// hugepages and extended resources need a limit equal to their
	// request.
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

	// nodeSelector of the member pods: node label keys and the values
	// they must have.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 317 && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$'))",message="nodeSelector keys must be label keys: an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
	NodeSelector map[string]LabelValue `json:"nodeSelector,omitempty"`

	// affinity of the member pods.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.nodeAffinity) || !has(self.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution) || size(self.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms) > 0",message="nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution needs at least one node selector term"
	// +kubebuilder:validation:XValidation:rule="!has(self.podAffinity) || ((!has(self.podAffinity.requiredDuringSchedulingIgnoredDuringExecution) || self.podAffinity.requiredDuringSchedulingIgnoredDuringExecution.all(t, size(t.topologyKey) > 0)) && (!has(self.podAffinity.preferredDuringSchedulingIgnoredDuringExecution) || self.podAffinity.preferredDuringSchedulingIgnoredDuringExecution.all(t, size(t.podAffinityTerm.topologyKey) > 0)))",message="every podAffinity term needs a topologyKey (for example kubernetes.io/hostname)"
	// +kubebuilder:validation:XValidation:rule="!has(self.podAntiAffinity) || ((!has(self.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution) || self.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution.all(t, size(t.topologyKey) > 0)) && (!has(self.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution) || self.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.all(t, size(t.podAffinityTerm.topologyKey) > 0)))",message="every podAntiAffinity term needs a topologyKey (for example kubernetes.io/hostname)"
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// tolerations of the member pods.
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

// EtcdClusterSpec is what the user asks for: size members running etcd
// version.
type EtcdClusterSpec struct {
	// size is the number of members (voters), 1 to 9; odd numbers tolerate
	// the most failures for their size. Changing it adds or removes one
	// member at a time.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=9
	Size int32 `json:"size"`

	// version of etcd, MAJOR.MINOR.PATCH without a leading v (for example
	// 3.6.16); 3.5.0 or newer. Changing it upgrades one member at a time.
	// Upgrades go to a newer patch of the same minor version or to the
	// next minor version; downgrades and skipped minor versions are
	// rejected.
	// +required
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]{1,4}[.][0-9]{1,4}[.][0-9]{1,4}$')",message="version must be MAJOR.MINOR.PATCH, for example 3.6.16 (no leading v, no suffix)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[0-9]{1,4}[.][0-9]{1,4}[.][0-9]{1,4}$') || (int(self.split('.')[0]) == 3 && int(self.split('.')[1]) >= 5)",message="version must be 3.5.0 or newer: older etcd versions are not supported"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[0-9]{1,4}[.][0-9]{1,4}[.][0-9]{1,4}$') || !oldSelf.matches('^[0-9]{1,4}[.][0-9]{1,4}[.][0-9]{1,4}$') || int(self.split('.')[0]) > int(oldSelf.split('.')[0]) || (int(self.split('.')[0]) == int(oldSelf.split('.')[0]) && (int(self.split('.')[1]) > int(oldSelf.split('.')[1]) || (int(self.split('.')[1]) == int(oldSelf.split('.')[1]) && int(self.split('.')[2]) >= int(oldSelf.split('.')[2]))))",messageExpression="'cannot downgrade etcd from ' + oldSelf + ' to ' + self + ': etcd does not support downgrades; restore a backup into a new cluster instead'"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[0-9]{1,4}[.][0-9]{1,4}[.][0-9]{1,4}$') || !oldSelf.matches('^[0-9]{1,4}[.][0-9]{1,4}[.][0-9]{1,4}$') || (int(self.split('.')[0]) == int(oldSelf.split('.')[0]) && int(self.split('.')[1]) <= int(oldSelf.split('.')[1]) + 1)",messageExpression="'cannot upgrade etcd from ' + oldSelf + ' to ' + self + ': upgrade one minor version at a time (to the next minor version first), as etcd supports'"
	Version string `json:"version"`

	// repository of the etcd image; the members run <repository>:v<version>.
	// Default gcr.io/etcd-development/etcd.
	// +optional
	// +kubebuilder:default="gcr.io/etcd-development/etcd"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.contains(' ') && !self.contains(':v')",message="repository must be an image repository without spaces or tag"
	// +kubebuilder:validation:XValidation:rule="!self.matches('[[:space:]]')",message="repository must not contain whitespace"
	Repository string `json:"repository,omitempty"`

	// storage of each member: a PersistentVolumeClaim per member (1Gi of
	// the default StorageClass unless set), kept when the EtcdCluster is
	// deleted unless reclaimPolicy is Delete.
	// +optional
	// +kubebuilder:default={}
	Storage EtcdStorage `json:"storage,omitempty"`

	// pod sets resources and scheduling of the member pods.
	// +optional
	Pod EtcdPodPolicy `json:"pod,omitempty"`

	// paused stops the operator from changing the cluster (members, pods,
	// volumes); status is still reported.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// EtcdMemberStatus is one member as the operator observed it.
type EtcdMemberStatus struct {
	// name of the member; its pod and PersistentVolumeClaim have the same
	// name.
	Name string `json:"name"`
	// id is the etcd member ID in hexadecimal, empty while the member is
	// only planned.
	// +optional
	ID string `json:"id,omitempty"`
	// version of etcd the member runs, as it reports it.
	// +optional
	Version string `json:"version,omitempty"`
	// healthy is true when the member answers on its client URL.
	Healthy bool `json:"healthy"`
	// leader is true for the raft leader.
	// +optional
	Leader bool `json:"leader,omitempty"`
	// learner is true while the member is a non-voting learner catching up.
	// +optional
	Learner bool `json:"learner,omitempty"`
}

// EtcdClusterStatus is what the operator observed.
type EtcdClusterStatus struct {
	// observedGeneration is the generation of the spec this status
	// describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase summarises the cluster: Creating, Running, Scaling, Upgrading,
	// Repairing, Degraded or Paused.
	// +optional
	Phase string `json:"phase,omitempty"`

	// currentVersion is the oldest etcd version a member runs.
	// +optional
	CurrentVersion string `json:"currentVersion,omitempty"`

	// targetVersion is the version the operator is moving the members to.
	// +optional
	TargetVersion string `json:"targetVersion,omitempty"`

	// members of the cluster, by name.
	// +optional
	// +listType=map
	// +listMapKey=name
	Members []EtcdMemberStatus `json:"members,omitempty"`

	// readyMembers is the number of healthy members.
	// +optional
	ReadyMembers int32 `json:"readyMembers"`

	// clientEndpoint is the URL clients connect to (the client Service).
	// +optional
	ClientEndpoint string `json:"clientEndpoint,omitempty"`

	// conditions are Available, Progressing and Degraded.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// EtcdCluster runs an etcd cluster of size members of version, one pod and
// one PersistentVolumeClaim per member, and changes membership and versions
// one member at a time without losing quorum.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 40 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be at most 40 characters of lower-case letters, digits and '-', starting with a letter: it names the member pods and Services"
// +kubebuilder:resource:shortName=etcd,categories=opsmith
// +kubebuilder:printcolumn:name="Size",type=integer,JSONPath=`.spec.size`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyMembers`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.currentVersion`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type EtcdCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec EtcdClusterSpec `json:"spec"`
	// +optional
	Status EtcdClusterStatus `json:"status,omitempty"`
}

// EtcdClusterList is a list of EtcdCluster.
//
// +kubebuilder:object:root=true
type EtcdClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EtcdCluster `json:"items"`
}
