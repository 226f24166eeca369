// Package rollout reads the progress of a Deployment's rollout from the
// status the Deployment controller writes, the same way for every opsmith
// controller that owns Deployments.
package rollout

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// ReasonStuck is the Deployment controller's reason when a rollout made no
// progress within its deadline; opsmith reports it with the same name.
const ReasonStuck = "ProgressDeadlineExceeded"

// Done reports whether the Deployment controller has seen the latest spec
// and desired pods run it and are available, with no old pods left.
func Done(dep *appsv1.Deployment, desired int32) bool {
	s := dep.Status
	return s.ObservedGeneration >= dep.Generation &&
		s.UpdatedReplicas == desired && s.Replicas == desired && s.AvailableReplicas == desired
}

// Stuck returns the Deployment controller's message when it gave up
// waiting for progress, or "".
func Stuck(dep *appsv1.Deployment) string {
	for _, c := range dep.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == ReasonStuck {
			return c.Message
		}
	}
	return ""
}

// Condition reasons every controller that runs a Deployment reports the
// same way.
const (
	ReasonAllReplicasReady = "AllReplicasReady"
	ReasonReplicasNotReady = "ReplicasNotReady"
	ReasonCreating         = "Creating"
	ReasonRollingOut       = "RollingOut"
	ReasonRolloutComplete  = "RolloutComplete"
)
