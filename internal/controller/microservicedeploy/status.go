package microservicedeploy

import (
	"fmt"
	"strconv"
	"time"

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
	ReasonReplicasNotReady = rollout.ReasonReplicasNotReady
	ReasonCreating         = rollout.ReasonCreating
	ReasonRollingOut       = rollout.ReasonRollingOut
	ReasonRolloutComplete  = rollout.ReasonRolloutComplete
	ReasonRolloutStuck     = rollout.ReasonStuck
	ReasonIdle             = "Idle"
	ReasonActive           = "Active"
	ReasonScalingDown      = "ScalingDown"
)

// computeStatus derives the status from the observed Deployment (nil when
// missing) and a blocking problem, starting from the stored status so that
// condition transition times are kept when nothing changed.
func computeStatus(m *appsv1alpha1.MicroServiceDeploy, dep *appsv1.Deployment, blocked *apply.BlockedError, cfg Config) appsv1alpha1.MicroServiceDeployStatus {
	st := *m.Status.DeepCopy()
	st.ObservedGeneration = m.Generation
	st.URL = "http://" + Host(cfg, m.Spec.MsName, m.Spec.Path) + "/"
	st.CreatedAt = createdAt(m.Spec.CreationTimestamp)
	st.Replicas, st.ReadyReplicas = 0, 0
	desired := int32(0)
	if dep != nil {
		st.Replicas, st.ReadyReplicas = dep.Status.Replicas, dep.Status.ReadyReplicas
		desired = ptr.Deref(dep.Spec.Replicas, 0)
	}
	done := dep != nil && rollout.Done(dep, desired)
	if done {
		st.Version = m.Spec.Version
	}
	// Awake again and back at full scale: forget the scale to resume.
	if !m.Spec.Idle && done && desired > 0 {
		st.ResumeReplicas = nil
	}

	idle := setIdle(&st, m)
	w := rollout.Workload{
		Generation: m.Generation, Deployment: dep, Desired: desired, Blocked: blocked,
		What: "version " + m.Spec.Version, Creating: "creating the instance's objects",
		NoPods: metav1.Condition{Status: metav1.ConditionFalse, Reason: ReasonIdle, Message: "no pods are requested"},
	}
	avail := rollout.SetAvailable(&st.Conditions, w)
	rollout.SetProgressing(&st.Conditions, w)
	stuck := ""
	if dep != nil {
		stuck = rollout.Stuck(dep)
	}

	switch {
	case blocked != nil || stuck != "":
		st.Phase = appsv1alpha1.PhaseFailed
	case idle:
		st.Phase = appsv1alpha1.PhaseIdle
	case dep == nil:
		st.Phase = appsv1alpha1.PhasePending
	case done && avail:
		st.Phase = appsv1alpha1.PhaseRunning
	default:
		st.Phase = appsv1alpha1.PhaseProgressing
	}
	return st
}

// inProgress reports whether a status reports only progress (objects
// being created, a rollout or a scale-down going on), not an outcome
// (running, idle, failed): such a status may be held back for a while (see
// apply.Pacer).
func inProgress(st appsv1alpha1.MicroServiceDeployStatus) bool {
	return st.Phase == appsv1alpha1.PhaseProgressing || st.Phase == appsv1alpha1.PhasePending
}

// setIdle sets the Idle condition and reports whether the instance is idle.
func setIdle(st *appsv1alpha1.MicroServiceDeployStatus, m *appsv1alpha1.MicroServiceDeploy) bool {
	c := metav1.Condition{Type: appsv1alpha1.ConditionIdle, ObservedGeneration: m.Generation}
	switch {
	case m.Spec.Idle && st.Replicas == 0:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonIdle, "no pods run; the Service and route stay"
	case m.Spec.Idle:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonScalingDown, fmt.Sprintf("going idle: %d pods left", st.Replicas)
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonActive, "the instance is not idle"
	}
	meta.SetStatusCondition(&st.Conditions, c)
	return c.Status == metav1.ConditionTrue
}

// createdAt renders epoch milliseconds as RFC 3339, or "" when absent.
func createdAt(ms string) string {
	n, err := strconv.ParseInt(ms, 10, 64)
	if ms == "" || err != nil {
		return ""
	}
	return time.UnixMilli(n).UTC().Format(time.RFC3339)
}
