package appservice

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/queue"
)

// Name is the controller's name in logs, metrics and events.
const Name = "appservice"

// SetupWithManager registers the controller: AppServices are the root
// objects; changes to the Deployments and Services they own trigger a
// reconcile of the owner, those of a Deployment (its rollout progressing)
// ahead of the creation work of newer AppServices.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named(Name).
		For(&appsv1alpha1.AppService{}).
		Watches(&appsv1.Deployment{}, queue.Prioritized(handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(),
			&appsv1alpha1.AppService{}, handler.OnlyControllerOwner()), queue.ChildPriority)).
		Owns(&corev1.Service{}).
		WithOptions(opts).
		Complete(r)
}
