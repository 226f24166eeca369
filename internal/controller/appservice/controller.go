// Package appservice implements the AppService controller: an AppService
// becomes a Deployment and a NodePort Service that it owns.
package appservice

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
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
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !as.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}

	dep := &appsv1.Deployment{}
	svc := &corev1.Service{}
	stuck, depFound, err := r.reconcileChild(ctx, as, "Deployment", Deployment(as), dep)
	if err == nil && stuck == nil {
		stuck, _, err = r.reconcileChild(ctx, as, "Service", Service(as), svc)
	}
	var observed *appsv1.Deployment
	if depFound {
		observed = dep
	}
	if serr := r.writeStatus(ctx, as, computeStatus(as, observed, stuck)); serr != nil && err == nil {
		err = serr
	}
	return reconcile.Result{}, err
}

// reconcileChild applies one child when needed. live is filled with the
// object as the cache has it; found says whether it exists. A non-nil
// blocked result means the child cannot be written until something outside
// the operator changes; it is reported in status.
func (r *Reconciler) reconcileChild(ctx context.Context, as *appsv1alpha1.AppService, kind string,
	desired runtime.ApplyConfiguration, live client.Object) (*blocked, bool, error) {
	key := client.ObjectKey{Namespace: as.Namespace, Name: as.Name}
	found := true
	if err := r.Client.Get(ctx, key, live); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, false, fmt.Errorf("reading %s %s: %w", kind, key, err)
		}
		found = false
		// The cache only holds objects labelled as ours. Before creating,
		// make sure no foreign object of that name exists.
		if err := r.APIReader.Get(ctx, key, live); err == nil {
			if !r.ownedBy(live, as) {
				return &blocked{ReasonNameConflict, fmt.Sprintf(
					"a %s named %s already exists and is not managed by this AppService; rename or delete it", kind, as.Name)}, false, nil
			}
			found = true
		} else if !apierrors.IsNotFound(err) {
			return nil, false, fmt.Errorf("reading %s %s: %w", kind, key, err)
		}
	} else if !r.ownedBy(live, as) {
		return &blocked{ReasonNameConflict, fmt.Sprintf(
			"%s %s is controlled by another owner (an earlier AppService of this name still being deleted?)", kind, as.Name)}, true, nil
	}

	var current client.Object
	if found {
		current = live
	}
	res, err := (&apply.Applier{Client: r.Client, FieldManager: FieldManager}).Apply(ctx, desired, current)
	if err != nil {
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) {
			// Rejected content (for example a nodePort another Service
			// holds) or a quota: report it and retry with backoff, since
			// the obstacle may go away.
			r.Recorder.Eventf(as, nil, corev1.EventTypeWarning, ReasonApplyFailed, "Apply", "%s %s rejected: %v", kind, as.Name, err)
			return &blocked{ReasonApplyFailed, fmt.Sprintf("%s %s rejected by the API server: %v", kind, as.Name, err)}, found, err
		}
		return nil, found, err
	}
	if res != apply.Unchanged {
		log.FromContext(ctx).Info("applied child", "kind", kind, "child", as.Name, "result", res)
		// The child is the event's related object, so that events about
		// different children are not folded into one series.
		live.SetNamespace(as.Namespace)
		live.SetName(as.Name)
		r.Recorder.Eventf(as, live, corev1.EventTypeNormal, string(res), "Apply", "%s %s %s", kind, as.Name, lower(res))
	}
	return nil, found, nil
}

// ownedBy reports whether obj belongs to as: controlled by it, or an orphan
// that opsmith labelled for it (left behind by a delete with
// --cascade=orphan), which is adopted.
func (r *Reconciler) ownedBy(obj client.Object, as *appsv1alpha1.AppService) bool {
	if ref := metav1.GetControllerOf(obj); ref != nil {
		return ref.UID == as.UID
	}
	return obj.GetLabels()[LabelAppService] == as.Name && obj.GetLabels()[LabelManagedBy] == ManagedByValue
}

// writeStatus patches the status subresource when it differs from what is
// stored.
func (r *Reconciler) writeStatus(ctx context.Context, as *appsv1alpha1.AppService, st appsv1alpha1.AppServiceStatus) error {
	if equality.Semantic.DeepEqual(as.Status, st) {
		return nil
	}
	base := as.DeepCopy()
	as.Status = st
	if err := r.Client.Status().Patch(ctx, as, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("writing status of AppService %s/%s: %w", as.Namespace, as.Name, err)
	}
	return nil
}

func lower(r apply.Result) string {
	switch r {
	case apply.Created:
		return "created"
	case apply.Updated:
		return "updated"
	}
	return string(r)
}
