package rollout

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"opsmith.io/opsmith/internal/apply"
)

// Condition types every controller that runs a Deployment reports.
const (
	ConditionAvailable   = "Available"
	ConditionProgressing = "Progressing"
)

// Workload is what the Available and Progressing conditions of a resource
// that runs its pods through one Deployment are computed from.
type Workload struct {
	// Generation of the resource, recorded as the conditions'
	// observedGeneration.
	Generation int64
	// Deployment as observed; nil when it does not exist (yet).
	Deployment *appsv1.Deployment
	// Desired is the number of pods the Deployment should run.
	Desired int32
	// Blocked, when set, is why the resource's objects cannot be written.
	Blocked *apply.BlockedError
	// What names what the pods run, for messages ("image nginx:1.7.9",
	// "version 1.0").
	What string
	// Creating is Progressing's message while the Deployment is missing.
	Creating string
	// NoPods is the Available condition when no pod is desired (a size
	// of 0, an idle instance): whether that counts as available is the
	// kind's to say. Type and observedGeneration are filled in.
	NoPods metav1.Condition
}

// SetAvailable sets Available: True when every desired pod is ready.
// It reports whether the condition is True.
func SetAvailable(conds *[]metav1.Condition, w Workload) bool {
	c := metav1.Condition{Type: ConditionAvailable, ObservedGeneration: w.Generation}
	dep := w.Deployment
	switch {
	case dep == nil:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonCreating, "the Deployment does not exist yet"
	case w.Desired == 0:
		c.Status, c.Reason, c.Message = w.NoPods.Status, w.NoPods.Reason, w.NoPods.Message
	case dep.Status.ReadyReplicas >= w.Desired:
		c.Status, c.Reason = metav1.ConditionTrue, ReasonAllReplicasReady
		c.Message = fmt.Sprintf("%d of %d pods are ready", dep.Status.ReadyReplicas, w.Desired)
	default:
		c.Status, c.Reason = metav1.ConditionFalse, ReasonReplicasNotReady
		c.Message = fmt.Sprintf("%d of %d pods are ready", dep.Status.ReadyReplicas, w.Desired)
	}
	meta.SetStatusCondition(conds, c)
	return c.Status == metav1.ConditionTrue
}

// SetProgressing sets Progressing: True while the Deployment converges,
// False when the rollout is complete or cannot go on (blocked, or stuck
// past the Deployment's progress deadline), with the reason.
func SetProgressing(conds *[]metav1.Condition, w Workload) {
	c := metav1.Condition{Type: ConditionProgressing, ObservedGeneration: w.Generation}
	dep := w.Deployment
	switch {
	case w.Blocked != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, w.Blocked.Reason, w.Blocked.Message
	case dep == nil:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonCreating, w.Creating
	case Stuck(dep) != "":
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonStuck, Stuck(dep)
	case Done(dep, w.Desired):
		c.Status, c.Reason = metav1.ConditionFalse, ReasonRolloutComplete
		c.Message = fmt.Sprintf("%d pods of %s are up to date", w.Desired, w.What)
	default:
		// No pod counts here: they are in replicas and readyReplicas, and
		// a message that changed with every pod would cost a status write
		// per pod step of every rollout.
		c.Status, c.Reason = metav1.ConditionTrue, ReasonRollingOut
		c.Message = fmt.Sprintf("rolling out %d pods of %s", w.Desired, w.What)
	}
	meta.SetStatusCondition(conds, c)
}
