package etcdcluster

import (
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	etcdv1alpha1 "opsmith.io/opsmith/api/etcd/v1alpha1"
)

// Name is the controller's name in logs, metrics and events.
const Name = "etcdcluster"

// SetupWithManager registers the controller: EtcdClusters are the root
// objects; changes to their pods, Services and PodDisruptionBudgets (owned)
// and to their volumes (labelled, owned only with reclaimPolicy Delete)
// trigger a reconcile of the cluster.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named(Name).
		For(&etcdv1alpha1.EtcdCluster{}).
		Owns(&corev1.Pod{}).
		Owns(&corev1.Service{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Watches(&corev1.PersistentVolumeClaim{}, handler.EnqueueRequestsFromMapFunc(volumeToCluster)).
		WithOptions(opts).
		Complete(r)
}
