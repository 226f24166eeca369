package rediscluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	redisv1alpha1 "opsmith.io/opsmith/api/redis/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
	"opsmith.io/opsmith/internal/podstatus"
	"opsmith.io/opsmith/internal/redis"
)

// Kinds of the node objects, in messages.
const (
	kindPod    = "Pod"
	kindVolume = "PersistentVolumeClaim"
)

// Reasons of the blocks the steps report.
const (
	ReasonConfigRejected = "ConfigRejected"
)

// Operations of the steps this package takes itself (the others are
// redis.Plan's).
const (
	opCreate      = "Create"
	opConfigure   = "Configure"
	opRestart     = "RollingRestart"
	opRemoveNodes = "RemoveNode"
)

// step takes the next step. *a is the plan; it is replaced by the step
// actually under way (a configuration change, a handover, a restart) so
// that the status reports it.
func (r *Reconciler) step(ctx context.Context, rc *redisv1alpha1.RedisCluster, w *world, a *redis.Action) (reconcile.Result, error) {
	if err := r.recordNodeIDs(ctx, rc, w); err != nil {
		return reconcile.Result{}, err
	}
	created, waiting, err := r.createMissing(ctx, rc, w)
	if created {
		*a = redis.Action{Type: redis.ActionWait, Operation: opCreate, Reason: "creating the pods and volumes of the nodes"}
	}
	switch {
	case err != nil || created:
		return reconcile.Result{RequeueAfter: requeueAfterStep}, err
	case waiting != nil:
		*a = *waiting
		return reconcile.Result{RequeueAfter: requeueWaiting}, nil
	}
	switch a.Type {
	case redis.ActionWait:
		return reconcile.Result{RequeueAfter: requeueWaiting}, nil
	case redis.ActionNone:
		return r.converged(ctx, rc, w, a)
	case redis.ActionRemove:
		return r.done(ctx, rc, *a, r.removeNode(ctx, rc, w, a.Member))
	}
	if w.client == nil {
		return reconcile.Result{RequeueAfter: requeueWaiting}, nil
	}
	return r.done(ctx, rc, *a, w.client.Execute(ctx, *a))
}

// done logs and records a step that was taken, or returns its error; a
// refusal Redis lifts by itself is retried after a wait.
func (r *Reconciler) done(ctx context.Context, rc *redisv1alpha1.RedisCluster, a redis.Action, err error) (reconcile.Result, error) {
	if err != nil {
		if redis.Retryable(err) {
			log.FromContext(ctx).V(1).Info("Redis refused the step for now", "step", describe(a), "error", err.Error())
			return reconcile.Result{RequeueAfter: requeueWaiting}, nil
		}
		return reconcile.Result{}, err
	}
	log.FromContext(ctx).Info("redis cluster step", "action", a.Type, "member", a.Member, "operation", a.Operation, "reason", a.Reason)
	r.Recorder.Eventf(rc, nil, corev1.EventTypeNormal, string(a.Type), a.Operation, "%s", a.Reason)
	return reconcile.Result{RequeueAfter: requeueAfterStep}, nil
}

// createMissing creates the volume and the pod of every node of the
// spec's shape that has none. Nodes start empty or from their volume;
// redis.Plan then meets them and gives them their role. The pod of a
// node on a new volume (no AnnotationNodeID) waits while
// redis.PlanFreshStart says its old node's shard has not failed over
// yet: the first such wait is returned.
func (r *Reconciler) createMissing(ctx context.Context, rc *redisv1alpha1.RedisCluster, w *world) (bool, *redis.Action, error) {
	created := false
	var waiting *redis.Action
	for s := range int(rc.Spec.Size) {
		for rep := range 1 + rc.Spec.Replicas() {
			name := nodeName(rc, s, rep)
			v := w.pvcs[name]
			if v == nil {
				err := ignoreExists(r.Client.Create(ctx, Volume(rc, name, s)))
				if err := apply.Rejected(r.Recorder, rc, kindVolume, name, err); err != nil {
					return created, waiting, fmt.Errorf("creating the volume of Redis node %s: %w", name, err)
				}
				created = true
			} else if !v.DeletionTimestamp.IsZero() {
				continue // wait until it is gone, then make a new one
			}
			if p := w.pods[name]; p != nil {
				continue
			}
			if v == nil || v.Annotations[AnnotationNodeID] == "" {
				if fs := redis.PlanFreshStart(w.obs, name); fs.Type == redis.ActionWait {
					if waiting == nil {
						waiting = &fs
					}
					continue
				}
			}
			err := ignoreExists(r.Client.Create(ctx, Pod(rc, name, s, w.cfg.hashes)))
			if err := apply.Rejected(r.Recorder, rc, kindPod, name, err); err != nil {
				return created, waiting, fmt.Errorf("creating the pod of Redis node %s: %w", name, err)
			}
			created = true
		}
	}
	return created, waiting, nil
}

// recordNodeIDs records on each volume the node ID its node answers
// with (once per volume and node ID: no write when nothing changed). A
// volume whose recorded ID differs from the one its node answers with has
// lost its data under its claim (its nodes.conf is gone): a Warning event
// says so; redis.Plan then repairs the node as a new one.
func (r *Reconciler) recordNodeIDs(ctx context.Context, rc *redisv1alpha1.RedisCluster, w *world) error {
	for _, name := range sortedPods(w) {
		view, ok := w.obs.Views[name]
		v, p := w.pvcs[name], w.pods[name]
		if !ok || !view.Reachable() || view.ID == "" || v == nil || !v.DeletionTimestamp.IsZero() || !p.DeletionTimestamp.IsZero() {
			continue
		}
		was := v.Annotations[AnnotationNodeID]
		if was == view.ID {
			continue
		}
		base := v.DeepCopy()
		if v.Annotations == nil {
			v.Annotations = map[string]string{}
		}
		v.Annotations[AnnotationNodeID] = view.ID
		if err := r.Client.Patch(ctx, v, client.MergeFrom(base)); err != nil {
			return apply.Rejected(r.Recorder, rc, kindVolume, name, err)
		}
		if was != "" {
			r.Recorder.Eventf(rc, nil, corev1.EventTypeWarning, "NodeDataLost", redis.OpRepair,
				"Redis node %s answers as node %s, but its volume held node %s: the volume lost its data; the node rejoins as a new one", name, view.ID, was)
		}
	}
	return nil
}

// removeNode deletes the pod and the volume of a node redis.Plan has
// drained (it serves no slots and no shard needs it).
func (r *Reconciler) removeNode(ctx context.Context, rc *redisv1alpha1.RedisCluster, w *world, name string) error {
	if _, _, ok := member(rc, name); ok {
		return fmt.Errorf("refusing to remove Redis node %s: it belongs to the spec's shape", name)
	}
	if p := w.pods[name]; p != nil {
		err := client.IgnoreNotFound(r.Client.Delete(ctx, p, client.Preconditions{UID: &p.UID}))
		if err := apply.Rejected(r.Recorder, rc, kindPod, name, err); err != nil {
			return fmt.Errorf("deleting the pod of Redis node %s: %w", name, err)
		}
	}
	if v := w.pvcs[name]; v != nil {
		err := client.IgnoreNotFound(r.Client.Delete(ctx, v, client.Preconditions{UID: &v.UID}))
		if err := apply.Rejected(r.Recorder, rc, kindVolume, name, err); err != nil {
			return fmt.Errorf("deleting the volume of Redis node %s: %w", name, err)
		}
	}
	return nil
}

// converged runs once redis.Plan has nothing to do: run-time directives
// first (no restart), then the rolling restart of outdated pods.
func (r *Reconciler) converged(ctx context.Context, rc *redisv1alpha1.RedisCluster, w *world, a *redis.Action) (reconcile.Result, error) {
	if changed, err := r.configure(ctx, rc, w); err != nil || changed {
		if changed {
			*a = redis.Action{Type: redis.ActionWait, Operation: opConfigure, Reason: "applying the run-time configuration with CONFIG SET"}
		}
		return reconcile.Result{RequeueAfter: requeueAfterStep}, err
	}
	return r.roll(ctx, rc, w, a)
}

// configure sets the run-time directives on every node that does not run
// them yet, and records them on its pod.
func (r *Reconciler) configure(ctx context.Context, rc *redisv1alpha1.RedisCluster, w *world) (bool, error) {
	if w.client == nil {
		return false, nil
	}
	changed := false
	for _, name := range sortedPods(w) {
		p := w.pods[name]
		e, up := w.desired.Members[name]
		if !up || !p.DeletionTimestamp.IsZero() || p.Annotations[AnnotationConfigHash] == w.cfg.hashes.config {
			continue
		}
		if err := w.client.ConfigSet(ctx, name, e, w.cfg.runtime); err != nil {
			if redis.IsConfigRejected(err) {
				return changed, configRejected(err)
			}
			return changed, err
		}
		base := p.DeepCopy()
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[AnnotationConfigHash] = w.cfg.hashes.config
		p.Annotations[AnnotationConfigKeys] = unionKeys(p.Annotations[AnnotationConfigKeys], w.cfg.hashes.configKeys)
		if err := r.Client.Patch(ctx, p, client.MergeFrom(base)); err != nil {
			return changed, apply.Rejected(r.Recorder, rc, kindPod, name, err)
		}
		changed = true
		log.FromContext(ctx).Info("applied the run-time configuration", "node", name)
	}
	if changed {
		r.Recorder.Eventf(rc, nil, corev1.EventTypeNormal, "Configured", opConfigure, "applied the run-time configuration with CONFIG SET")
	}
	return changed, nil
}

// configRejected is the block of a configuration Redis refuses. Nothing
// rolls while it stands: a node restarted with a directive Redis refuses
// would not start.
func configRejected(err error) error {
	var ce *redis.ConfigError
	msg := err.Error()
	if errors.As(err, &ce) {
		msg = fmt.Sprintf("Redis refused spec.config on node %s: %v", ce.Member, ce.Err)
	}
	if redis.IsConfigImmutable(err) {
		msg += " (a directive Redis reads only at start; the operator does not know it as one: report it)"
	}
	return apply.Blocked(ReasonConfigRejected, "%s", msg)
}

func unionKeys(a, b string) string {
	var keys []string
	for _, s := range []string{a, b} {
		for _, k := range strings.Split(s, ",") {
			if k != "" && !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}

// roll restarts the next outdated pod: only while every pod is ready and
// none is terminating, replicas before masters, and a master only once
// redis.PlanHandover says its slots are safe (after it handed them to an
// in-sync replica).
func (r *Reconciler) roll(ctx context.Context, rc *redisv1alpha1.RedisCluster, w *world, a *redis.Action) (reconcile.Result, error) {
	next := nextRestart(w)
	if next == "" {
		return reconcile.Result{RequeueAfter: requeueHealth}, nil
	}
	for _, p := range w.pods {
		if !p.DeletionTimestamp.IsZero() || !podstatus.Ready(p) {
			*a = redis.Action{Type: redis.ActionWait, Operation: opRestart,
				Reason: fmt.Sprintf("restarting %s waits for pod %s to be ready", next, p.Name)}
			return reconcile.Result{RequeueAfter: requeueWaiting}, nil
		}
	}
	h := redis.PlanHandover(w.desired, w.obs, next)
	switch h.Type {
	case redis.ActionNone:
	case redis.ActionWait:
		*a = h
		if a.Operation == "" {
			a.Operation = redis.OpHandover
		}
		return reconcile.Result{RequeueAfter: requeueWaiting}, nil
	default:
		*a = h
		return r.done(ctx, rc, h, w.client.Execute(ctx, h))
	}
	p := w.pods[next]
	*a = redis.Action{Type: redis.ActionWait, Operation: opRestart, Member: next,
		Reason: fmt.Sprintf("restarting %s to apply the spec", next)}
	err := client.IgnoreNotFound(r.Client.Delete(ctx, p, client.Preconditions{UID: &p.UID}))
	if err := apply.Rejected(r.Recorder, rc, kindPod, next, err); err != nil {
		return reconcile.Result{}, fmt.Errorf("restarting Redis node %s: %w", next, err)
	}
	log.FromContext(ctx).Info("restarting a Redis node", "node", next, "reason", a.Reason)
	r.Recorder.Eventf(rc, nil, corev1.EventTypeNormal, "Restart", opRestart, "%s", a.Reason)
	return reconcile.Result{RequeueAfter: requeueAfterStep}, nil
}

// nextRestart is the outdated pod to restart next: a replica first, in
// name order, then a master.
func nextRestart(w *world) string {
	var masters []string
	for _, name := range sortedPods(w) {
		p := w.pods[name]
		if !p.DeletionTimestamp.IsZero() || !needsRestart(p.Annotations, w.cfg) {
			continue
		}
		if v, ok := w.obs.Views[name]; ok && v.Reachable() && v.Myself().Role() == "master" {
			masters = append(masters, name)
			continue
		}
		return name
	}
	if len(masters) > 0 {
		return masters[0]
	}
	return ""
}

func sortedPods(w *world) []string {
	names := make([]string, 0, len(w.pods))
	for name := range w.pods {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func ignoreExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// syncVolumeOwners makes the volumes owned by the RedisCluster exactly
// when reclaimPolicy is Delete.
func (r *Reconciler) syncVolumeOwners(ctx context.Context, rc *redisv1alpha1.RedisCluster, w *world) error {
	return apply.SetOwners(ctx, r.Client, r.Recorder, rc, kindVolume, w.pvcs, volumeOwners(rc))
}
