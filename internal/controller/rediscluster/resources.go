package rediscluster

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	"k8s.io/utils/ptr"

	"opsmith.io/opsmith/api/common"
	redisv1alpha1 "opsmith.io/opsmith/api/redis/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
)

// Labels and annotations of the objects a RedisCluster owns.
const (
	// LabelCluster names the RedisCluster of a pod, volume, Secret or
	// Service.
	LabelCluster = "redis.opsmith.io/cluster"
	// LabelNode names the Redis node of a pod or volume.
	LabelNode = "redis.opsmith.io/node"
	// LabelShard is the shard index of a node's pod.
	LabelShard = "redis.opsmith.io/shard"

	// AnnotationPodHash is the hash of what a node's pod was made from
	// that only a restart changes (image, resources, scheduling, the
	// directives Redis cannot change at run time, the password); a pod
	// with another hash is restarted, one node at a time.
	AnnotationPodHash = "redis.opsmith.io/pod-hash"
	// AnnotationConfigHash is the hash of the run-time directives the node
	// runs with (set at its start, or by CONFIG SET since).
	AnnotationConfigHash = "redis.opsmith.io/config-hash"
	// AnnotationConfigKeys lists the run-time directives the node was
	// given: dropping one of them from spec.config restarts the node
	// (CONFIG SET cannot restore Redis's default).
	AnnotationConfigKeys = "redis.opsmith.io/config-keys"
	// AnnotationNodeID, on a node's volume, is the Redis node ID whose
	// nodes.conf the volume holds, recorded once the node answered. A
	// volume without it is new (or predates it): its pod is created only
	// once redis.PlanFreshStart allows.
	AnnotationNodeID = "redis.opsmith.io/node-id"

	labelName     = "app.kubernetes.io/name"
	labelInstance = "app.kubernetes.io/instance"

	clientPort = 6379
	busPort    = 16379
	dataDir    = "/data"
	configDir  = "/etc/redis"
	configFile = "redis.conf"
	// runAsUser is the user of the Redis container, set explicitly so
	// that runAsNonRoot holds for any image.
	runAsUser = 65532
)

func selectorLabels(rc *redisv1alpha1.RedisCluster) map[string]string {
	return map[string]string{LabelCluster: rc.Name}
}

func objectLabels(rc *redisv1alpha1.RedisCluster) map[string]string {
	return map[string]string{
		LabelCluster:         rc.Name,
		apply.LabelManagedBy: apply.ManagedByValue,
		labelName:            "redis",
		labelInstance:        rc.Name,
	}
}

func nodeLabels(rc *redisv1alpha1.RedisCluster, node string, shard int) map[string]string {
	l := objectLabels(rc)
	l[LabelNode] = node
	l[LabelShard] = fmt.Sprint(shard)
	return l
}

func ownerReference(rc *redisv1alpha1.RedisCluster) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: redisv1alpha1.GroupVersion.String(), Kind: "RedisCluster", Name: rc.Name, UID: rc.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}
}

func ownerReferenceAC(rc *redisv1alpha1.RedisCluster) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().WithAPIVersion(redisv1alpha1.GroupVersion.String()).WithKind("RedisCluster").
		WithName(rc.Name).WithUID(rc.UID).WithController(true).WithBlockOwnerDeletion(true)
}

// NodesServiceName is the headless Service that gives every node the DNS
// name <node>.<cluster>-nodes.<namespace>.svc.
func NodesServiceName(rc *redisv1alpha1.RedisCluster) string { return rc.Name + "-nodes" }

// ClientServiceName is the ClusterIP Service a cluster client starts from.
func ClientServiceName(rc *redisv1alpha1.RedisCluster) string { return rc.Name }

// ClientEndpoint is the address of the client Service.
func ClientEndpoint(rc *redisv1alpha1.RedisCluster) string {
	return fmt.Sprintf("%s.%s.svc:%d", ClientServiceName(rc), rc.Namespace, clientPort)
}

// GeneratedSecretName is the Secret the operator generates the password
// into when spec.auth.secretName is empty.
func GeneratedSecretName(rc *redisv1alpha1.RedisCluster) string { return rc.Name + "-auth" }

// AuthSecretName is the Secret that holds the password.
func AuthSecretName(rc *redisv1alpha1.RedisCluster) string {
	if rc.Spec.Auth.SecretName != "" {
		return rc.Spec.Auth.SecretName
	}
	return GeneratedSecretName(rc)
}

// ConfigSecretName is the Secret holding the nodes' redis.conf: a Secret,
// not a ConfigMap, because the file carries the password.
func ConfigSecretName(rc *redisv1alpha1.RedisCluster) string { return rc.Name + "-config" }

// NodesService is the headless Service behind the nodes' DNS names; it
// publishes nodes that are not ready yet.
func NodesService(rc *redisv1alpha1.RedisCluster) *corev1ac.ServiceApplyConfiguration {
	return corev1ac.Service(NodesServiceName(rc), rc.Namespace).
		WithLabels(objectLabels(rc)).
		WithOwnerReferences(ownerReferenceAC(rc)).
		WithSpec(corev1ac.ServiceSpec().
			WithClusterIP(corev1.ClusterIPNone).
			WithPublishNotReadyAddresses(true).
			WithSelector(selectorLabels(rc)).
			WithPorts(
				corev1ac.ServicePort().WithName("redis").WithPort(clientPort).WithTargetPort(intstr.FromInt32(clientPort)).WithProtocol(corev1.ProtocolTCP),
				corev1ac.ServicePort().WithName("bus").WithPort(busPort).WithTargetPort(intstr.FromInt32(busPort)).WithProtocol(corev1.ProtocolTCP),
			))
}

// ClientService is the ClusterIP Service clients connect to first; a
// cluster client learns every node from whichever node answers.
func ClientService(rc *redisv1alpha1.RedisCluster) *corev1ac.ServiceApplyConfiguration {
	return corev1ac.Service(ClientServiceName(rc), rc.Namespace).
		WithLabels(objectLabels(rc)).
		WithOwnerReferences(ownerReferenceAC(rc)).
		WithSpec(corev1ac.ServiceSpec().
			WithType(corev1.ServiceTypeClusterIP).
			WithSelector(selectorLabels(rc)).
			WithPorts(corev1ac.ServicePort().WithName("redis").WithPort(clientPort).
				WithTargetPort(intstr.FromInt32(clientPort)).WithProtocol(corev1.ProtocolTCP)))
}

// PodDisruptionBudget lets voluntary disruptions (node drains) take down
// one Redis node at a time.
func PodDisruptionBudget(rc *redisv1alpha1.RedisCluster) *policyv1ac.PodDisruptionBudgetApplyConfiguration {
	return policyv1ac.PodDisruptionBudget(rc.Name, rc.Namespace).
		WithLabels(objectLabels(rc)).
		WithOwnerReferences(ownerReferenceAC(rc)).
		WithSpec(policyv1ac.PodDisruptionBudgetSpec().
			WithMaxUnavailable(intstr.FromInt(1)).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(selectorLabels(rc))))
}

// ConfigSecret is the Secret with the nodes' redis.conf.
func ConfigSecret(rc *redisv1alpha1.RedisCluster, conf string) *corev1ac.SecretApplyConfiguration {
	return corev1ac.Secret(ConfigSecretName(rc), rc.Namespace).
		WithLabels(objectLabels(rc)).
		WithOwnerReferences(ownerReferenceAC(rc)).
		WithType(corev1.SecretTypeOpaque).
		WithData(map[string][]byte{configFile: []byte(conf)})
}

// Volume is the PersistentVolumeClaim of a node. It is owned by the
// RedisCluster only with reclaimPolicy Delete.
func Volume(rc *redisv1alpha1.RedisCluster, node string, shard int) *corev1.PersistentVolumeClaim {
	size := resource.MustParse(common.DefaultStorageSize)
	if rc.Spec.Storage.Size != nil {
		size = *rc.Spec.Storage.Size
	}
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name: node, Namespace: rc.Namespace, Labels: nodeLabels(rc, node, shard),
			OwnerReferences: volumeOwners(rc),
		},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: rc.Spec.Storage.StorageClassName,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}
}

// volumeOwners are the owner references of the nodes' volumes: the
// RedisCluster only with reclaimPolicy Delete, so that by default deleting
// it keeps the data.
func volumeOwners(rc *redisv1alpha1.RedisCluster) []metav1.OwnerReference {
	if rc.Spec.Storage.ReclaimPolicy != common.ReclaimDelete {
		return nil
	}
	ref := ownerReference(rc)
	ref.Controller, ref.BlockOwnerDeletion = nil, nil
	return []metav1.OwnerReference{ref}
}

// Version is spec.version with its default.
func Version(rc *redisv1alpha1.RedisCluster) string {
	if rc.Spec.Version != "" {
		return rc.Spec.Version
	}
	return redisv1alpha1.DefaultVersion
}

// Image is the Redis image of the nodes.
func Image(rc *redisv1alpha1.RedisCluster) string {
	repo := rc.Spec.Repository
	if repo == "" {
		repo = redisv1alpha1.DefaultRepository
	}
	return repo + ":" + Version(rc)
}

func nodeSelector(rc *redisv1alpha1.RedisCluster) map[string]string {
	if rc.Spec.NodeSelector == nil {
		return nil
	}
	out := make(map[string]string, len(rc.Spec.NodeSelector))
	for k, v := range rc.Spec.NodeSelector {
		out[k] = string(v)
	}
	return out
}

// affinity is spec.affinity, or by default: the nodes of a shard prefer
// different Kubernetes nodes, so that losing one keeps a copy of every
// shard.
func affinity(rc *redisv1alpha1.RedisCluster, shard int) *corev1.Affinity {
	if rc.Spec.Affinity != nil {
		return rc.Spec.Affinity
	}
	return &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
			Weight: 100,
			PodAffinityTerm: corev1.PodAffinityTerm{
				TopologyKey: corev1.LabelHostname,
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
					LabelCluster: rc.Name, LabelShard: fmt.Sprint(shard),
				}},
			},
		}},
	}}
}

// Pod is the pod of a node. Its security settings meet the restricted Pod
// Security Standard; fsGroup makes the volume writable by the Redis user.
// The hashes say what it was made from: podHash the parts only a restart
// changes, configHash and configKeys the run-time directives.
func Pod(rc *redisv1alpha1.RedisCluster, node string, shard int, h hashes) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: node, Namespace: rc.Namespace, Labels: nodeLabels(rc, node, shard),
			Annotations: map[string]string{
				AnnotationPodHash:    h.pod,
				AnnotationConfigHash: h.config,
				AnnotationConfigKeys: h.configKeys,
			},
			OwnerReferences: []metav1.OwnerReference{ownerReference(rc)},
		},
		Spec: corev1.PodSpec{
			Hostname:                      node,
			Subdomain:                     NodesServiceName(rc),
			RestartPolicy:                 corev1.RestartPolicyAlways,
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			NodeSelector:                  nodeSelector(rc),
			Affinity:                      affinity(rc, shard),
			Tolerations:                   rc.Spec.Tolerations,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:        ptr.To(true),
				RunAsUser:           ptr.To[int64](runAsUser),
				RunAsGroup:          ptr.To[int64](runAsUser),
				FSGroup:             ptr.To[int64](runAsUser),
				FSGroupChangePolicy: ptr.To(corev1.FSGroupChangeOnRootMismatch),
				SeccompProfile:      &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            "redis",
				Image:           Image(rc),
				ImagePullPolicy: rc.Spec.ImagePullPolicy,
				// The node announces its name: a node the cluster no longer
				// has is then recognised by name, and forgotten at once.
				Command:   []string{"redis-server", configDir + "/" + configFile, "--cluster-announce-hostname", node},
				Resources: corev1.ResourceRequirements(rc.Spec.Resources),
				Ports: []corev1.ContainerPort{
					{Name: "redis", ContainerPort: clientPort, Protocol: corev1.ProtocolTCP},
					{Name: "bus", ContainerPort: busPort, Protocol: corev1.ProtocolTCP},
				},
				// Ready once it accepts connections; the operator itself
				// reads each node's cluster state, link and sync status
				// before it moves on to the next node.
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(clientPort)}},
					PeriodSeconds: 2, TimeoutSeconds: 2, FailureThreshold: 3,
				},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "data", MountPath: dataDir},
					{Name: "config", MountPath: configDir, ReadOnly: true},
				},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					ReadOnlyRootFilesystem:   ptr.To(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "data", VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: node}}},
				{Name: "config", VolumeSource: corev1.VolumeSource{
					Secret: &corev1.SecretVolumeSource{SecretName: ConfigSecretName(rc), DefaultMode: ptr.To[int32](0o440)}}},
			},
		},
	}
}
