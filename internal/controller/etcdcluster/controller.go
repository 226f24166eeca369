// Package etcdcluster implements the EtcdCluster controller: an EtcdCluster
// becomes one pod and one PersistentVolumeClaim per etcd member, a headless
// peer Service, a client Service and a PodDisruptionBudget, and the
// controller changes membership and versions one member at a time through
// etcd's membership API (the decisions are internal/etcd's Plan).
package etcdcluster

import (
	"context"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	etcdv1alpha1 "opsmith.io/opsmith/api/etcd/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
	"opsmith.io/opsmith/internal/etcd"
)

// FieldManager is the server-side apply field manager of this controller.
const FieldManager = "opsmith-etcdcluster"

// Requeue intervals: right after a step, while waiting for something to
// happen, and to watch the members' health when the cluster is converged
// (etcd health has no watch).
const (
	requeueAfterStep = 500 * time.Millisecond
	requeueWaiting   = 2 * time.Second
	requeueHealth    = 30 * time.Second
)

// EtcdClient is the part of an etcd client the controller uses.
type EtcdClient interface {
	Observe(ctx context.Context) (reachable bool, members []etcd.Member)
	Execute(ctx context.Context, a etcd.Action, members []etcd.Member, n etcd.Naming) error
	Close() error
}

// Dialer connects to an etcd cluster through its members' client URLs.
type Dialer func(endpoints []string) (EtcdClient, error)

// DialEtcd is the Dialer of the shipped binary.
func DialEtcd(endpoints []string) (EtcdClient, error) { return etcd.Dial(endpoints) }

// Reconciler reconciles EtcdCluster objects.
type Reconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads from the API server directly: before a Service is
	// created (is the name free?) and before a member is removed because
	// its volume is gone (is it really gone, not just missing from the
	// cache?).
	APIReader client.Reader
	Recorder  events.EventRecorder
	Dial      Dialer
}

// +kubebuilder:rbac:groups=etcd.opsmith.io,resources=etcdclusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=etcd.opsmith.io,resources=etcdclusters/status,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile moves one EtcdCluster one step closer to its spec. Phases:
//
//  1. get the EtcdCluster (gone: its pods and Services are garbage
//     collected; its volumes stay unless reclaimPolicy is Delete);
//  2. skip objects being deleted;
//  3. apply the peer and client Services and the PodDisruptionBudget (only
//     when they differ from the desired ones);
//  4. observe: the member pods and volumes from the cache, the member list
//     and every member's health from etcd;
//  5. plan the single next step (etcd.Plan) and, unless paused, take it;
//  6. write the status when it changed, naming what blocks progress (an
//     invariant, or a child the API server refused: ApplyFailed with its
//     message).
//
// Every step is derived from what the cluster and etcd show, so a restart
// of the operator at any point resumes where it stopped.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	ec := &etcdv1alpha1.EtcdCluster{}
	if err := r.Client.Get(ctx, req.NamespacedName, ec); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !ec.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}
	// Paused: nothing but the status is written (no Service, volume or
	// pod), whatever the spec says.
	var blocked *apply.BlockedError
	var servicesErr error
	if !ec.Spec.Paused {
		// A blocked Service or PodDisruptionBudget does not stop the
		// members' care: it is reported in status, and retried when
		// retrying may help.
		blocked, servicesErr = apply.Split(r.ensureServices(ctx, ec))
		if servicesErr != nil && blocked == nil {
			return reconcile.Result{}, servicesErr
		}
	}

	w, err := r.observe(ctx, ec)
	if err != nil {
		return reconcile.Result{}, err
	}
	defer w.close()
	action := waitForReadyPods(w, etcd.Plan(int(ec.Spec.Size), w.obs, Naming(ec)))
	res := reconcile.Result{RequeueAfter: requeueHealth}
	var stepErr error
	if !ec.Spec.Paused {
		res, stepErr = r.step(ctx, ec, w, action)
		if err := r.syncVolumeOwners(ctx, ec, w); err != nil && stepErr == nil {
			stepErr = err
		}
	}
	// A member pod or volume the API server refused is reported like a
	// blocked Service (the Services' block, found first, wins), and
	// retried with backoff.
	stepBlocked, stepErr := apply.Split(stepErr)
	if blocked == nil {
		blocked = stepBlocked
	}
	st := computeStatus(ec, w, action, blocked)
	if err := apply.WriteStatus(ctx, r.Client, ec, &ec.Status, st); err != nil && stepErr == nil {
		stepErr = err
	}
	if stepErr == nil {
		stepErr = servicesErr
	}
	return res, stepErr
}

// ensureServices applies the peer and client Services and the
// PodDisruptionBudget.
func (r *Reconciler) ensureServices(ctx context.Context, ec *etcdv1alpha1.EtcdCluster) error {
	children := &apply.Children{
		Client: r.Client, APIReader: r.APIReader, Recorder: r.Recorder,
		FieldManager: FieldManager, OwnerKind: "EtcdCluster", OwnerLabel: LabelCluster,
	}
	defer children.Flush(ec)
	if _, err := children.Ensure(ctx, ec, "Service", PeerService(ec),
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: PeerServiceName(ec)}}); err != nil {
		return err
	}
	if _, err := children.Ensure(ctx, ec, "Service", ClientService(ec),
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: ClientServiceName(ec)}}); err != nil {
		return err
	}
	_, err := children.Ensure(ctx, ec, "PodDisruptionBudget", PodDisruptionBudget(ec),
		&policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: ec.Name}})
	return err
}

// world is what one reconcile observed.
type world struct {
	obs    etcd.Observed
	pods   map[string]*corev1.Pod
	pvcs   map[string]*corev1.PersistentVolumeClaim
	client EtcdClient
	// target is the version new and restarted members get; pathErr says
	// why it is not spec.version.
	target  string
	pathErr error
}

func (w *world) close() {
	if w.client != nil {
		_ = w.client.Close()
	}
}

func (r *Reconciler) observe(ctx context.Context, ec *etcdv1alpha1.EtcdCluster) (*world, error) {
	w := &world{pods: map[string]*corev1.Pod{}, pvcs: map[string]*corev1.PersistentVolumeClaim{}}
	sel := client.MatchingLabels(selectorLabels(ec))
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(ec.Namespace), sel); err != nil {
		return nil, err
	}
	var pvcs corev1.PersistentVolumeClaimList
	if err := r.Client.List(ctx, &pvcs, client.InNamespace(ec.Namespace), sel); err != nil {
		return nil, err
	}
	slots := map[string]*etcd.Slot{}
	slot := func(name string) *etcd.Slot {
		if slots[name] == nil {
			slots[name] = &etcd.Slot{Name: name}
		}
		return slots[name]
	}
	var endpoints []string
	for i := range pods.Items {
		p := &pods.Items[i]
		w.pods[p.Name] = p
		s := slot(p.Name)
		s.Pod, s.PodTerminating = true, !p.DeletionTimestamp.IsZero()
		if p.Status.PodIP != "" && p.DeletionTimestamp.IsZero() {
			endpoints = append(endpoints, podClientURL(p.Status.PodIP))
		}
	}
	for i := range pvcs.Items {
		v := &pvcs.Items[i]
		w.pvcs[v.Name] = v
		s := slot(v.Name)
		s.Volume, s.VolumeTerminating = true, !v.DeletionTimestamp.IsZero()
		s.VolumeMemberID = ParseID(v.Annotations[AnnotationMemberID])
	}
	if len(endpoints) > 0 && r.Dial != nil {
		sort.Strings(endpoints)
		c, err := r.Dial(endpoints)
		if err != nil {
			return nil, err
		}
		w.client = c
		w.obs.Reachable, w.obs.Members = c.Observe(ctx)
	}
	w.target, w.pathErr = targetVersion(ec, w)
	for name, s := range slots {
		if p := w.pods[name]; p != nil {
			s.PodOutdated = p.Annotations[AnnotationPodHash] != PodHash(ec, w.target)
		}
		w.obs.Slots = append(w.obs.Slots, *s)
	}
	return w, nil
}

// targetVersion is spec.version when every member may go there (etcd's
// upgrade path), otherwise the newest version a member runs.
func targetVersion(ec *etcdv1alpha1.EtcdCluster, w *world) (string, error) {
	var running []string
	for _, m := range w.obs.Members {
		running = append(running, m.Version)
	}
	for _, p := range w.pods {
		running = append(running, p.Labels[LabelVersion])
	}
	if err := etcd.CheckUpgrade(running, ec.Spec.Version); err != nil {
		return etcd.NewestVersion(running), err
	}
	return ec.Spec.Version, nil
}

// step takes action a.
func (r *Reconciler) step(ctx context.Context, ec *etcdv1alpha1.EtcdCluster, w *world, a etcd.Action) (reconcile.Result, error) {
	logger := log.FromContext(ctx)
	switch a.Type {
	case etcd.ActionNone:
		return reconcile.Result{RequeueAfter: requeueHealth}, nil
	case etcd.ActionWait:
		return reconcile.Result{RequeueAfter: requeueWaiting}, nil
	}
	done, err := r.execute(ctx, ec, w, a)
	if err != nil {
		return reconcile.Result{}, err
	}
	if !done {
		return reconcile.Result{RequeueAfter: requeueWaiting}, nil
	}
	logger.Info("etcd cluster step", "action", a.Type, "member", a.Name, "operation", a.Operation, "reason", a.Reason)
	r.Recorder.Eventf(ec, nil, corev1.EventTypeNormal, string(a.Type), a.Operation, "%s", a.Reason)
	return reconcile.Result{RequeueAfter: requeueAfterStep}, nil
}

// execute takes one step; done is false when it has to be tried again
// later (etcd refused it for now).
func (r *Reconciler) execute(ctx context.Context, ec *etcdv1alpha1.EtcdCluster, w *world, a etcd.Action) (bool, error) {
	switch a.Type {
	case etcd.ActionCreateVolume, etcd.ActionRecordMemberID, etcd.ActionCreatePod, etcd.ActionDeletePod, etcd.ActionDeleteVolume:
		return true, r.executeKubernetes(ctx, ec, w, a)
	}
	if a.Type == etcd.ActionRemoveMember && a.Operation == etcd.OpReplace {
		// Never remove a member for lost data on the word of a cache.
		gone, err := r.volumeGone(ctx, ec, a.Name)
		if err != nil || !gone {
			return false, err
		}
	}
	if w.client == nil {
		return false, nil
	}
	err := w.client.Execute(ctx, a, w.obs.Members, Naming(ec))
	if err == nil {
		return true, nil
	}
	if etcd.Retryable(err) {
		// A refusal that goes away by itself (a learner catching up, a
		// membership change right after another, a leader election).
		log.FromContext(ctx).V(1).Info("etcd refused the step for now", "action", a.Type, "member", a.Name, "error", err.Error())
		return false, nil
	}
	return false, err
}
