package microservicedeploy

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/queue"
)

// Name is the controller's name in logs, metrics and events.
const Name = "microservicedeploy"

// SetupWithManager registers the controller. MicroServiceDeploys are the
// root objects; a change to an object one controls, or to a shared Service
// or Ingress one co-owns, reconciles the owners.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	if err := setupIndexes(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	allOwners := handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(), &appsv1alpha1.MicroServiceDeploy{})
	b := ctrl.NewControllerManagedBy(mgr)
	if r.Config.Gateway.Name != "" {
		// Only with a Gateway configured: without one the Gateway API
		// CRDs may not be installed at all.
		b = b.Watches(&gatewayv1.HTTPRoute{}, allOwners)
	}
	return b.
		Named(Name).
		For(&appsv1alpha1.MicroServiceDeploy{}).
		// A Deployment's change (its rollout progressing) goes ahead of
		// the creation work of newer instances.
		Watches(&appsv1.Deployment{}, queue.Prioritized(handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(),
			&appsv1alpha1.MicroServiceDeploy{}, handler.OnlyControllerOwner()), queue.ChildPriority)).
		Owns(&corev1.ServiceAccount{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&autoscalingv2.HorizontalPodAutoscaler{}).
		Owns(&networkingv1.NetworkPolicy{}).
		// Services: the instance's own (controller reference) and the
		// shared one (a plain owner reference per instance).
		Watches(&corev1.Service{}, allOwners).
		Watches(&networkingv1.Ingress{}, allOwners).
		// Counts the changes the namespace quota depends on; enqueues
		// nothing (For does).
		Watches(&appsv1alpha1.MicroServiceDeploy{}, r.revisionCounter()).
		Watches(&corev1.ResourceQuota{}, handler.EnqueueRequestsFromMapFunc(r.quotaOwner),
			builder.WithPredicates(quotaChanged())).
		WithOptions(opts).
		Complete(r)
}
