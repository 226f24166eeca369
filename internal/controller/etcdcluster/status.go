package etcdcluster

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	etcdv1alpha1 "opsmith.io/opsmith/api/etcd/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
	"opsmith.io/opsmith/internal/etcd"
	"opsmith.io/opsmith/internal/podstatus"
)

// Condition reasons.
const (
	ReasonQuorumHealthy     = "QuorumHealthy"
	ReasonNoQuorum          = "NoQuorum"
	ReasonConverged         = "Converged"
	ReasonPaused            = "Paused"
	ReasonBlocked           = "InvariantBlocked"
	ReasonUpgradePath       = "UpgradePathBlocked"
	ReasonMemberUnhealthy   = "MemberUnhealthy"
	ReasonAllMembersHealthy = "AllMembersHealthy"
	ReasonUpgrading         = "Upgrading"
)

// computeStatus derives the status from what this reconcile observed and
// the step it planned. It starts from the current status so that condition
// transition times are kept when nothing changed.
func computeStatus(ec *etcdv1alpha1.EtcdCluster, w *world, a etcd.Action, blocked *apply.BlockedError) etcdv1alpha1.EtcdClusterStatus {
	st := *ec.Status.DeepCopy()
	st.ObservedGeneration = ec.Generation
	st.ClientEndpoint = ClientEndpoint(ec)
	st.TargetVersion = w.target
	st.Members, st.ReadyMembers = memberStatuses(ec, w)
	st.CurrentVersion = etcd.OldestVersion(memberVersions(st.Members))
	st.Phase = phase(ec, w, a)
	setAvailable(&st, ec, w)
	setProgressing(&st, ec, w, a, blocked)
	setDegraded(&st, ec, w, a, blocked)
	return st
}

func memberStatuses(ec *etcdv1alpha1.EtcdCluster, w *world) ([]etcdv1alpha1.EtcdMemberStatus, int32) {
	var out []etcdv1alpha1.EtcdMemberStatus
	var ready int32
	if !w.obs.Reachable {
		// Without a member list, report the members that have data.
		for _, s := range w.obs.Slots {
			if s.Volume {
				out = append(out, etcdv1alpha1.EtcdMemberStatus{Name: s.Name, ID: FormatID(s.VolumeMemberID)})
			}
		}
		sortMembers(out)
		return out, 0
	}
	for _, m := range etcd.ResolveNames(w.obs, Naming(ec)) {
		out = append(out, etcdv1alpha1.EtcdMemberStatus{
			Name: m.Name, ID: FormatID(m.ID), Version: m.Version,
			Healthy: m.Healthy, Leader: m.Leader, Learner: m.Learner,
		})
		if m.Healthy {
			ready++
		}
	}
	return out, ready
}

func sortMembers(ms []etcdv1alpha1.EtcdMemberStatus) {
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].Name < ms[j-1].Name; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

func memberVersions(ms []etcdv1alpha1.EtcdMemberStatus) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Version)
	}
	return out
}

func phase(ec *etcdv1alpha1.EtcdCluster, w *world, a etcd.Action) string {
	switch {
	case ec.Spec.Paused:
		return etcdv1alpha1.PhasePaused
	case a.Blocked != "":
		return etcdv1alpha1.PhaseDegraded
	}
	switch a.Operation {
	case etcd.OpBootstrap:
		return etcdv1alpha1.PhaseCreating
	case etcd.OpScaleOut, etcd.OpScaleIn:
		if len(w.obs.Members) <= 1 && !healthyQuorum(w) {
			return etcdv1alpha1.PhaseCreating
		}
		return etcdv1alpha1.PhaseScaling
	case etcd.OpReplace, etcd.OpRepair, etcd.OpCleanup:
		if !w.obs.Reachable && len(w.obs.Members) == 0 && len(w.pods) <= 1 && ec.Status.ReadyMembers == 0 {
			return etcdv1alpha1.PhaseCreating
		}
		return etcdv1alpha1.PhaseRepairing
	case etcd.OpRestart:
		if upgrading(ec, w) {
			return etcdv1alpha1.PhaseUpgrading
		}
		return etcdv1alpha1.PhaseRepairing
	}
	if !healthyQuorum(w) {
		return etcdv1alpha1.PhaseDegraded
	}
	return etcdv1alpha1.PhaseRunning
}

func upgrading(ec *etcdv1alpha1.EtcdCluster, w *world) bool {
	for _, m := range w.obs.Members {
		if m.Version != "" && m.Version != ec.Spec.Version {
			return true
		}
	}
	return false
}

// healthyQuorum reports whether a quorum of voters answered this
// reconcile: the member list was read (Reachable) and a quorum of its
// voters is healthy.
func healthyQuorum(w *world) bool {
	return w.obs.Reachable && etcd.HealthyQuorum(w.obs.Members)
}

// setAvailable: True when a quorum of voters is healthy.
func setAvailable(st *etcdv1alpha1.EtcdClusterStatus, ec *etcdv1alpha1.EtcdCluster, w *world) {
	c := metav1.Condition{Type: etcdv1alpha1.ConditionAvailable, ObservedGeneration: ec.Generation}
	if healthyQuorum(w) {
		c.Status, c.Reason = metav1.ConditionTrue, ReasonQuorumHealthy
		c.Message = fmt.Sprintf("%d of %d members healthy", st.ReadyMembers, len(st.Members))
	} else {
		c.Status, c.Reason = metav1.ConditionFalse, ReasonNoQuorum
		c.Message = "no quorum of healthy voting members answers"
	}
	meta.SetStatusCondition(&st.Conditions, c)
}

// setProgressing: True while a step is under way, False when converged,
// paused or blocked (the message then names the invariant).
func setProgressing(st *etcdv1alpha1.EtcdClusterStatus, ec *etcdv1alpha1.EtcdCluster, w *world, a etcd.Action, blocked *apply.BlockedError) {
	c := metav1.Condition{Type: etcdv1alpha1.ConditionProgressing, ObservedGeneration: ec.Generation}
	switch {
	case ec.Spec.Paused:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonPaused, "spec.paused is true: the operator changes nothing"
	case blocked != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, blocked.Reason, blocked.Message
	case a.Blocked != "":
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonBlocked, a.Reason+": "+a.Blocked
	case w.pathErr != nil && a.Type == etcd.ActionNone:
		c.Status, c.Reason = metav1.ConditionFalse, ReasonUpgradePath
		c.Message = fmt.Sprintf("cannot move to %s: %v", ec.Spec.Version, w.pathErr)
	case a.Type == etcd.ActionNone:
		c.Status, c.Reason = metav1.ConditionFalse, ReasonConverged
		c.Message = fmt.Sprintf("%d members running %s", len(st.Members), w.target)
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, a.Operation, a.Reason
		if a.Type == etcd.ActionWait {
			// Say what the wait is on, when a pod shows it.
			if why := podProblems(w); why != "" {
				c.Message += "; " + why
			}
		}
	}
	meta.SetStatusCondition(&st.Conditions, c)
}

// podProblems says why member pods that are not ready are not
// (podstatus.Problems), a running one that etcd does not answer included.
func podProblems(w *world) string {
	return podstatus.Problems(w.pods, func(p *corev1.Pod) string {
		if !podstatus.Ready(p) {
			return "is running but its member is not ready (etcd does not answer its health check)"
		}
		if !w.obs.Reachable && p.Status.PodIP != "" {
			return "is ready but etcd does not answer the operator at " + podClientURL(p.Status.PodIP)
		}
		return ""
	})
}

// setDegraded: True when an invariant blocks a step, a member is unhealthy
// or there is no quorum.
func setDegraded(st *etcdv1alpha1.EtcdClusterStatus, ec *etcdv1alpha1.EtcdCluster, w *world, a etcd.Action, blocked *apply.BlockedError) {
	c := metav1.Condition{Type: etcdv1alpha1.ConditionDegraded, ObservedGeneration: ec.Generation}
	var unhealthy []string
	for _, m := range st.Members {
		if !m.Healthy {
			unhealthy = append(unhealthy, m.Name)
		}
	}
	switch {
	case a.Blocked != "":
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonBlocked, a.Blocked
	case blocked != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, blocked.Reason, blocked.Message
	case w.pathErr != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonUpgradePath, w.pathErr.Error()
	case !healthyQuorum(w):
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonNoQuorum, "no quorum of healthy voting members answers"
	case len(unhealthy) > 0:
		c.Status, c.Reason = metav1.ConditionTrue, ReasonMemberUnhealthy
		c.Message = "not healthy: " + strings.Join(unhealthy, ", ")
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonAllMembersHealthy, "every member is healthy"
	}
	meta.SetStatusCondition(&st.Conditions, c)
}
