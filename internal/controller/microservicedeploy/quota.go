package microservicedeploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
)

// Resource management, the reconcile side: the namespace's ResourceQuota
// and the PriorityClass it is scoped to are written here, only when they
// must be, with the memo of quota checks and the event handlers that keep
// it current (the instances' revision counter, the quota's own events).
// quota_objects.go builds them and says how they are sized.

// madeByOpsmith reports whether an object carries opsmith's label.
func madeByOpsmith(obj client.Object) bool {
	return obj.GetLabels()[apply.LabelManagedBy] == apply.ManagedByValue
}

// ensurePriorityClass applies the priority class of microservice pods.
// It is one object for the whole cluster, the same for every instance:
// concurrent reconciles share one check and write of it instead of each
// finding it missing (at start-up, before the first write reaches the
// cache) and writing it.
func (r *Reconciler) ensurePriorityClass(ctx context.Context, by client.Object) error {
	_, err, _ := r.priorityClass.Do(PriorityClassName, func() (any, error) {
		pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: PriorityClassName}}
		return nil, r.shared().Ensure(ctx, by, "PriorityClass", PriorityClass(), pc, madeByOpsmith)
	})
	return err
}

// reconcileQuota makes sure the priority class of microservice pods exists
// and that the namespace's quota covers this instance, sized for every live
// instance in the namespace.
//
// The quota is one object per namespace and instances are usually created
// in bursts, so the quota is written only when it must be: when it does not
// yet cover this instance or is wrong for the instances it names. An
// instance the quota already covers correctly leaves it alone while other
// new instances are still missing from it: each of those writes the quota
// (for every instance it sees) before creating its own pods, so a burst of
// creations costs a few quota writes instead of one per instance. Checks
// that found the quota right are remembered by resourceVersion, so that
// the thousands of reconciles of a large namespace do not rebuild and
// compare a quota that lists thousands of instances every time.
func (r *Reconciler) reconcileQuota(ctx context.Context, in *instance) error {
	if err := r.ensurePriorityClass(ctx, in.m); err != nil {
		return err
	}
	// Read before the list: a change the cache holds after this read
	// bumps the revision again.
	rev := r.revisions.get(in.m.Namespace)
	quota := &corev1.ResourceQuota{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: in.m.Namespace, Name: QuotaName}, quota)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	ours := err == nil && madeByOpsmith(quota)
	if ours && r.quotaChecks.coversAll(quota, rev) {
		// Found right for every instance of the namespace, and neither
		// the quota nor any instance changed since.
		return nil
	}
	instances, err := r.liveInstances(ctx, in.m.Namespace)
	if err != nil {
		return err
	}
	if ours {
		if ok, err := r.quotaRight(quota, in.m, instances, rev); ok || err != nil {
			return err
		}
	}
	quota = &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: QuotaName, Namespace: in.m.Namespace}}
	return r.shared().Ensure(ctx, in.m, "ResourceQuota", ResourceQuota(in.m.Namespace, instances), quota, madeByOpsmith)
}

// liveInstances lists the instances of a namespace not being deleted.
func (r *Reconciler) liveInstances(ctx context.Context, namespace string) ([]*appsv1alpha1.MicroServiceDeploy, error) {
	list := &appsv1alpha1.MicroServiceDeployList{}
	// Read only: the items are the cache's own objects.
	if err := r.Client.List(ctx, list, client.InNamespace(namespace), client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing MicroServiceDeploys: %w", err)
	}
	instances := make([]*appsv1alpha1.MicroServiceDeploy, 0, len(list.Items))
	for i := range list.Items {
		if list.Items[i].DeletionTimestamp.IsZero() {
			instances = append(instances, &list.Items[i])
		}
	}
	return instances, nil
}

// quotaRight reports whether the live quota (opsmith's) needs no write for
// m: it covers m and is right for the instances it covers. A quota right
// for every instance is remembered with the namespace's revision rev.
func (r *Reconciler) quotaRight(quota *corev1.ResourceQuota, m *appsv1alpha1.MicroServiceDeploy,
	instances []*appsv1alpha1.MicroServiceDeploy, rev uint64) (bool, error) {
	check := quotaToCheck(quota, m, instances)
	if check == nil {
		return false, nil
	}
	ok, err := r.quotaCurrent(quota, check)
	if ok && len(check) == len(instances) {
		r.quotaChecks.rememberAll(quota, rev)
	}
	return ok, err
}

// quotaToCheck returns the instances for which the live quota must be
// exactly right for m to need no quota write: every live instance when it
// covers them all (its QuotaCoversAnnotation); when some are missing (being
// added), those it covers, if m is one of them; nil when m is not covered
// and the quota must be written.
func quotaToCheck(quota *corev1.ResourceQuota, m *appsv1alpha1.MicroServiceDeploy, instances []*appsv1alpha1.MicroServiceDeploy) []*appsv1alpha1.MicroServiceDeploy {
	covered := quotaCovers(quota)
	named := make([]*appsv1alpha1.MicroServiceDeploy, 0, len(instances))
	for _, o := range instances {
		if covered[QuotaKey(o)] {
			named = append(named, o)
		}
	}
	if len(named) < len(instances) && !covered[QuotaKey(m)] {
		return nil
	}
	return named
}

// quotaCurrent reports whether the live quota is exactly the one built for
// instances, remembering a positive answer for this resourceVersion of the
// quota and this state of the instances.
func (r *Reconciler) quotaCurrent(live *corev1.ResourceQuota, instances []*appsv1alpha1.MicroServiceDeploy) (bool, error) {
	check := quotaCheck{uid: live.UID, resourceVersion: live.ResourceVersion, instances: fingerprint(instances)}
	if r.quotaChecks.verified(live.Namespace, check) {
		return true, nil
	}
	ok, err := apply.Current(ResourceQuota(live.Namespace, instances), live)
	if ok && err == nil {
		r.quotaChecks.remember(live.Namespace, check)
	}
	return ok, err
}

// quotaCheck identifies a comparison of a live quota with the quota built
// for a set of instances.
type quotaCheck struct {
	uid             types.UID
	resourceVersion string
	instances       string
}

// quotaChecks remembers, per namespace, the last comparison that found the
// quota right. The quota builder reads only the instances' names, UIDs and
// specs (whose every change raises the generation), so the same live
// object and the same instances at the same generations give the same
// answer.
type quotaChecks struct {
	mu   sync.Mutex
	last map[string]quotaCheck
	// all remembers, per namespace, the quota (UID and resourceVersion)
	// last found right for every instance, and the revision of the
	// namespace's instances it was checked at.
	all map[string]quotaRevision
}

type quotaRevision struct {
	uid             types.UID
	resourceVersion string
	revision        uint64
}

// coversAll reports whether quota, at its resourceVersion, was found right
// for every instance of its namespace at instance revision rev.
func (q *quotaChecks) coversAll(quota *corev1.ResourceQuota, rev uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.all[quota.Namespace] == quotaRevision{quota.UID, quota.ResourceVersion, rev}
}

func (q *quotaChecks) rememberAll(quota *corev1.ResourceQuota, rev uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.all == nil {
		q.all = map[string]quotaRevision{}
	}
	q.all[quota.Namespace] = quotaRevision{quota.UID, quota.ResourceVersion, rev}
}

// revisions counts, per namespace, the changes to its instances that the
// quota depends on: creations, deletions and new generations (a handler
// on the instances' informer calls bump after the cache holds the
// change). A quota found right at one revision is right until the next.
type revisions struct {
	mu sync.Mutex
	n  map[string]uint64
}

func (v *revisions) get(namespace string) uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.n[namespace]
}

func (v *revisions) bump(namespace string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.n == nil {
		v.n = map[string]uint64{}
	}
	v.n[namespace]++
}

func (q *quotaChecks) verified(namespace string, c quotaCheck) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.last[namespace] == c
}

func (q *quotaChecks) remember(namespace string, c quotaCheck) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.last == nil {
		q.last = map[string]quotaCheck{}
	}
	q.last[namespace] = c
}

// fingerprint identifies a set of instances and the generation of each.
func fingerprint(instances []*appsv1alpha1.MicroServiceDeploy) string {
	ids := make([]string, len(instances))
	for i, m := range instances {
		ids[i] = string(m.UID) + "/" + strconv.FormatInt(m.Generation, 10)
	}
	sort.Strings(ids)
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
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
