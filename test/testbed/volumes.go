package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// The real node's storage. Its default StorageClass (DefaultStorageClass)
// is served by a small provisioner that runs inside the testbed, like
// rancher's local-path-provisioner that kind ships:
//
//   - a claim of a class whose provisioner is LocalProvisioner gets, once a
//     pod that uses it is scheduled (WaitForFirstConsumer, as local-path
//     binds), a directory under the node's volume directory and a "local"
//     PersistentVolume with node affinity to the node, pre-bound to the
//     claim;
//   - a released volume whose reclaim policy is Delete loses its directory
//     and is deleted; Retain keeps both until the node stops.
//
// Why local volumes and not host-path ones: the kubelet applies a pod's
// fsGroup to a local volume (group ownership, setgid, group write) but
// never to a host-path volume. The directory starts as a fresh filesystem
// does, root-owned with mode 0755, so a non-root pod writes it exactly when
// it sets fsGroup, as on a cloud provider's block volume; a workload that
// forgot fsGroup fails here as it would there, instead of passing on a
// world-writable directory. (kube-controller-manager's own host-path
// provisioner, used before, made root-owned 0750 directories no non-root
// pod could write.)
//
// Stop removes the node's volume directory, even when the cluster's
// directory is kept for its logs.

// LocalProvisioner provisions the real node's local volumes.
const LocalProvisioner = "testbed.opsmith.io/local"

const (
	annProvisionedBy = "pv.kubernetes.io/provisioned-by"
	annSelectedNode  = "volume.kubernetes.io/selected-node"
)

// defaultStorageClass is the real node's default class: local volumes,
// bound when a pod needs them, deleted with their claims.
func defaultStorageClass() *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: DefaultStorageClass,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
		Provisioner:       LocalProvisioner,
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
	}
}

// volumeProvisioner is the provisioner of LocalProvisioner volumes.
type volumeProvisioner struct {
	cs   kubernetes.Interface
	dir  string // volume directories are made here
	node string
	logf func(string, ...any)

	pvcs    func() ([]*corev1.PersistentVolumeClaim, error)
	pvs     func() ([]*corev1.PersistentVolume, error)
	classes func(name string) (*storagev1.StorageClass, error)

	cancel context.CancelFunc
	done   chan struct{}
	// reported holds the problems logged already, so that each is logged
	// once and not on every pass.
	reported sync.Map
}

// startVolumeProvisioner watches claims and volumes and provisions and
// deletes volumes until stop is called.
func startVolumeProvisioner(ctx context.Context, cs kubernetes.Interface, dir, node string, logf func(string, ...any)) (*volumeProvisioner, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f := informers.NewSharedInformerFactory(cs, 0)
	pvcInf, pvInf, scInf := f.Core().V1().PersistentVolumeClaims(), f.Core().V1().PersistentVolumes(), f.Storage().V1().StorageClasses()
	p := &volumeProvisioner{cs: cs, dir: dir, node: node, logf: logf, cancel: cancel, done: make(chan struct{}),
		pvcs:    func() ([]*corev1.PersistentVolumeClaim, error) { return pvcInf.Lister().List(labels.Everything()) },
		pvs:     func() ([]*corev1.PersistentVolume, error) { return pvInf.Lister().List(labels.Everything()) },
		classes: scInf.Lister().Get,
	}
	kick := make(chan struct{}, 1)
	notify := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { notify() }, UpdateFunc: func(any, any) { notify() }, DeleteFunc: func(any) { notify() },
	}
	for _, inf := range []cache.SharedIndexInformer{pvcInf.Informer(), pvInf.Informer(), scInf.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			cancel()
			return nil, err
		}
	}
	f.Start(ctx.Done())
	go func() {
		defer close(p.done)
		defer f.Shutdown()
		f.WaitForCacheSync(ctx.Done())
		for {
			p.sync(ctx)
			select {
			case <-ctx.Done():
				return
			case <-kick:
			case <-time.After(5 * time.Second): // retry what failed
			}
		}
	}()
	return p, nil
}

// stop ends the provisioner and waits for it.
func (p *volumeProvisioner) stop() {
	p.cancel()
	<-p.done
}

// sync provisions a volume for every claim that waits for one and deletes
// every released volume whose reclaim policy is Delete. It is idempotent:
// volume names derive from the claim's UID, and objects already there
// count as done.
func (p *volumeProvisioner) sync(ctx context.Context) {
	pvcs, err := p.pvcs()
	if err != nil {
		p.report("listing claims", err)
		return
	}
	for _, pvc := range pvcs {
		if class := p.classFor(pvc); class != nil {
			if err := p.provision(ctx, pvc, class); err != nil {
				p.report("provisioning a volume for "+pvc.Namespace+"/"+pvc.Name, err)
			}
		}
	}
	pvs, err := p.pvs()
	if err != nil {
		p.report("listing volumes", err)
		return
	}
	for _, pv := range pvs {
		if pv.Annotations[annProvisionedBy] != LocalProvisioner || pv.DeletionTimestamp != nil ||
			pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete ||
			(pv.Status.Phase != corev1.VolumeReleased && pv.Status.Phase != corev1.VolumeFailed) {
			continue
		}
		if err := p.delete(ctx, pv); err != nil {
			p.report("deleting volume "+pv.Name, err)
		}
	}
}

// classFor returns the class of a claim that waits for a volume of this
// provisioner, on this node; nil for every other claim.
func (p *volumeProvisioner) classFor(pvc *corev1.PersistentVolumeClaim) *storagev1.StorageClass {
	if pvc.Spec.VolumeName != "" || pvc.Status.Phase != corev1.ClaimPending || pvc.DeletionTimestamp != nil ||
		pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName == "" {
		return nil
	}
	class, err := p.classes(*pvc.Spec.StorageClassName)
	if err != nil || class.Provisioner != LocalProvisioner {
		return nil
	}
	if ptr.Deref(class.VolumeBindingMode, storagev1.VolumeBindingImmediate) == storagev1.VolumeBindingWaitForFirstConsumer &&
		pvc.Annotations[annSelectedNode] != p.node {
		return nil // no pod scheduled yet (or not to this node)
	}
	return class
}

func (p *volumeProvisioner) provision(ctx context.Context, pvc *corev1.PersistentVolumeClaim, class *storagev1.StorageClass) error {
	if pvc.Spec.VolumeMode != nil && *pvc.Spec.VolumeMode == corev1.PersistentVolumeBlock {
		return errors.New("block volumes are not supported, only Filesystem")
	}
	name := "pvc-" + string(pvc.UID)
	path := filepath.Join(p.dir, name+"_"+pvc.Namespace+"_"+pvc.Name)
	// A fresh filesystem's root: root-owned, 0755 whatever the umask. The
	// kubelet gives it to the pod's fsGroup when it mounts it. A directory
	// made by an earlier pass is left as it is (the kubelet may have done
	// so already).
	switch err := os.Mkdir(path, 0o755); { //nolint:gosec // G301: a volume's root, like a new filesystem's (see above)
	case err == nil:
		if err := os.Chmod(path, 0o755); err != nil { //nolint:gosec // G302: as above
			return err
		}
	case !errors.Is(err, os.ErrExist):
		return err
	}
	size, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok {
		size = resource.MustParse("1Gi")
	}
	modes := pvc.Spec.AccessModes
	if len(modes) == 0 {
		modes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{annProvisionedBy: LocalProvisioner},
			Labels: map[string]string{"app.kubernetes.io/managed-by": "testbed.opsmith.io"}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   modes,
			PersistentVolumeReclaimPolicy: ptr.Deref(class.ReclaimPolicy, corev1.PersistentVolumeReclaimDelete),
			StorageClassName:              class.Name,
			VolumeMode:                    ptr.To(corev1.PersistentVolumeFilesystem),
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: path}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname,
					Operator: corev1.NodeSelectorOpIn, Values: []string{p.node}}}}}}},
		},
	}
	if _, err := p.cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// delete removes a released volume's directory, then the volume.
func (p *volumeProvisioner) delete(ctx context.Context, pv *corev1.PersistentVolume) error {
	if pv.Spec.Local == nil {
		return errors.New("not a local volume")
	}
	rel, err := filepath.Rel(p.dir, pv.Spec.Local.Path)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") || strings.Contains(rel, string(filepath.Separator)) {
		return fmt.Errorf("path %s is not a volume directory of %s", pv.Spec.Local.Path, p.dir)
	}
	if err := os.RemoveAll(pv.Spec.Local.Path); err != nil {
		return err
	}
	err = p.cs.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &pv.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// report logs a problem once (the next passes retry it silently).
func (p *volumeProvisioner) report(what string, err error) {
	msg := what + ": " + err.Error()
	if _, seen := p.reported.LoadOrStore(msg, true); !seen {
		p.logf("volume provisioner: %s (retrying)", msg)
	}
}
