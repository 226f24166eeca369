package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"opsmith.io/opsmith/api/common"
)

// Defaults of a RedisCluster's optional fields.
const (
	// DefaultRepository is the image repository of the Redis nodes; the
	// image of version X.Y.Z is <repository>:X.Y.Z.
	DefaultRepository = "docker.io/library/redis"
	// DefaultVersion is the Redis version of a RedisCluster that names
	// none: the version the project's tests run.
	DefaultVersion = "7.0.15"
	// DefaultReplicasPerShard is the number of replicas of every master.
	DefaultReplicasPerShard = 1
	// PasswordKey is the key of the password in the auth Secret.
	PasswordKey = "password"
)

// Modes of a RedisCluster.
const (
	// ModeCluster is Redis Cluster: the 16384 hash slots are split among
	// size masters, each with replicasPerShard replicas.
	ModeCluster = "cluster"
)

// Condition types reported by a RedisCluster.
const (
	// ConditionAvailable is True when every slot is served by a master
	// and every node that answers reports cluster_state ok.
	ConditionAvailable = "Available"
	// ConditionProgressing is True while the operator changes the cluster
	// (bootstrap, a rolling restart, a live configuration change, a slot
	// migration, a repair), False when the cluster matches the spec or
	// the next step is blocked; the reason and message then name what
	// blocks it.
	ConditionProgressing = "Progressing"
	// ConditionDegraded is True when a node is missing or unhealthy, or
	// an operation is blocked by an invariant that protects the data.
	ConditionDegraded = "Degraded"
)

// Phases of a RedisCluster.
const (
	PhaseCreating    = "Creating"
	PhaseRunning     = "Running"
	PhaseScaling     = "Scaling"
	PhaseUpdating    = "Updating"
	PhaseRepairing   = "Repairing"
	PhaseDegraded    = "Degraded"
	PhasePaused      = "Paused"
	PhaseConfigError = "ConfigError"
)

// RedisAuth says where the password of the nodes comes from.
type RedisAuth struct {
	// secretName names a Secret in the RedisCluster's namespace whose key
	// "password" is the password of every node (requirepass, and
	// masterauth between nodes). Empty (the default): the operator
	// generates a password into the Secret <name>-auth, which it owns.
	// Changing it restarts the nodes one at a time.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == '' || self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="secretName must name a Secret: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"
	SecretName string `json:"secretName,omitempty"`
}

// RedisClusterSpec is what the user asks for: size shards of a master
// and replicasPerShard replicas, running Redis version.
// +kubebuilder:validation:XValidation:rule="self.mode != 'cluster' || self.size >= 3",message="size is the number of shards (masters) and must be at least 3: Redis Cluster needs a majority of masters to agree on a failover"
type RedisClusterSpec struct {
	// mode is how the nodes are organised: cluster (the default; Redis
	// Cluster, hash slots over shards). It cannot be changed.
	// +optional
	// +kubebuilder:default=cluster
	// +kubebuilder:validation:Enum=cluster
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="mode cannot be changed: create a new RedisCluster and move the data"
	Mode string `json:"mode,omitempty"`

	// size is the number of shards, each a master serving a share of the
	// 16384 hash slots; at least 3, at most 100. Growing it adds shards
	// and moves slots to them live; shrinking it moves the slots of the
	// last shards to the others before their nodes are removed.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Size int32 `json:"size"`

	// replicasPerShard is the number of replicas of every master, 0 to 5;
	// default 1. With 0 a lost master loses its slots' data and a
	// restarted master's slots are unavailable while it restarts.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=5
	ReplicasPerShard *int32 `json:"replicasPerShard,omitempty"`

	// version of Redis, MAJOR.MINOR.PATCH (for example 7.0.15); 7.0.0 or
	// newer; default 7.0.15. Changing it restarts the nodes one at a time,
	// replicas first, each master after its mastership was handed over.
	// Downgrades to an older minor version are rejected: Redis cannot
	// load the files a newer version wrote.
	// +optional
	// +kubebuilder:default="7.0.15"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]{1,4}[.][0-9]{1,4}[.][0-9]{1,4}$')",message="version must be MAJOR.MINOR.PATCH, for example 7.0.15 (no leading v, no suffix)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[0-9]{1,4}[.][0-9]{1,4}[.][0-9]{1,4}$') || int(self.split('.')[0]) >= 7",message="version must be 7.0.0 or newer: the operator uses commands older Redis versions lack"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[0-9]{1,4}[.][0-9]{1,4}[.][0-9]{1,4}$') || !oldSelf.matches('^[0-9]{1,4}[.][0-9]{1,4}[.][0-9]{1,4}$') || int(self.split('.')[0]) > int(oldSelf.split('.')[0]) || (int(self.split('.')[0]) == int(oldSelf.split('.')[0]) && int(self.split('.')[1]) >= int(oldSelf.split('.')[1]))",messageExpression="'cannot downgrade Redis from ' + oldSelf + ' to ' + self + ': an older minor version cannot read the data files a newer one wrote'"
	Version string `json:"version,omitempty"`

	// repository of the Redis image; the nodes run
	// <repository>:<version>. Default docker.io/library/redis. The image
	// must have redis-server on its PATH.
	// +optional
	// +kubebuilder:default="docker.io/library/redis"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.matches('[[:space:]]') && !self.matches(':[^/]*$')",message="repository must be an image repository without whitespace or tag (the tag is the version)"
	Repository string `json:"repository,omitempty"`

	// imagePullPolicy of the Redis containers: Always, IfNotPresent or
	// Never; default: Kubernetes' default for the image.
	// +optional
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// resources of every Redis container. Changing them restarts the
	// nodes one at a time, masters after a handover.
	// +optional
	Resources common.ResourceRequirements `json:"resources,omitempty"`

	// config holds redis.conf directives (for example maxclients,
	// maxmemory, maxmemory-policy). Directives Redis can change at run
	// time are applied to every node with CONFIG SET, without a restart;
	// the others restart the nodes one at a time. Directives the operator
	// owns (port, cluster-*, dir, requirepass, ...) are rejected.
	// Persistence defaults to appendonly yes with appendfsync everysec.
	// +optional
	Config RedisConfig `json:"config,omitempty"`

	// auth sets where the password comes from; by default the operator
	// generates one.
	// +optional
	Auth RedisAuth `json:"auth,omitempty"`

	// storage of each node: a PersistentVolumeClaim per node (1Gi of the
	// default StorageClass unless set) holding the append-only file and
	// nodes.conf, kept when the RedisCluster is deleted unless
	// reclaimPolicy is Delete.
	// +optional
	// +kubebuilder:default={}
	Storage common.Storage `json:"storage,omitempty"`

	// Scheduling: nodeSelector, affinity and tolerations of the node pods.
	// Without an affinity, the replicas of a shard prefer other Kubernetes
	// nodes than their master.
	common.Scheduling `json:",inline"`

	// paused stops the operator from changing the cluster (pods, volumes,
	// slots, configuration); status is still reported.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// RedisNodeStatus is one Redis node as the operator observed it.
type RedisNodeStatus struct {
	// name of the node; its pod and PersistentVolumeClaim have the same
	// name: <cluster>-<shard>-<replica>.
	Name string `json:"name"`
	// nodeID is the Redis Cluster node ID, empty while the node does not
	// answer.
	// +optional
	NodeID string `json:"nodeID,omitempty"`
	// role is master or replica, as Redis reports it.
	// +optional
	Role string `json:"role,omitempty"`
	// healthy: the node answers, and no node that answers flags it failing
	// or has lost its link to it.
	Healthy bool `json:"healthy"`
	// slots is the number of slots a master serves.
	// +optional
	Slots int32 `json:"slots,omitempty"`
	// lagBytes is how far a replica is behind its master, when both
	// answered, rounded down to 64 KiB: the replication pings of an idle
	// cluster move the offsets by a few bytes, which is no lag and should
	// not rewrite the status.
	// +optional
	LagBytes *int64 `json:"lagBytes,omitempty"`
}

// RedisShardStatus is one shard: its master first, then its replicas.
type RedisShardStatus struct {
	// index of the shard; its nodes are named <cluster>-<index>-<replica>.
	Index int32 `json:"index"`
	// master is the node that serves the shard's slots.
	// +optional
	Master string `json:"master,omitempty"`
	// nodes of the shard.
	// +optional
	// +listType=map
	// +listMapKey=name
	Nodes []RedisNodeStatus `json:"nodes,omitempty"`
}

// RedisClusterStatus is what the operator observed.
type RedisClusterStatus struct {
	// observedGeneration is the generation of the spec this status
	// describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase summarises the cluster: Creating, Running, Scaling, Updating,
	// Repairing, Degraded, ConfigError or Paused.
	// +optional
	Phase string `json:"phase,omitempty"`

	// currentVersion is the oldest Redis version a node runs.
	// +optional
	CurrentVersion string `json:"currentVersion,omitempty"`

	// shards of the cluster, by index.
	// +optional
	// +listType=map
	// +listMapKey=index
	Shards []RedisShardStatus `json:"shards,omitempty"`

	// slotsAssigned is the number of the 16384 slots that have a master,
	// the smallest count a node reports.
	// +optional
	SlotsAssigned int32 `json:"slotsAssigned"`

	// clusterState is ok when every node that answers reports
	// cluster_state ok, else fail.
	// +optional
	ClusterState string `json:"clusterState,omitempty"`

	// readyNodes is the number of healthy nodes.
	// +optional
	ReadyNodes int32 `json:"readyNodes"`

	// authSecretName is the Secret holding the password (key password).
	// +optional
	AuthSecretName string `json:"authSecretName,omitempty"`

	// clientEndpoint is the address of the Service clients start from
	// (a cluster client discovers the nodes from there).
	// +optional
	ClientEndpoint string `json:"clientEndpoint,omitempty"`

	// conditions are Available, Progressing and Degraded.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// RedisCluster runs Redis in cluster mode: size shards of a master and
// replicasPerShard replicas, one pod and one PersistentVolumeClaim per
// node, and changes them one node at a time, handing mastership over
// before a master restarts and moving slots live when shards come and go.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 40 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be at most 40 characters of lower-case letters, digits and '-', starting with a letter: it names the node pods and Services"
// +kubebuilder:resource:shortName=redis,categories=opsmith
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Shards",type=integer,JSONPath=`.spec.size`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyNodes`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.currentVersion`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RedisCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec RedisClusterSpec `json:"spec"`
	// +optional
	Status RedisClusterStatus `json:"status,omitempty"`
}

// RedisClusterList is a list of RedisCluster.
//
// +kubebuilder:object:root=true
type RedisClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RedisCluster `json:"items"`
}

// Replicas is spec.replicasPerShard with its default.
func (s *RedisClusterSpec) Replicas() int {
	if s.ReplicasPerShard == nil {
		return DefaultReplicasPerShard
	}
	return int(*s.ReplicasPerShard)
}
