package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"opsmith.io/opsmith/api/common"
)

// Defaults of an EtcdCluster's optional fields.
const (
	// DefaultRepository is the image repository of the etcd members; the
	// image of version X.Y.Z is <repository>:vX.Y.Z.
	DefaultRepository = "gcr.io/etcd-development/etcd"
	// DefaultStorageSize is the size of each member's data volume.
	DefaultStorageSize = common.DefaultStorageSize
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
	ReclaimRetain = common.ReclaimRetain
	// ReclaimDelete deletes them with the EtcdCluster.
	ReclaimDelete = common.ReclaimDelete
)

// EtcdStorage describes each member's data volume.
type EtcdStorage = common.Storage

// EtcdPodPolicy holds the parts of the member pods a user may set.
type EtcdPodPolicy struct {
	// resources of the etcd container. Requests may not exceed limits;
	// hugepages and extended resources need a limit equal to their
	// request.
	// +optional
	Resources common.ResourceRequirements `json:"resources,omitempty"`

	// Scheduling: nodeSelector, affinity and tolerations of the member
	// pods.
	common.Scheduling `json:",inline"`
}

// LabelValue is the value of a label.
type LabelValue = common.LabelValue

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
	Storage common.Storage `json:"storage,omitempty"`

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
