// Package rediscluster implements the RedisCluster controller in cluster
// mode: a RedisCluster becomes one pod and one PersistentVolumeClaim per
// Redis node (<name>-<shard>-<replica>), a headless Service for the
// nodes' names, a client Service, a PodDisruptionBudget, the password
// Secret and a Secret with redis.conf. The decisions about the Redis
// cluster itself (meeting, slots, replicas, failover, migration,
// handover) are internal/redis's Plan and PlanHandover; this package
// runs them and the Kubernetes side: pods, volumes, the configuration
// applied live with CONFIG SET, and the rolling restart that hands a
// master's slots over before it restarts.
package rediscluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	redisv1alpha1 "opsmith.io/opsmith/api/redis/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
	"opsmith.io/opsmith/internal/redis"
)

// FieldManager is the server-side apply field manager of this controller.
const FieldManager = "opsmith-rediscluster"

// Requeue intervals: right after a step, while waiting for something to
// happen, and to watch the nodes' health when the cluster is converged
// (Redis has no watch the operator could use).
const (
	requeueAfterStep = 500 * time.Millisecond
	requeueWaiting   = 2 * time.Second
	requeueHealth    = 30 * time.Second
)

// Reconciler reconciles RedisCluster objects.
type Reconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads from the API server directly: a Secret the user
	// names (not cached), and names not in the cache before a create.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Endpoint is where the operator reaches the Redis node of a pod;
	// nil: the pod's IP, port 6379.
	Endpoint func(*corev1.Pod) (redis.Endpoint, bool)

	mu      sync.Mutex
	clients map[types.NamespacedName]*clusterClient
}

type clusterClient struct {
	password string
	c        *redis.Client
}

// +kubebuilder:rbac:groups=redis.opsmith.io,resources=redisclusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=redis.opsmith.io,resources=redisclusters/status,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create;patch
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile moves one RedisCluster one step closer to its spec:
//
//  1. get the RedisCluster (gone: its pods, Services and Secrets are
//     garbage collected; its volumes stay unless reclaimPolicy is Delete);
//  2. the password: the Secret the user names, or one the operator
//     generates once; then redis.conf (a Secret), the Services and the
//     PodDisruptionBudget, written only when they differ;
//  3. observe the pods and volumes from the cache and every node as
//     Redis reports it;
//  4. unless paused: create missing volumes and pods, take the next
//     step of redis.Plan (meet, slots, replicas, repairs, migration,
//     removal of drained nodes); once the cluster is converged, apply
//     changed run-time directives with CONFIG SET, then restart
//     outdated pods one at a time, replicas first, a master only after
//     redis.PlanHandover moved its slots to an in-sync replica;
//  5. write the status when it changed, naming what blocks progress.
//
// Every step is derived from what Kubernetes and Redis show, so a restart
// of the operator at any point resumes where it stopped.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	rc := &redisv1alpha1.RedisCluster{}
	if err := r.Client.Get(ctx, req.NamespacedName, rc); err != nil {
		r.dropClient(req.NamespacedName)
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !rc.DeletionTimestamp.IsZero() {
		r.dropClient(req.NamespacedName)
		return reconcile.Result{}, nil
	}
	password, cfg, cfgErr, blocked, err := r.prepare(ctx, rc)
	if err != nil {
		return reconcile.Result{}, err
	}

	w, err := r.observe(ctx, rc, password, blocked == nil)
	if err != nil {
		return reconcile.Result{}, err
	}
	w.cfg, w.cfgErr = cfg, cfgErr
	a := redis.Plan(w.desired, w.obs)
	res := reconcile.Result{RequeueAfter: requeueHealth}
	var stepErr error
	if !rc.Spec.Paused && blocked == nil && cfgErr == nil {
		res, stepErr = r.step(ctx, rc, w, &a)
		if err := r.syncVolumeOwners(ctx, rc, w); err != nil && stepErr == nil {
			stepErr = err
		}
	}
	stepBlocked, stepErr := apply.Split(stepErr)
	if blocked == nil {
		blocked = stepBlocked
	}
	if blocked != nil {
		res.RequeueAfter = blocked.Requeue(res.RequeueAfter)
	}
	st := computeStatus(rc, w, a, blocked)
	if err := apply.WriteStatus(ctx, r.Client, rc, &rc.Status, st); err != nil && stepErr == nil {
		stepErr = err
	}
	return res, stepErr
}

// prepare reads the password, renders redis.conf and, unless paused,
// applies the Secrets, Services and PodDisruptionBudget. A block (a
// missing Secret, a child the API server refuses) is returned for status;
// err only for what a retry should fix.
func (r *Reconciler) prepare(ctx context.Context, rc *redisv1alpha1.RedisCluster) (
	password string, cfg nodeConfig, cfgErr error, blocked *apply.BlockedError, err error) {
	password, err = r.password(ctx, rc)
	if blocked, err = apply.Split(err); err != nil && blocked == nil {
		return "", cfg, nil, nil, err
	}
	if blocked != nil {
		return password, cfg, nil, blocked, nil
	}
	if cfg, cfgErr = renderConfig(rc, password); cfgErr != nil || rc.Spec.Paused {
		return password, cfg, cfgErr, nil, nil
	}
	if blocked, err = apply.Split(r.ensureObjects(ctx, rc, cfg)); err != nil && blocked == nil {
		return password, cfg, nil, nil, err
	}
	return password, cfg, nil, blocked, nil
}

// ensureObjects applies the config Secret, the Services and the
// PodDisruptionBudget.
func (r *Reconciler) ensureObjects(ctx context.Context, rc *redisv1alpha1.RedisCluster, cfg nodeConfig) error {
	children := r.children()
	defer children.Flush(rc)
	for _, c := range []struct {
		kind    string
		desired runtime.ApplyConfiguration
		live    client.Object
	}{
		{"Secret", ConfigSecret(rc, cfg.file), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: ConfigSecretName(rc)}}},
		{"Service", NodesService(rc), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: NodesServiceName(rc)}}},
		{"Service", ClientService(rc), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: ClientServiceName(rc)}}},
		{"PodDisruptionBudget", PodDisruptionBudget(rc), &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: rc.Name}}},
	} {
		if _, err := children.Ensure(ctx, rc, c.kind, c.desired, c.live); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reconciler) children() *apply.Children {
	return &apply.Children{
		Client: r.Client, APIReader: r.APIReader, Recorder: r.Recorder,
		FieldManager: FieldManager, OwnerKind: "RedisCluster", OwnerLabel: LabelCluster,
	}
}

// client is the Redis client of rc, made anew when the password changed.
func (r *Reconciler) client(key types.NamespacedName, password string) *redis.Client {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clients == nil {
		r.clients = map[types.NamespacedName]*clusterClient{}
	}
	if cc, ok := r.clients[key]; ok {
		if cc.password == password {
			return cc.c
		}
		_ = cc.c.Close()
	}
	cc := &clusterClient{password: password, c: redis.NewClient(redis.Options{Password: password})}
	r.clients[key] = cc
	return cc.c
}

func (r *Reconciler) dropClient(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cc, ok := r.clients[key]; ok {
		_ = cc.c.Close()
		delete(r.clients, key)
	}
}

// nodeName is the pod and volume name of replica r of shard s.
func nodeName(rc *redisv1alpha1.RedisCluster, shard, replica int) string {
	return redis.MemberName(rc.Name, shard, replica)
}

func describe(a redis.Action) string { return fmt.Sprintf("%s %s", a.Type, a.Member) }
