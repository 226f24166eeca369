package etcdcluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	etcdv1alpha1 "opsmith.io/opsmith/api/etcd/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
	"opsmith.io/opsmith/internal/etcd"
)

// Kinds of the member objects, in messages.
const (
	kindPod    = "Pod"
	kindVolume = "PersistentVolumeClaim"
)

// executeKubernetes takes the steps that create and delete member pods and
// volumes. Each is idempotent: a step repeated on a stale cache finds the
// object already created or already gone. A write the API server refuses
// (invalid content, or forbidden by a quota or an admission policy) is an
// apply.BlockedError carrying the API server's message, recorded as a
// Warning event, so that status says what blocks the cluster.
func (r *Reconciler) executeKubernetes(ctx context.Context, ec *etcdv1alpha1.EtcdCluster, w *world, a etcd.Action) error {
	key := client.ObjectKey{Namespace: ec.Namespace, Name: a.Name}
	var err error
	switch a.Type {
	case etcd.ActionCreateVolume:
		err = apply.Rejected(r.Recorder, ec, kindVolume, a.Name, ignoreExists(r.Client.Create(ctx, Volume(ec, a))))
	case etcd.ActionRecordMemberID:
		pvc := w.pvcs[a.Name]
		base := pvc.DeepCopy()
		pvc.Annotations[AnnotationMemberID] = FormatID(a.MemberID)
		err = apply.Rejected(r.Recorder, ec, kindVolume, a.Name, r.Client.Patch(ctx, pvc, client.MergeFrom(base)))
	case etcd.ActionCreatePod:
		pvc := w.pvcs[a.Name]
		if pvc == nil {
			return fmt.Errorf("creating the pod of etcd member %s: its volume is not in the cache", key)
		}
		err = apply.Rejected(r.Recorder, ec, kindPod, a.Name, ignoreExists(r.Client.Create(ctx, Pod(ec, a.Name, pvc, w.target))))
	case etcd.ActionDeletePod:
		if p := w.pods[a.Name]; p != nil {
			err = apply.Rejected(r.Recorder, ec, kindPod, a.Name,
				client.IgnoreNotFound(r.Client.Delete(ctx, p, client.Preconditions{UID: &p.UID})))
		}
	case etcd.ActionDeleteVolume:
		if v := w.pvcs[a.Name]; v != nil {
			err = apply.Rejected(r.Recorder, ec, kindVolume, a.Name,
				client.IgnoreNotFound(r.Client.Delete(ctx, v, client.Preconditions{UID: &v.UID})))
		}
	}
	if err != nil {
		return fmt.Errorf("%s for etcd member %s: %w", a.Type, key, err)
	}
	return nil
}

func ignoreExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// volumeGone asks the API server, not the cache, whether the volume of
// member is gone.
func (r *Reconciler) volumeGone(ctx context.Context, ec *etcdv1alpha1.EtcdCluster, member string) (bool, error) {
	var pvc corev1.PersistentVolumeClaim
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ec.Namespace, Name: member}, &pvc)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the volume of etcd member %s: %w", member, err)
	}
	return false, nil
}

// syncVolumeOwners makes the volumes owned by the EtcdCluster exactly
// when reclaimPolicy is Delete.
func (r *Reconciler) syncVolumeOwners(ctx context.Context, ec *etcdv1alpha1.EtcdCluster, w *world) error {
	return apply.SetOwners(ctx, r.Client, r.Recorder, ec, kindVolume, w.pvcs, volumeOwners(ec))
}

// volumeToCluster maps a member volume to its EtcdCluster.
func volumeToCluster(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[LabelCluster]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
}
