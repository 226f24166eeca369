package microservice

import (
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
)

// Condition reasons.
const (
	ReasonAllReplicasReady = "AllReplicasReady"
	ReasonReplicasNotReady = "ReplicasNotReady"
	ReasonCreating         = "Creating"
	ReasonRollingOut       = "RollingOut"
	ReasonRolloutComplete  = "RolloutComplete"
	ReasonRolloutStuck     = "ProgressDeadlineExceeded"
	ReasonIdle             = "Idle"
	ReasonActive           = "Active"
	ReasonScalingDown      = "ScalingDown"
)

// computeStatus derives the status from the observed Deployment (nil when
// missing) and a blocking problem, starting from the stored status so that
// condition transition times are kept when nothing changed.
func computeStatus(m *appsv1alpha1.MicroServiceDeploy, dep *appsv1.Deployment, blocked *apply.Blocked, cfg Config) appsv1alpha1.MicroServiceDeployStatus {
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
	done := dep != nil && rolloutDone(dep, desired)
	if done {
		st.Version = m.Spec.Version
	}
	// Awake again and back at full scale: forget the scale to resume.
	if !m.Spec.Idle && done && desired > 0 {
		st.ResumeReplicas = nil
	}

	idle := metav1.Condition{Type: appsv1alpha1.ConditionIdle, ObservedGeneration: m.Generation}
	switch {
	case m.Spec.Idle && dep != nil && st.Replicas == 0:
		idle.Status, idle.Reason, idle.Message = metav1.ConditionTrue, ReasonIdle, "no pods run; the Service and route stay"
	case m.Spec.Idle:
		idle.Status, idle.Reason, idle.Message = metav1.ConditionFalse, ReasonScalingDown, fmt.Sprintf("going idle: %d pods left", st.Replicas)
	default:
		idle.Status, idle.Reason, idle.Message = metav1.ConditionFalse, ReasonActive, "the instance is not idle"
	}
	meta.SetStatusCondition(&st.Conditions, idle)

	avail := metav1.Condition{Type: appsv1alpha1.ConditionAvailable, ObservedGeneration: m.Generation}
	switch {
	case dep == nil:
		avail.Status, avail.Reason, avail.Message = metav1.ConditionFalse, ReasonCreating, "the Deployment does not exist yet"
	case desired > 0 && st.ReadyReplicas >= desired:
		avail.Status, avail.Reason = metav1.ConditionTrue, ReasonAllReplicasReady
		avail.Message = fmt.Sprintf("%d of %d pods are ready", st.ReadyReplicas, desired)
	case desired == 0:
		avail.Status, avail.Reason, avail.Message = metav1.ConditionFalse, ReasonIdle, "no pods are requested"
	default:
		avail.Status, avail.Reason = metav1.ConditionFalse, ReasonReplicasNotReady
		avail.Message = fmt.Sprintf("%d of %d pods are ready", st.ReadyReplicas, desired)
	}
	meta.SetStatusCondition(&st.Conditions, avail)

	prog := metav1.Condition{Type: appsv1alpha1.ConditionProgressing, ObservedGeneration: m.Generation}
	stuck := ""
	if dep != nil {
		stuck = deploymentStuck(dep)
	}
	switch {
	case blocked != nil:
		prog.Status, prog.Reason, prog.Message = metav1.ConditionFalse, blocked.Reason, blocked.Message
	case dep == nil:
		prog.Status, prog.Reason, prog.Message = metav1.ConditionTrue, ReasonCreating, "creating the instance's objects"
	case stuck != "":
		prog.Status, prog.Reason, prog.Message = metav1.ConditionFalse, ReasonRolloutStuck, stuck
	case done:
		prog.Status, prog.Reason = metav1.ConditionFalse, ReasonRolloutComplete
		prog.Message = fmt.Sprintf("%d pods of version %s are up to date", desired, m.Spec.Version)
	default:
		prog.Status, prog.Reason = metav1.ConditionTrue, ReasonRollingOut
		prog.Message = fmt.Sprintf("%d of %d pods updated, %d ready, %d in total",
			dep.Status.UpdatedReplicas, desired, dep.Status.ReadyReplicas, dep.Status.Replicas)
	}
	meta.SetStatusCondition(&st.Conditions, prog)

	switch {
	case blocked != nil || stuck != "":
		st.Phase = appsv1alpha1.PhaseFailed
	case idle.Status == metav1.ConditionTrue:
		st.Phase = appsv1alpha1.PhaseIdle
	case dep == nil:
		st.Phase = appsv1alpha1.PhasePending
	case done && avail.Status == metav1.ConditionTrue:
		st.Phase = appsv1alpha1.PhaseRunning
	default:
		st.Phase = appsv1alpha1.PhaseProgressing
	}
	return st
}

// createdAt renders epoch milliseconds as RFC 3339, or "" when absent.
func createdAt(ms string) string {
	n, err := strconv.ParseInt(ms, 10, 64)
	if ms == "" || err != nil {
		return ""
	}
	return time.UnixMilli(n).UTC().Format(time.RFC3339)
}

func rolloutDone(dep *appsv1.Deployment, desired int32) bool {
	s := dep.Status
	return s.ObservedGeneration >= dep.Generation &&
		s.UpdatedReplicas == desired && s.Replicas == desired && s.AvailableReplicas == desired
}

func deploymentStuck(dep *appsv1.Deployment) string {
	for _, c := range dep.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == ReasonRolloutStuck {
			return c.Message
		}
	}
	return ""
}
