package appservice

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
	"opsmith.io/opsmith/internal/rollout"
)

// Condition reasons.
const (
	ReasonAllReplicasReady = rollout.ReasonAllReplicasReady
	ReasonScaledToZero     = "ScaledToZero"
	ReasonReplicasNotReady = rollout.ReasonReplicasNotReady
	ReasonCreating         = rollout.ReasonCreating
	ReasonRollingOut       = rollout.ReasonRollingOut
	ReasonRolloutComplete  = rollout.ReasonRolloutComplete
	ReasonRolloutStuck     = rollout.ReasonStuck
	ReasonNameConflict     = apply.ReasonNameConflict
	ReasonApplyFailed      = apply.ReasonApplyFailed
)

// computeStatus derives the AppService status from the observed Deployment
// (nil when it does not exist yet) and from a blocking problem, if any. It
// starts from the current status so that condition transition times are kept
// when nothing changed.
func computeStatus(as *appsv1alpha1.AppService, dep *appsv1.Deployment, stuck *apply.Blocked) appsv1alpha1.AppServiceStatus {
	st := *as.Status.DeepCopy()
	st.ObservedGeneration = as.Generation
	size := ptr.Deref(as.Spec.Size, 0)

	if dep == nil {
		st.Replicas, st.ReadyReplicas = 0, 0
	} else {
		st.Replicas, st.ReadyReplicas = dep.Status.Replicas, dep.Status.ReadyReplicas
	}
	setAvailable(&st, as, dep, size)
	setProgressing(&st, as, dep, size, stuck)
	return st
}

// inProgress reports whether a status reports only progress (the rollout
// goes on), not an outcome (done, stuck, blocked): such a status may be
// held back for a while (see apply.Pacer).
func inProgress(st appsv1alpha1.AppServiceStatus) bool {
	return meta.IsStatusConditionTrue(st.Conditions, appsv1alpha1.ConditionProgressing)
}

// setAvailable sets Available: True when every requested pod is ready.
func setAvailable(st *appsv1alpha1.AppServiceStatus, as *appsv1alpha1.AppService, dep *appsv1.Deployment, size int32) {
	c := metav1.Condition{Type: appsv1alpha1.ConditionAvailable, ObservedGeneration: as.Generation}
	switch {
	case dep == nil:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonCreating, "the Deployment does not exist yet"
	case size == 0:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonScaledToZero, "size is 0: no pods are requested"
	case dep.Status.ReadyReplicas >= size:
		c.Status, c.Reason = metav1.ConditionTrue, ReasonAllReplicasReady
		c.Message = fmt.Sprintf("%d of %d pods are ready", dep.Status.ReadyReplicas, size)
	default:
		c.Status, c.Reason = metav1.ConditionFalse, ReasonReplicasNotReady
		c.Message = fmt.Sprintf("%d of %d pods are ready", dep.Status.ReadyReplicas, size)
	}
	meta.SetStatusCondition(&st.Conditions, c)
}

// setProgressing sets Progressing: True while the Deployment converges,
// False when the rollout is complete or cannot go on, with the reason.
func setProgressing(st *appsv1alpha1.AppServiceStatus, as *appsv1alpha1.AppService, dep *appsv1.Deployment, size int32, stuck *apply.Blocked) {
	c := metav1.Condition{Type: appsv1alpha1.ConditionProgressing, ObservedGeneration: as.Generation}
	switch {
	case stuck != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, stuck.Reason, stuck.Message
	case dep == nil:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonCreating, "creating the Deployment and Service"
	case rollout.Stuck(dep) != "":
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonRolloutStuck, rollout.Stuck(dep)
	case rollout.Done(dep, size):
		c.Status, c.Reason = metav1.ConditionFalse, ReasonRolloutComplete
		c.Message = fmt.Sprintf("%d pods of image %s are up to date", size, as.Spec.Image)
	default:
		// No pod counts here: they are in replicas and readyReplicas, and
		// a message that changed with every pod would cost a status write
		// per pod step of every rollout.
		c.Status, c.Reason = metav1.ConditionTrue, ReasonRollingOut
		c.Message = fmt.Sprintf("rolling out %d pods of image %s", size, as.Spec.Image)
	}
	meta.SetStatusCondition(&st.Conditions, c)
}
