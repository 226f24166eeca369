package microservice

import (
	"context"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
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

// Cache indexes, so that a reconcile reads what concerns its instance
// without scanning every object of the namespace (which made the work per
// reconcile grow with the namespace, and the work of a namespace grow with
// its square).
const (
	// indexPath indexes instances by msName and path (pathKey.String).
	indexPath = "opsmith.io/path"
	// indexSharedOwner indexes shared Services (those of a path) by the
	// UIDs of the instances that own them.
	indexSharedOwner = "opsmith.io/shared-owner"
)

func setupIndexes(ctx context.Context, idx client.FieldIndexer) error {
	if err := idx.IndexField(ctx, &appsv1alpha1.MicroServiceDeploy{}, indexPath, func(o client.Object) []string {
		m, ok := o.(*appsv1alpha1.MicroServiceDeploy)
		if !ok {
			return nil
		}
		return []string{pathKey{m.Spec.MsName, m.Spec.Path}.String()}
	}); err != nil {
		return err
	}
	return idx.IndexField(ctx, &corev1.Service{}, indexSharedOwner, func(o client.Object) []string {
		l := o.GetLabels()
		if l[apply.LabelManagedBy] != apply.ManagedByValue || l[LabelMicroService] == "" || l[LabelPath] == "" || l[LabelInstance] != "" {
			return nil
		}
		var uids []string
		for _, ref := range o.GetOwnerReferences() {
			if ref.Kind == "MicroServiceDeploy" && ref.APIVersion == appsv1alpha1.GroupVersion.String() {
				uids = append(uids, string(ref.UID))
			}
		}
		return uids
	})
}

// revisionCounter bumps the namespace's instance revision on the events
// that can change its quota: a creation, a deletion, a new generation
// (every spec change) or the start of a deletion.
func (r *Reconciler) revisionCounter() handler.EventHandler {
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, _ workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			r.revisions.bump(e.Object.GetNamespace())
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, _ workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() ||
				!e.ObjectOld.GetDeletionTimestamp().Equal(e.ObjectNew.GetDeletionTimestamp()) ||
				e.ObjectOld.GetUID() != e.ObjectNew.GetUID() {
				r.revisions.bump(e.ObjectNew.GetNamespace())
			}
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, _ workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			r.revisions.bump(e.Object.GetNamespace())
		},
		GenericFunc: func(_ context.Context, e event.GenericEvent, _ workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			r.revisions.bump(e.Object.GetNamespace())
		},
	}
}

// quotaChanged passes the events of a namespace quota that may need a
// repair: creation, deletion, and changes of anything but its status. The
// quota controller rewrites the status (the usage) whenever a pod starts or
// stops, which concerns no instance.
func quotaChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, okOld := e.ObjectOld.(*corev1.ResourceQuota)
			n, okNew := e.ObjectNew.(*corev1.ResourceQuota)
			if !okOld || !okNew {
				return true
			}
			return !equality.Semantic.DeepEqual(o.Spec, n.Spec) ||
				!reflect.DeepEqual(o.Labels, n.Labels) || !reflect.DeepEqual(o.Annotations, n.Annotations) ||
				!reflect.DeepEqual(o.OwnerReferences, n.OwnerReferences) ||
				!o.DeletionTimestamp.Equal(n.DeletionTimestamp)
		},
	}
}

// quotaOwner maps an event of a namespace quota to one reconcile: the
// reconcile of any instance sizes the quota for every instance of the
// namespace, so waking every owner (thousands in a large namespace) would
// repeat the same work as often. The first live instance it names is
// chosen, or the first live instance of the namespace when it names none.
func (r *Reconciler) quotaOwner(ctx context.Context, obj client.Object) []reconcile.Request {
	if obj.GetName() != QuotaName {
		return nil
	}
	live := func(name string, uid types.UID) bool {
		m := &appsv1alpha1.MicroServiceDeploy{}
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: obj.GetNamespace(), Name: name}, m)
		return err == nil && (uid == "" || m.UID == uid) && m.DeletionTimestamp.IsZero()
	}
	request := func(name string) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
	}
	for _, ref := range obj.GetOwnerReferences() {
		if ref.Kind == "MicroServiceDeploy" && live(ref.Name, ref.UID) {
			return request(ref.Name)
		}
	}
	list := &appsv1alpha1.MicroServiceDeployList{}
	if err := r.Client.List(ctx, list, client.InNamespace(obj.GetNamespace()), client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	first := ""
	for i := range list.Items {
		if m := &list.Items[i]; m.DeletionTimestamp.IsZero() && (first == "" || m.Name < first) {
			first = m.Name
		}
	}
	if first == "" {
		return nil
	}
	return request(first)
}
