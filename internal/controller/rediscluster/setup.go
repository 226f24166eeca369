package rediscluster

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	redisv1alpha1 "opsmith.io/opsmith/api/redis/v1alpha1"
)

// Name is the controller's name in logs, metrics and events.
const Name = "rediscluster"

// SetupWithManager registers the controller: RedisClusters are the root
// objects; changes to their pods, Services and PodDisruptionBudgets
// (owned) and to their volumes (labelled, owned only with reclaimPolicy
// Delete) trigger a reconcile of the cluster. Secrets are not watched
// (the manager may only get them by name): a changed or deleted Secret is
// seen at the next reconcile, at the latest the health check 30 s later.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named(Name).
		For(&redisv1alpha1.RedisCluster{}).
		Owns(&corev1.Pod{}).
		Owns(&corev1.Service{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Watches(&corev1.PersistentVolumeClaim{}, handler.EnqueueRequestsFromMapFunc(volumeToCluster)).
		WithOptions(opts).
		Complete(r)
}

// volumeToCluster maps a node volume to its RedisCluster.
func volumeToCluster(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[LabelCluster]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
}
