package microservicedeploy

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
)

// The shared route: the instances of one msName and path serve one domain
// name together, through a Service that selects the pods of all of them and
// a route (an Ingress, or a Gateway API HTTPRoute) to it, owned by every
// instance of the path. This file reconciles them (and the path index they
// are found by); route_objects.go builds them.

// reconcileShared applies the objects shared by the instances of m's path,
// and re-applies (or deletes) those of any path m left, so that m stops
// owning them.
func (r *Reconciler) reconcileShared(ctx context.Context, in *instance) error {
	m := in.m
	own := pathKey{m.Spec.MsName, m.Spec.Path}
	p, err := r.path(ctx, m.Namespace, own)
	if err != nil {
		return err
	}
	if err := r.applyPath(ctx, in.m, p); err != nil {
		return err
	}

	// Shared objects that still name m as an owner but belong to another
	// msName or path: m moved. Applying them again with their own
	// instances drops m (and deletes them when none is left). Found
	// through an index of shared Services by owner, so that a reconcile
	// does not scan every Service of the namespace.
	shared := &corev1.ServiceList{}
	if err := r.Client.List(ctx, shared, client.InNamespace(m.Namespace), client.UnsafeDisableDeepCopy,
		client.MatchingFields{indexSharedOwner: string(m.UID)}); err != nil {
		return err
	}
	for _, svc := range shared.Items {
		key := pathKey{svc.Labels[LabelMicroService], svc.Labels[LabelPath]}
		if key == own {
			continue
		}
		p, err := r.path(ctx, m.Namespace, key)
		if err != nil {
			return err
		}
		// A block there is the other path's to report (its instances'
		// status); only what retrying may fix is m's.
		if _, err := apply.Split(r.applyPath(ctx, m, p)); err != nil {
			return err
		}
	}
	return nil
}

// pathKey identifies the instances that share a domain name.
type pathKey struct{ msName, path string }

// String is the key's value in the path index.
func (k pathKey) String() string { return k.msName + "/" + k.path }

// path returns the live instances of a namespace's msName and path, sorted
// by name, found through the path index (not by listing every instance of
// the namespace on every reconcile).
func (r *Reconciler) path(ctx context.Context, namespace string, key pathKey) (Path, error) {
	p := Path{Namespace: namespace, MsName: key.msName, Path: key.path}
	instances := &appsv1alpha1.MicroServiceDeployList{}
	// Read only: the items are the cache's own objects.
	if err := r.Client.List(ctx, instances, client.InNamespace(namespace), client.UnsafeDisableDeepCopy,
		client.MatchingFields{indexPath: key.String()}); err != nil {
		return p, fmt.Errorf("listing MicroServiceDeploys of %s: %w", key, err)
	}
	for i := range instances.Items {
		if o := &instances.Items[i]; o.DeletionTimestamp.IsZero() {
			p.Instances = append(p.Instances, o)
		}
	}
	sort.Slice(p.Instances, func(i, j int) bool { return p.Instances[i].Name < p.Instances[j].Name })
	return p, nil
}

// applyPath writes the shared Service and route of one path, or deletes
// them when the path has no instance left; by is the instance whose
// reconcile it is, which gets the events.
func (r *Reconciler) applyPath(ctx context.Context, by client.Object, p Path) error {
	name := SharedName(p.MsName, p.Path)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Namespace}}
	desiredRoute, liveRoute, otherRoute := route(p, r.Config)
	if otherRoute != nil {
		// The route kind changed with the operator's configuration.
		if err := r.deleteShared(ctx, p, otherRoute); err != nil {
			return err
		}
	}
	if len(p.Instances) == 0 {
		for _, obj := range []client.Object{liveRoute, svc} {
			if err := r.deleteShared(ctx, p, obj); err != nil {
				return err
			}
		}
		return nil
	}
	ours := func(obj client.Object) bool { return sharedOwned(obj, p) }
	if err := r.shared().Ensure(ctx, by, "Service", SharedService(p), svc, ours); err != nil {
		return err
	}
	if p.NeedAuth() && !r.Config.authConfigured() {
		// Publishing the route without the check would expose a service
		// that asked for authentication.
		if err := r.deleteShared(ctx, p, liveRoute); err != nil {
			return err
		}
		return apply.Blocked(ReasonAuthNotConfigured,
			"needAuth is set but the operator has no external authentication configured (%s); the route for %s is not published",
			r.Config.authSetting(), Host(r.Config, p.MsName, p.Path))
	}
	// A route the API server rejects (for example an ExternalAuth filter
	// on a cluster whose Gateway API CRDs are the standard channel, which
	// lacks it) is reported as ApplyFailed with its message.
	return r.shared().Ensure(ctx, by, routeKind(liveRoute), desiredRoute, liveRoute, ours)
}

func routeKind(obj client.Object) string {
	if _, ok := obj.(*networkingv1.Ingress); ok {
		return "Ingress"
	}
	return "HTTPRoute"
}

// sharedOwned reports whether a shared object is one opsmith made for p.
func sharedOwned(obj client.Object, p Path) bool {
	l := obj.GetLabels()
	return l[apply.LabelManagedBy] == apply.ManagedByValue && l[LabelMicroService] == p.MsName && l[LabelPath] == p.Path && l[LabelInstance] == ""
}

func (r *Reconciler) deleteShared(ctx context.Context, p Path, obj client.Object) error {
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !sharedOwned(obj, p) {
		return nil
	}
	return client.IgnoreNotFound(r.Client.Delete(ctx, obj, client.Preconditions{UID: ptr.To(obj.GetUID())}))
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
