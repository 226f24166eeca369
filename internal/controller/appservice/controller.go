// Package appservice implements the AppService controller: an AppService
// becomes a Deployment and a NodePort Service that it owns.
package appservice

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
)

// FieldManager is the server-side apply field manager of this controller.
const FieldManager = "opsmith-appservice"

// Reconciler reconciles AppService objects.
type Reconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads from the API server directly. It is used only on the
	// rare path where the cache has no child object, to tell "missing" from
	// "exists but is not ours" (the cache only holds objects opsmith labels).
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Pacer holds back status writes that report only progress (nil:
	// none are held).
	Pacer *apply.Pacer
}

// +kubebuilder:rbac:groups=apps.opsmith.io,resources=appservices,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps.opsmith.io,resources=appservices/status,verbs=get;patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one AppService's children and status in line with its
// spec. Phases:
//
//  1. get the AppService (gone: nothing to do; its children are garbage
//     collected through their owner references);
//  2. skip objects being deleted;
//  3. apply the Deployment and the Service, each only when the live object
//     differs from the desired one (spec change or drift), refusing to take
//     over objects of the same name that belong to someone else;
//  4. compute the status from the observed Deployment and write it when it
//     changed.
//
// An unchanged, converged AppService therefore causes no write at all.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	as := &appsv1alpha1.AppService{}
	if err := r.Client.Get(ctx, req.NamespacedName, as); err != nil {
		if apierrors.IsNotFound(err) {
			r.Pacer.Forget(req.NamespacedName)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !as.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}

	children := &apply.Children{
		Client: r.Client, APIReader: r.APIReader, Recorder: r.Recorder,
		FieldManager: FieldManager, OwnerKind: "AppService", OwnerLabel: LabelAppService,
	}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: as.Name}}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: as.Name}}
	depFound, err := children.Ensure(ctx, as, "Deployment", Deployment(as), dep)
	if err == nil {
		_, err = children.Ensure(ctx, as, "Service", Service(as), svc)
	}
	children.Flush(as)
	var observed *appsv1.Deployment
	if depFound {
		observed = dep
	}
	blocked, err := apply.Split(err)
	st := computeStatus(as, observed, blocked)
	held, serr := apply.WriteStatusPaced(ctx, r.Client, r.Pacer, as, &as.Status, st, inProgress(st))
	if serr != nil && err == nil {
		err = serr
	}
	return reconcile.Result{RequeueAfter: blocked.Requeue(held)}, err
}
