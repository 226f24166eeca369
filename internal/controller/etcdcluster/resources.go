package etcdcluster

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	"k8s.io/utils/ptr"

	etcdv1alpha1 "opsmith.io/opsmith/api/etcd/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
	"opsmith.io/opsmith/internal/etcd"
)

// Labels and annotations of the objects an EtcdCluster owns.
const (
	// LabelCluster names the EtcdCluster of a pod, volume or Service.
	LabelCluster = "etcd.opsmith.io/cluster"
	// LabelMember names the member of a pod or volume.
	LabelMember = "etcd.opsmith.io/member"
	// LabelVersion is the etcd version a member pod runs.
	LabelVersion = "etcd.opsmith.io/version"

	// AnnotationMemberID is the etcd member ID (hex) whose data a volume
	// holds.
	AnnotationMemberID = "etcd.opsmith.io/member-id"
	// AnnotationInitialCluster and AnnotationInitialClusterState are the
	// --initial-cluster and --initial-cluster-state of the member's first
	// start, kept on its volume so that its pod can always be rebuilt.
	AnnotationInitialCluster      = "etcd.opsmith.io/initial-cluster"
	AnnotationInitialClusterState = "etcd.opsmith.io/initial-cluster-state"
	// AnnotationPodHash is the hash of the desired pod spec a pod was
	// made from; a different hash makes the pod outdated.
	AnnotationPodHash = "etcd.opsmith.io/pod-hash"

	labelName     = "app.kubernetes.io/name"
	labelInstance = "app.kubernetes.io/instance"

	clientPort = 2379
	peerPort   = 2380
	dataDir    = "/var/lib/etcd"
	// runAsUser is the user of the etcd container (the images run as
	// 65532 by default; it is set explicitly so that runAsNonRoot holds
	// for any image).
	runAsUser = 65532
)

func selectorLabels(ec *etcdv1alpha1.EtcdCluster) map[string]string {
	return map[string]string{LabelCluster: ec.Name}
}

func objectLabels(ec *etcdv1alpha1.EtcdCluster) map[string]string {
	return map[string]string{
		LabelCluster:         ec.Name,
		apply.LabelManagedBy: apply.ManagedByValue,
		labelName:            "etcd",
		labelInstance:        ec.Name,
	}
}

func memberLabels(ec *etcdv1alpha1.EtcdCluster, member string) map[string]string {
	l := objectLabels(ec)
	l[LabelMember] = member
	return l
}

func ownerReference(ec *etcdv1alpha1.EtcdCluster) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: etcdv1alpha1.GroupVersion.String(), Kind: "EtcdCluster", Name: ec.Name, UID: ec.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}
}

func ownerReferenceAC(ec *etcdv1alpha1.EtcdCluster) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().WithAPIVersion(etcdv1alpha1.GroupVersion.String()).WithKind("EtcdCluster").
		WithName(ec.Name).WithUID(ec.UID).WithController(true).WithBlockOwnerDeletion(true)
}

// PeerServiceName is the headless Service that gives every member the DNS
// name <member>.<cluster>.<namespace>.svc: the EtcdCluster's own name.
func PeerServiceName(ec *etcdv1alpha1.EtcdCluster) string { return ec.Name }

// ClientServiceName is the ClusterIP Service clients use.
func ClientServiceName(ec *etcdv1alpha1.EtcdCluster) string { return ec.Name + "-client" }

// ClientEndpoint is the URL of the client Service.
func ClientEndpoint(ec *etcdv1alpha1.EtcdCluster) string {
	return fmt.Sprintf("http://%s.%s.svc:%d", ClientServiceName(ec), ec.Namespace, clientPort)
}

func memberHost(ec *etcdv1alpha1.EtcdCluster, member string) string {
	return fmt.Sprintf("%s.%s.%s.svc", member, PeerServiceName(ec), ec.Namespace)
}

// PeerURL is the peer URL of a member.
func PeerURL(ec *etcdv1alpha1.EtcdCluster, member string) string {
	return fmt.Sprintf("http://%s:%d", memberHost(ec, member), peerPort)
}

// ClientURL is the client URL a member advertises.
func ClientURL(ec *etcdv1alpha1.EtcdCluster, member string) string {
	return fmt.Sprintf("http://%s:%d", memberHost(ec, member), clientPort)
}

// podClientURL is the client URL of the member whose pod has the IP ip:
// the operator talks to the members there.
func podClientURL(ip string) string {
	return "http://" + net.JoinHostPort(ip, strconv.Itoa(clientPort))
}

// Naming is how the planner names the members of ec.
func Naming(ec *etcdv1alpha1.EtcdCluster) etcd.Naming {
	return etcd.Naming{Prefix: ec.Name, PeerURL: func(name string) string { return PeerURL(ec, name) }}
}

// PeerService is the headless Service behind the members' DNS names. It
// publishes members that are not ready yet: a starting member must find its
// peers before it can become ready.
func PeerService(ec *etcdv1alpha1.EtcdCluster) *corev1ac.ServiceApplyConfiguration {
	return corev1ac.Service(PeerServiceName(ec), ec.Namespace).
		WithLabels(objectLabels(ec)).
		WithOwnerReferences(ownerReferenceAC(ec)).
		WithSpec(corev1ac.ServiceSpec().
			WithClusterIP(corev1.ClusterIPNone).
			WithPublishNotReadyAddresses(true).
			WithSelector(selectorLabels(ec)).
			WithPorts(
				corev1ac.ServicePort().WithName("client").WithPort(clientPort).WithTargetPort(intstr.FromInt32(clientPort)).WithProtocol(corev1.ProtocolTCP),
				corev1ac.ServicePort().WithName("peer").WithPort(peerPort).WithTargetPort(intstr.FromInt32(peerPort)).WithProtocol(corev1.ProtocolTCP),
			))
}

// ClientService is the ClusterIP Service clients connect to; it routes to
// ready members.
func ClientService(ec *etcdv1alpha1.EtcdCluster) *corev1ac.ServiceApplyConfiguration {
	return corev1ac.Service(ClientServiceName(ec), ec.Namespace).
		WithLabels(objectLabels(ec)).
		WithOwnerReferences(ownerReferenceAC(ec)).
		WithSpec(corev1ac.ServiceSpec().
			WithType(corev1.ServiceTypeClusterIP).
			WithSelector(selectorLabels(ec)).
			WithPorts(corev1ac.ServicePort().WithName("client").WithPort(clientPort).
				WithTargetPort(intstr.FromInt32(clientPort)).WithProtocol(corev1.ProtocolTCP)))
}

// PodDisruptionBudget lets voluntary disruptions (node drains) take down
// members only while a quorum of size stays available.
func PodDisruptionBudget(ec *etcdv1alpha1.EtcdCluster) *policyv1ac.PodDisruptionBudgetApplyConfiguration {
	return policyv1ac.PodDisruptionBudget(ec.Name, ec.Namespace).
		WithLabels(objectLabels(ec)).
		WithOwnerReferences(ownerReferenceAC(ec)).
		WithSpec(policyv1ac.PodDisruptionBudgetSpec().
			WithMinAvailable(intstr.FromInt(etcd.Quorum(int(ec.Spec.Size)))).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(selectorLabels(ec))))
}

// Volume is the PersistentVolumeClaim of a new member, recording what its
// first start needs. It is owned by the EtcdCluster only when the user chose
// reclaimPolicy Delete.
func Volume(ec *etcdv1alpha1.EtcdCluster, a etcd.Action) *corev1.PersistentVolumeClaim {
	size := resource.MustParse(etcdv1alpha1.DefaultStorageSize)
	if ec.Spec.Storage.Size != nil {
		size = *ec.Spec.Storage.Size
	}
	state := "existing"
	if a.NewCluster {
		state = "new"
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name: a.Name, Namespace: ec.Namespace, Labels: memberLabels(ec, a.Name),
			Annotations: map[string]string{
				AnnotationInitialCluster:      a.InitialCluster,
				AnnotationInitialClusterState: state,
			},
			OwnerReferences: volumeOwners(ec),
		},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ec.Spec.Storage.StorageClassName,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}
	if a.MemberID != 0 {
		pvc.Annotations[AnnotationMemberID] = FormatID(a.MemberID)
	}
	return pvc
}

// volumeOwners are the owner references of the members' volumes: the
// EtcdCluster only with reclaimPolicy Delete, so that by default deleting
// it keeps the data.
func volumeOwners(ec *etcdv1alpha1.EtcdCluster) []metav1.OwnerReference {
	if ec.Spec.Storage.ReclaimPolicy != etcdv1alpha1.ReclaimDelete {
		return nil
	}
	ref := ownerReference(ec)
	ref.Controller, ref.BlockOwnerDeletion = nil, nil
	return []metav1.OwnerReference{ref}
}

// FormatID writes a member ID as etcdctl does.
func FormatID(id uint64) string { return strconv.FormatUint(id, 16) }

// ParseID reads FormatID's output; 0 when s is empty or malformed.
func ParseID(s string) uint64 {
	id, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0
	}
	return id
}

// Image is the etcd image of version.
func Image(ec *etcdv1alpha1.EtcdCluster, version string) string {
	repo := ec.Spec.Repository
	if repo == "" {
		repo = etcdv1alpha1.DefaultRepository
	}
	return repo + ":v" + version
}

// podTemplate is what every member pod shares; its hash tells outdated
// pods apart.
type podTemplate struct {
	Image     string                      `json:"image"`
	Resources corev1.ResourceRequirements `json:"resources"`
	Policy    etcdv1alpha1.EtcdPodPolicy  `json:"policy"`
	Revision  int                         `json:"revision"`
}

// podRevision changes when this package changes member pods in a way that
// should roll existing members.
const podRevision = 1

// PodHash is the hash of the pod spec a member of version gets.
func PodHash(ec *etcdv1alpha1.EtcdCluster, version string) string {
	b, err := json.Marshal(podTemplate{Image: Image(ec, version), Resources: corev1.ResourceRequirements(ec.Spec.Pod.Resources), Policy: ec.Spec.Pod, Revision: podRevision})
	if err != nil {
		panic(err) // plain data always marshals
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// nodeSelector is the member pods' node selector.
func nodeSelector(ec *etcdv1alpha1.EtcdCluster) map[string]string {
	if ec.Spec.Pod.NodeSelector == nil {
		return nil
	}
	out := make(map[string]string, len(ec.Spec.Pod.NodeSelector))
	for k, v := range ec.Spec.Pod.NodeSelector {
		out[k] = string(v)
	}
	return out
}

// Pod is the pod of member, made from its volume's annotations. Its
// security settings meet the restricted Pod Security Standard; fsGroup
// makes the volume writable by the etcd user on storage that supports it.
func Pod(ec *etcdv1alpha1.EtcdCluster, member string, pvc *corev1.PersistentVolumeClaim, version string) *corev1.Pod {
	labels := memberLabels(ec, member)
	labels[LabelVersion] = version
	args := []string{
		"--name=" + member,
		"--data-dir=" + dataDir + "/data",
		fmt.Sprintf("--listen-client-urls=http://0.0.0.0:%d", clientPort),
		"--advertise-client-urls=" + ClientURL(ec, member),
		fmt.Sprintf("--listen-peer-urls=http://0.0.0.0:%d", peerPort),
		"--initial-advertise-peer-urls=" + PeerURL(ec, member),
		"--initial-cluster=" + pvc.Annotations[AnnotationInitialCluster],
		"--initial-cluster-state=" + pvc.Annotations[AnnotationInitialClusterState],
		"--initial-cluster-token=" + ec.Namespace + "/" + ec.Name + "/" + string(ec.UID),
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: member, Namespace: ec.Namespace, Labels: labels,
			Annotations:     map[string]string{AnnotationPodHash: PodHash(ec, version)},
			OwnerReferences: []metav1.OwnerReference{ownerReference(ec)},
		},
		Spec: corev1.PodSpec{
			Hostname:                      member,
			Subdomain:                     PeerServiceName(ec),
			RestartPolicy:                 corev1.RestartPolicyAlways,
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			NodeSelector:                  nodeSelector(ec),
			Affinity:                      ec.Spec.Pod.Affinity,
			Tolerations:                   ec.Spec.Pod.Tolerations,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:        ptr.To(true),
				RunAsUser:           ptr.To[int64](runAsUser),
				RunAsGroup:          ptr.To[int64](runAsUser),
				FSGroup:             ptr.To[int64](runAsUser),
				FSGroupChangePolicy: ptr.To(corev1.FSGroupChangeOnRootMismatch),
				SeccompProfile:      &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:      "etcd",
				Image:     Image(ec, version),
				Command:   []string{"/usr/local/bin/etcd"},
				Args:      args,
				Resources: corev1.ResourceRequirements(ec.Spec.Pod.Resources),
				Ports: []corev1.ContainerPort{
					{Name: "client", ContainerPort: clientPort, Protocol: corev1.ProtocolTCP},
					{Name: "peer", ContainerPort: peerPort, Protocol: corev1.ProtocolTCP},
				},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
						Path: "/readyz", Port: intstr.FromInt32(clientPort)}},
					PeriodSeconds: 2, TimeoutSeconds: 2, FailureThreshold: 3,
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: dataDir}},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					ReadOnlyRootFilesystem:   ptr.To(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc.Name}}}},
		},
	}
}
