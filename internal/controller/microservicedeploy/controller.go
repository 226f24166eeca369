// Package microservicedeploy implements the MicroServiceDeploy controller: one
// resource becomes the objects that make up an instance of a microservice
// (ServiceAccount, ConfigMap, Deployment, Service, HorizontalPodAutoscaler,
// NetworkPolicy) plus the Service and Ingress that all instances of one
// msName and path share.
package microservicedeploy

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/singleflight"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
)

// FieldManager is the server-side apply field manager of this controller.
// It keeps the name it had before the package took the kind's name: the
// objects on live clusters list their fields under it, and a new name
// would leave those entries orphaned, so that fields removed from the
// desired state would never be removed from the objects.
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
	if err == nil {
		err = r.reconcileObjects(ctx, in)
	}
	in.children.Flush(m)
	blocked, err := apply.Split(err)
	st := computeStatus(m, in.dep, blocked, r.Config)
	held, serr := apply.WriteStatusPaced(ctx, r.Client, r.Pacer, m, &m.Status, st, inProgress(st))
	if serr != nil && err == nil {
		err = serr
	}
	return reconcile.Result{RequeueAfter: blocked.Requeue(held)}, err
}

// shared writes the objects the instance does not control alone.
func (r *Reconciler) shared() *apply.Shared {
	return &apply.Shared{Client: r.Client, APIReader: r.APIReader, Recorder: r.Recorder, FieldManager: FieldManager}
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
	chains := []func() error{
		func() error { return r.reconcilePods(ctx, in) },
		func() error {
			m := in.m
			_, err := in.children.Ensure(ctx, m, "Service", Service(m), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: m.Name}})
			return err
		},
		func() error { return r.reconcileShared(ctx, in) },
	}
	errs := make([]error, len(chains))
	var wg sync.WaitGroup
	for i, chain := range chains {
		wg.Go(func() { errs[i] = chain() })
	}
	wg.Wait()
	// In the chains' order, so that apply.Split reports the first block.
	return errors.Join(errs...)
}

// reconcilePods applies, in order, what the instance's pods need and then
// the Deployment that runs them and its autoscaler; it records the
// Deployment as observed in in.dep. The NetworkPolicy of needAuth comes
// before the Deployment, so that no pod runs unprotected.
func (r *Reconciler) reconcilePods(ctx context.Context, in *instance) error {
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
		return err
	}
	children = append(children, child{"Deployment", Deployment(m, desiredReplicas(m, in.dep)), depLive})
	if autoscaled(m) {
		children = append(children, child{"HorizontalPodAutoscaler", HorizontalPodAutoscaler(m), &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: named}})
	} else if err := in.children.Remove(ctx, m, "HorizontalPodAutoscaler", &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: named}); err != nil {
		return err
	}
	for _, c := range children {
		found, err := in.children.Ensure(ctx, m, c.kind, c.desired, c.live)
		if c.live == depLive && found {
			in.dep = depLive
		}
		if err != nil {
			return err
		}
	}
	return nil
}
