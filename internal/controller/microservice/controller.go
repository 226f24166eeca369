// Package microservice implements the MicroServiceDeploy controller: one
// resource becomes the objects that make up an instance of a microservice
// (ServiceAccount, ConfigMap, Deployment, Service, HorizontalPodAutoscaler,
// NetworkPolicy) plus the Service and Ingress that all instances of one
// msName and path share.
package microservice

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"

	"golang.org/x/sync/singleflight"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
)

// FieldManager is the server-side apply field manager of this controller.
const FieldManager = "opsmith-microservice"

// Reasons specific to MicroServiceDeploy.
const (
	// ReasonAuthNotConfigured: needAuth is set but the operator has no
	// external authentication service, so the route is not published.
	ReasonAuthNotConfigured = "AuthNotConfigured"
)

// Reconciler reconciles MicroServiceDeploy objects.
type Reconciler struct {
	Client    client.Client
	APIReader client.Reader
	Recorder  events.EventRecorder
	Config    Config
	// Pacer holds back status writes that report only progress (nil:
	// none are held).
	Pacer *apply.Pacer

	// priorityClass joins concurrent applies of the priority class.
	priorityClass singleflight.Group
	quotaChecks   quotaChecks
	// revisions counts the changes to each namespace's instances that
	// matter to its quota.
	revisions revisions
}

// +kubebuilder:rbac:groups=apps.opsmith.io,resources=microservicedeploys,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps.opsmith.io,resources=microservicedeploys/status,verbs=get;patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=services;serviceaccounts;configmaps,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=delete
// +kubebuilder:rbac:groups="",resources=resourcequotas,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=scheduling.k8s.io,resources=priorityclasses,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// instance is the state of one reconcile.
type instance struct {
	m        *appsv1alpha1.MicroServiceDeploy
	children *apply.Children
	dep      *appsv1.Deployment // as observed; nil when missing
	blocked  *apply.Blocked
}

// Reconcile brings one MicroServiceDeploy's objects and status in line with
// its spec. Phases:
//
//  1. get the instance (gone: nothing to do; its objects are garbage
//     collected, and shared objects lose it as an owner);
//  2. when it goes idle, record the scale to restore in status first;
//  3. size the namespace's ResourceQuota for every instance in it (before
//     the Deployment, so that a scale-up is never refused);
//  4. apply ServiceAccount, ConfigMap, Deployment and Service; apply or
//     remove the autoscaler (autoscaling, not idle) and the NetworkPolicy
//     (needAuth);
//  5. apply the Service and route shared by the instances of its msName and
//     path, and release shared objects of a path it left;
//  6. compute status from what was observed and write it if it changed.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	m := &appsv1alpha1.MicroServiceDeploy{}
	if err := r.Client.Get(ctx, req.NamespacedName, m); err != nil {
		if apierrors.IsNotFound(err) {
			r.Pacer.Forget(req.NamespacedName)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !m.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}
	in := &instance{m: m, children: &apply.Children{
		Client: r.Client, APIReader: r.APIReader, Recorder: r.Recorder,
		FieldManager: FieldManager, OwnerKind: "MicroServiceDeploy", OwnerLabel: LabelInstance,
	}}

	dep := &appsv1.Deployment{}
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(m), dep); err == nil {
		in.dep = dep
	} else if !apierrors.IsNotFound(err) {
		return reconcile.Result{}, err
	}
	if err := r.recordResumeScale(ctx, in); err != nil {
		return reconcile.Result{}, err
	}

	err := r.reconcileQuota(ctx, in)
	if err == nil && in.blocked == nil {
		err = r.reconcileObjects(ctx, in)
	}
	in.children.Flush(m)
	st := computeStatus(m, in.dep, in.blocked, r.Config)
	held, serr := apply.WriteStatusPaced(ctx, r.Client, r.Pacer, m, &m.Status, st, inProgress(st))
	if serr != nil && err == nil {
		err = serr
	}
	return reconcile.Result{RequeueAfter: held}, err
}

// recordResumeScale stores, before an instance is scaled to zero for idle,
// the pod count to bring back when it wakes (it may differ from replicas
// when the autoscaler scaled it). The status write comes first so that a
// crash right after scaling down loses nothing.
func (r *Reconciler) recordResumeScale(ctx context.Context, in *instance) error {
	m := in.m
	if !m.Spec.Idle || m.Status.ResumeReplicas != nil || in.dep == nil || ptr.Deref(in.dep.Spec.Replicas, 0) == 0 {
		return nil
	}
	base := m.DeepCopy()
	m.Status.ResumeReplicas = ptr.To(ptr.Deref(in.dep.Spec.Replicas, 0))
	if err := r.Client.Status().Patch(ctx, m, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("recording the scale of %s before idling: %w", m.Name, err)
	}
	return nil
}

// desiredReplicas is the pod count the Deployment should have.
func desiredReplicas(m *appsv1alpha1.MicroServiceDeploy, dep *appsv1.Deployment) int32 {
	if m.Spec.Idle {
		return 0
	}
	want := m.Spec.Replicas
	if !m.Spec.Autoscaling || want == 0 {
		return want
	}
	// The autoscaler sets the count between its bounds; keep what it chose
	// (or the count to resume after idle), never below the minimum.
	minReplicas, maxReplicas := AutoscalingBounds(m)
	current := int32(0)
	if dep != nil {
		current = ptr.Deref(dep.Spec.Replicas, 0)
	}
	if r := m.Status.ResumeReplicas; r != nil && current == 0 {
		current = *r
	}
	return min(max(current, minReplicas), maxReplicas)
}

// autoscaled reports whether the instance has an autoscaler.
func autoscaled(m *appsv1alpha1.MicroServiceDeploy) bool {
	return m.Spec.Autoscaling && !m.Spec.Idle && m.Spec.Replicas > 0
}

// reconcileObjects applies the instance's objects and those it shares with
// its path. They do not depend on each other except along the chain that
// runs pods (their ServiceAccount, ConfigMap and NetworkPolicy exist before
// the Deployment), so three chains are written at once: the pods', the
// instance's Service, and the shared Service and route. Creating a Service
// is the slow write (the API server allocates its cluster IP, a second or
// more on a busy server); in sequence, a new instance waited for both
// Services and everything else. A problem in one chain is reported in
// status even when the others went through; the pods' chain, then the
// Service, then the shared objects come first.
func (r *Reconciler) reconcileObjects(ctx context.Context, in *instance) error {
	type result struct {
		blocked *apply.Blocked
		err     error
	}
	chains := []func() (*apply.Blocked, error){
		func() (*apply.Blocked, error) { return r.reconcilePods(ctx, in) },
		func() (*apply.Blocked, error) {
			m := in.m
			_, blocked, err := in.children.Ensure(ctx, m, "Service", Service(m), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: m.Name}})
			return blocked, err
		},
		func() (*apply.Blocked, error) { return r.reconcileShared(ctx, in) },
	}
	results := make([]result, len(chains))
	var wg sync.WaitGroup
	for i, chain := range chains {
		wg.Go(func() {
			results[i].blocked, results[i].err = chain()
		})
	}
	wg.Wait()
	var errs []error
	for _, res := range results {
		if in.blocked == nil {
			in.blocked = res.blocked
		}
		errs = append(errs, res.err)
	}
	return errors.Join(errs...)
}

// reconcilePods applies, in order, what the instance's pods need and then
// the Deployment that runs them and its autoscaler; it records the
// Deployment as observed in in.dep. The NetworkPolicy of needAuth comes
// before the Deployment, so that no pod runs unprotected.
func (r *Reconciler) reconcilePods(ctx context.Context, in *instance) (*apply.Blocked, error) {
	m := in.m
	type child struct {
		kind    string
		desired runtime.ApplyConfiguration
		live    client.Object
	}
	named := metav1.ObjectMeta{Name: m.Name}
	depLive := &appsv1.Deployment{ObjectMeta: named}
	children := []child{
		{"ServiceAccount", ServiceAccount(m), &corev1.ServiceAccount{ObjectMeta: named}},
		{"ConfigMap", ConfigMap(m), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName(m)}}},
	}
	if m.Spec.NeedAuth {
		children = append(children, child{"NetworkPolicy", NetworkPolicy(m, r.Config), &networkingv1.NetworkPolicy{ObjectMeta: named}})
	} else if err := in.children.Remove(ctx, m, "NetworkPolicy", &networkingv1.NetworkPolicy{ObjectMeta: named}); err != nil {
		return nil, err
	}
	children = append(children, child{"Deployment", Deployment(m, desiredReplicas(m, in.dep)), depLive})
	if autoscaled(m) {
		children = append(children, child{"HorizontalPodAutoscaler", HorizontalPodAutoscaler(m), &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: named}})
	} else if err := in.children.Remove(ctx, m, "HorizontalPodAutoscaler", &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: named}); err != nil {
		return nil, err
	}
	for _, c := range children {
		found, blocked, err := in.children.Ensure(ctx, m, c.kind, c.desired, c.live)
		if c.live == depLive && found {
			in.dep = depLive
		}
		if blocked != nil || err != nil {
			return blocked, err
		}
	}
	return nil, nil
}

// reconcileShared applies the objects shared by the instances of m's path,
// and re-applies (or deletes) those of any path m left, so that m stops
// owning them.
func (r *Reconciler) reconcileShared(ctx context.Context, in *instance) (*apply.Blocked, error) {
	m := in.m
	own := pathKey{m.Spec.MsName, m.Spec.Path}
	p, err := r.path(ctx, m.Namespace, own)
	if err != nil {
		return nil, err
	}
	if blocked, err := r.applyPath(ctx, p); blocked != nil || err != nil {
		return blocked, err
	}

	// Shared objects that still name m as an owner but belong to another
	// msName or path: m moved. Applying them again with their own
	// instances drops m (and deletes them when none is left). Found
	// through an index of shared Services by owner, so that a reconcile
	// does not scan every Service of the namespace.
	shared := &corev1.ServiceList{}
	if err := r.Client.List(ctx, shared, client.InNamespace(m.Namespace), client.UnsafeDisableDeepCopy,
		client.MatchingFields{indexSharedOwner: string(m.UID)}); err != nil {
		return nil, err
	}
	for _, svc := range shared.Items {
		key := pathKey{svc.Labels[LabelMicroService], svc.Labels[LabelPath]}
		if key == own {
			continue
		}
		p, err := r.path(ctx, m.Namespace, key)
		if err != nil {
			return nil, err
		}
		if _, err := r.applyPath(ctx, p); err != nil {
			return nil, err
		}
	}
	return nil, nil
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
// them when the path has no instance left.
func (r *Reconciler) applyPath(ctx context.Context, p Path) (*apply.Blocked, error) {
	name := SharedName(p.MsName, p.Path)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Namespace}}
	desiredRoute, liveRoute, otherRoute := route(p, r.Config)
	if otherRoute != nil {
		// The route kind changed with the operator's configuration.
		if err := r.deleteShared(ctx, p, otherRoute); err != nil {
			return nil, err
		}
	}
	if len(p.Instances) == 0 {
		for _, obj := range []client.Object{liveRoute, svc} {
			if err := r.deleteShared(ctx, p, obj); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	ours := func(obj client.Object) bool { return sharedOwned(obj, p) }
	if blocked, err := r.applyShared(ctx, "Service", SharedService(p), svc, ours); blocked != nil || err != nil {
		return blocked, err
	}
	if p.NeedAuth() && !r.Config.authConfigured() {
		// Publishing the route without the check would expose a service
		// that asked for authentication.
		if err := r.deleteShared(ctx, p, liveRoute); err != nil {
			return nil, err
		}
		return &apply.Blocked{Reason: ReasonAuthNotConfigured, Message: fmt.Sprintf(
			"needAuth is set but the operator has no external authentication configured (%s); the route for %s is not published",
			r.Config.authSetting(), Host(r.Config, p.MsName, p.Path))}, nil
	}
	blocked, err := r.applyShared(ctx, routeKind(liveRoute), desiredRoute, liveRoute, ours)
	if err != nil && (apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)) {
		// For example an ExternalAuth filter on a cluster whose Gateway
		// API CRDs are the standard channel, which lacks it.
		return &apply.Blocked{Reason: apply.ReasonApplyFailed, Message: fmt.Sprintf(
			"%s %s rejected by the API server: %v", routeKind(liveRoute), name, err)}, err
	}
	return blocked, err
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

// madeByOpsmith reports whether an object carries opsmith's label.
func madeByOpsmith(obj client.Object) bool {
	return obj.GetLabels()[apply.LabelManagedBy] == apply.ManagedByValue
}

// applyShared applies an object several instances share (or a cluster-wide
// one), refusing to take over an object of that name that ours says opsmith
// did not make.
func (r *Reconciler) applyShared(ctx context.Context, kind string, desired runtime.ApplyConfiguration, live client.Object,
	ours func(client.Object) bool) (*apply.Blocked, error) {
	key := client.ObjectKeyFromObject(live)
	var current client.Object
	if err := r.Client.Get(ctx, key, live); err == nil {
		current = live
	} else if !apierrors.IsNotFound(err) {
		return nil, err
	} else if err := r.APIReader.Get(ctx, key, live); err == nil {
		if !ours(live) {
			return &apply.Blocked{Reason: apply.ReasonNameConflict, Message: fmt.Sprintf(
				"a %s named %s already exists and was not made by opsmith; rename or delete it", kind, key.Name)}, nil
		}
		current = live
	} else if !apierrors.IsNotFound(err) {
		return nil, err
	}
	if _, err := (&apply.Applier{Client: r.Client, FieldManager: FieldManager}).Apply(ctx, desired, current); err != nil {
		return nil, err
	}
	return nil, nil
}

// ensurePriorityClass applies the priority class of microservice pods.
// It is one object for the whole cluster, the same for every instance:
// concurrent reconciles share one check and write of it instead of each
// finding it missing (at start-up, before the first write reaches the
// cache) and writing it.
func (r *Reconciler) ensurePriorityClass(ctx context.Context) (*apply.Blocked, error) {
	v, err, _ := r.priorityClass.Do(PriorityClassName, func() (any, error) {
		pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: PriorityClassName}}
		return r.applyShared(ctx, "PriorityClass", PriorityClass(), pc, madeByOpsmith)
	})
	blocked, _ := v.(*apply.Blocked)
	return blocked, err
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
	if blocked, err := r.ensurePriorityClass(ctx); blocked != nil || err != nil {
		in.blocked = blocked
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
	blocked, err := r.applyShared(ctx, "ResourceQuota", ResourceQuota(in.m.Namespace, instances), quota, madeByOpsmith)
	in.blocked = blocked
	return err
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

func (r *Reconciler) deleteShared(ctx context.Context, p Path, obj client.Object) error {
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !sharedOwned(obj, p) {
		return nil
	}
	return client.IgnoreNotFound(r.Client.Delete(ctx, obj, client.Preconditions{UID: ptr.To(obj.GetUID())}))
}
