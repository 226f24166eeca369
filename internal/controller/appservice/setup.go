package appservice

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
)

// Name is the controller's name in logs, metrics and events.
const Name = "appservice"

// SetupWithManager registers the controller: AppServices are the root
// objects; changes to the Deployments and Services they own trigger a
// reconcile of the owner.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named(Name).
		For(&appsv1alpha1.AppService{}).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		WithOptions(opts).
		Complete(r)
}
