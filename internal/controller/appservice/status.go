package appservice

import (
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
func computeStatus(as *appsv1alpha1.AppService, dep *appsv1.Deployment, blocked *apply.BlockedError) appsv1alpha1.AppServiceStatus {
	st := *as.Status.DeepCopy()
	st.ObservedGeneration = as.Generation
	size := ptr.Deref(as.Spec.Size, 0)

	if dep == nil {
		st.Replicas, st.ReadyReplicas = 0, 0
	} else {
		st.Replicas, st.ReadyReplicas = dep.Status.Replicas, dep.Status.ReadyReplicas
	}
	w := workload(as, dep, size, blocked)
	rollout.SetAvailable(&st.Conditions, w)
	rollout.SetProgressing(&st.Conditions, w)
	return st
}

// inProgress reports whether a status reports only progress (the rollout
// goes on), not an outcome (done, stuck, blocked): such a status may be
// held back for a while (see apply.Pacer).
func inProgress(st appsv1alpha1.AppServiceStatus) bool {
	return meta.IsStatusConditionTrue(st.Conditions, appsv1alpha1.ConditionProgressing)
}

// workload is what the Available and Progressing conditions are computed
// from.
func workload(as *appsv1alpha1.AppService, dep *appsv1.Deployment, size int32, blocked *apply.BlockedError) rollout.Workload {
	return rollout.Workload{
		Generation: as.Generation, Deployment: dep, Desired: size, Blocked: blocked,
		What: "image " + as.Spec.Image, Creating: "creating the Deployment and Service",
		NoPods: metav1.Condition{Status: metav1.ConditionTrue, Reason: ReasonScaledToZero, Message: "size is 0: no pods are requested"},
	}
}
