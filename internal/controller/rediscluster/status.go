package rediscluster

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	redisv1alpha1 "opsmith.io/opsmith/api/redis/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
	"opsmith.io/opsmith/internal/podstatus"
	"opsmith.io/opsmith/internal/redis"
)

// Condition reasons.
const (
	ReasonSlotsServed      = "AllSlotsServed"
	ReasonSlotsNotServed   = "SlotsNotServed"
	ReasonNotCreated       = "NotCreatedYet"
	ReasonConverged        = "Converged"
	ReasonPaused           = "Paused"
	ReasonBlocked          = "InvariantBlocked"
	ReasonNodeUnhealthy    = "NodeUnhealthy"
	ReasonAllNodesHealthy  = "AllNodesHealthy"
	ReasonInvalidConfig    = "InvalidConfig"
	clusterStateOK         = "ok"
	rolesMaster            = "master"
	maxUnhealthyNamedNodes = 5
	// lagUnit is the granularity of a replica's lag in status.
	lagUnit = 64 << 10
)

// computeStatus derives the status from what this reconcile observed and
// the step it took. It starts from the current status so that condition
// transition times are kept when nothing changed.
func computeStatus(rc *redisv1alpha1.RedisCluster, w *world, a redis.Action, blocked *apply.BlockedError) redisv1alpha1.RedisClusterStatus {
	st := *rc.Status.DeepCopy()
	st.ObservedGeneration = rc.Generation
	st.ClientEndpoint = ClientEndpoint(rc)
	st.AuthSecretName = AuthSecretName(rc)
	sum := redis.Summarize(w.desired, w.obs)
	st.Shards, st.ReadyNodes = shardStatuses(sum)
	st.SlotsAssigned = clampInt32(sum.SlotsAssigned)
	st.ClusterState = sum.ClusterState
	st.CurrentVersion = oldestVersion(w)
	if w.cfgErr != nil && blocked == nil {
		blocked = apply.Blocked(ReasonInvalidConfig, "%v", w.cfgErr)
	}
	if creating(rc, sum) && a.Blocked != "" {
		// Nodes that do not run or answer yet are what creating a
		// cluster waits for, not a broken invariant.
		a.Type, a.Operation, a.Blocked = redis.ActionWait, opCreate, ""
		a.Reason = strings.TrimPrefix(a.Reason, "blocked: ")
	}
	st.Phase = phase(rc, w, a, blocked, sum)
	setAvailable(&st, rc, sum)
	setProgressing(&st, rc, w, a, blocked)
	setDegraded(&st, rc, a, blocked)
	return st
}

func shardStatuses(sum redis.Summary) ([]redisv1alpha1.RedisShardStatus, int32) {
	var out []redisv1alpha1.RedisShardStatus
	var ready int32
	for _, sh := range sum.Shards {
		s := redisv1alpha1.RedisShardStatus{Index: clampInt32(sh.Index)}
		for _, m := range sh.Members {
			n := redisv1alpha1.RedisNodeStatus{
				Name: m.Member, NodeID: m.NodeID, Role: m.Role, Healthy: m.Healthy,
				Slots: clampInt32(m.Slots),
			}
			if m.Role == "slave" || m.Role == "replica" {
				n.Role = "replica"
				if m.LagKnown {
					lag := m.Lag - m.Lag%lagUnit
					n.LagBytes = &lag
				}
			}
			if m.Role == rolesMaster && m.Slots > 0 && s.Master == "" {
				s.Master = m.Member
			}
			if m.Healthy {
				ready++
			}
			s.Nodes = append(s.Nodes, n)
		}
		out = append(out, s)
	}
	return out, ready
}

func clampInt32(n int) int32 {
	const maxInt32 = 1<<31 - 1
	if n > maxInt32 {
		return maxInt32
	}
	if n < 0 {
		return 0
	}
	return int32(n) // #nosec G115 -- clamped above
}

// oldestVersion is the oldest Redis version a node reports.
func oldestVersion(w *world) string {
	oldest := ""
	for _, v := range w.obs.Views {
		if !v.Reachable() || v.Version == "" {
			continue
		}
		if oldest == "" || versionLess(v.Version, oldest) {
			oldest = v.Version
		}
	}
	return oldest
}

func versionLess(a, b string) bool {
	var x, y [3]int
	_, _ = fmt.Sscanf(a, "%d.%d.%d", &x[0], &x[1], &x[2])
	_, _ = fmt.Sscanf(b, "%d.%d.%d", &y[0], &y[1], &y[2])
	for i := range x {
		if x[i] != y[i] {
			return x[i] < y[i]
		}
	}
	return false
}

func phase(rc *redisv1alpha1.RedisCluster, w *world, a redis.Action, blocked *apply.BlockedError, sum redis.Summary) string {
	switch {
	case rc.Spec.Paused:
		return redisv1alpha1.PhasePaused
	case w.cfgErr != nil || (blocked != nil && blocked.Reason == ReasonConfigRejected):
		return redisv1alpha1.PhaseConfigError
	case blocked != nil || a.Blocked != "":
		return redisv1alpha1.PhaseDegraded
	}
	if p := operationPhase(a, creating(rc, sum)); p != "" {
		return p
	}
	if sum.ClusterState != clusterStateOK || sum.SlotsAssigned < redis.NumSlots {
		return redisv1alpha1.PhaseDegraded
	}
	return redisv1alpha1.PhaseRunning
}

// operationPhase is the phase the step under way stands for, "" when it
// says nothing of the kind (the cluster is converged, or waits without
// an operation).
func operationPhase(a redis.Action, isCreating bool) string {
	switch a.Operation {
	case redis.OpBootstrap, opCreate:
		if isCreating {
			return redisv1alpha1.PhaseCreating
		}
		return redisv1alpha1.PhaseRepairing
	case opConfigure, opRestart, redis.OpHandover:
		return redisv1alpha1.PhaseUpdating
	case opRemoveNodes, redis.OpScale:
		return redisv1alpha1.PhaseScaling
	case "":
		if a.Type == redis.ActionWait && isCreating {
			return redisv1alpha1.PhaseCreating
		}
		return ""
	}
	if isCreating {
		return redisv1alpha1.PhaseCreating
	}
	if a.Type != redis.ActionNone {
		return redisv1alpha1.PhaseRepairing
	}
	return ""
}

// creating: the cluster is not serving every slot and never did: its
// Available condition has been False only for that reason (a status
// written while every pod restarts reports 0 slots, so the slot count of
// the status alone cannot tell).
func creating(rc *redisv1alpha1.RedisCluster, sum redis.Summary) bool {
	if sum.SlotsAssigned == redis.NumSlots && sum.ClusterState == clusterStateOK {
		return false
	}
	c := meta.FindStatusCondition(rc.Status.Conditions, redisv1alpha1.ConditionAvailable)
	return c == nil || c.Reason == ReasonNotCreated
}

// setAvailable: True when every slot is served and every node that
// answers says cluster_state ok.
func setAvailable(st *redisv1alpha1.RedisClusterStatus, rc *redisv1alpha1.RedisCluster, sum redis.Summary) {
	c := metav1.Condition{Type: redisv1alpha1.ConditionAvailable, ObservedGeneration: rc.Generation}
	if sum.ClusterState == clusterStateOK && sum.SlotsAssigned == redis.NumSlots {
		c.Status, c.Reason = metav1.ConditionTrue, ReasonSlotsServed
		c.Message = fmt.Sprintf("all %d slots served; %d nodes healthy", redis.NumSlots, st.ReadyNodes)
	} else {
		c.Status, c.Reason = metav1.ConditionFalse, ReasonSlotsNotServed
		if creating(rc, sum) {
			c.Reason = ReasonNotCreated
		}
		c.Message = fmt.Sprintf("%d of %d slots assigned; cluster_state %s", sum.SlotsAssigned, redis.NumSlots, orUnknown(sum.ClusterState))
	}
	meta.SetStatusCondition(&st.Conditions, c)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown (no node answers)"
	}
	return s
}

// setProgressing: True while a step is under way, False when converged,
// paused or blocked (the message then names the invariant).
func setProgressing(st *redisv1alpha1.RedisClusterStatus, rc *redisv1alpha1.RedisCluster, w *world, a redis.Action, blocked *apply.BlockedError) {
	c := metav1.Condition{Type: redisv1alpha1.ConditionProgressing, ObservedGeneration: rc.Generation}
	switch {
	case rc.Spec.Paused:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonPaused, "spec.paused is true: the operator changes nothing"
	case blocked != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, blocked.Reason, blocked.Message
	case a.Blocked != "":
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonBlocked, a.Reason
	case a.Type == redis.ActionNone:
		c.Status, c.Reason = metav1.ConditionFalse, ReasonConverged
		c.Message = fmt.Sprintf("%d shards of a master and %d replicas; all %d slots served", rc.Spec.Size, rc.Spec.Replicas(), redis.NumSlots)
	default:
		op := a.Operation
		if op == "" {
			op = string(a.Type)
		}
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, op, a.Reason
		if why := podProblems(w); why != "" {
			c.Message += "; " + why
		}
	}
	meta.SetStatusCondition(&st.Conditions, c)
}

// podProblems says why node pods that are not ready are not.
func podProblems(w *world) string {
	return podstatus.Problems(w.pods, func(p *corev1.Pod) string {
		if !podstatus.Ready(p) {
			return "is running but Redis does not accept connections yet (loading its data?)"
		}
		if v, ok := w.obs.Views[p.Name]; ok && !v.Reachable() {
			return "is ready but Redis does not answer the operator: " + v.Err.Error()
		}
		return ""
	})
}

// setDegraded: True when an invariant blocks a step or a node is missing
// or unhealthy.
func setDegraded(st *redisv1alpha1.RedisClusterStatus, rc *redisv1alpha1.RedisCluster, a redis.Action, blocked *apply.BlockedError) {
	c := metav1.Condition{Type: redisv1alpha1.ConditionDegraded, ObservedGeneration: rc.Generation}
	var unhealthy []string
	want := int(rc.Spec.Size) * (1 + rc.Spec.Replicas())
	for _, sh := range st.Shards {
		for _, n := range sh.Nodes {
			if !n.Healthy {
				unhealthy = append(unhealthy, n.Name)
			}
		}
	}
	switch {
	case a.Blocked != "":
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonBlocked, a.Blocked
	case blocked != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, blocked.Reason, blocked.Message
	case len(unhealthy) > 0:
		c.Status, c.Reason = metav1.ConditionTrue, ReasonNodeUnhealthy
		if len(unhealthy) > maxUnhealthyNamedNodes {
			unhealthy = append(unhealthy[:maxUnhealthyNamedNodes], fmt.Sprintf("and %d more", len(unhealthy)-maxUnhealthyNamedNodes))
		}
		c.Message = fmt.Sprintf("%d of %d nodes healthy; not healthy: %s", st.ReadyNodes, want, strings.Join(unhealthy, ", "))
	default:
		c.Status, c.Reason = metav1.ConditionFalse, ReasonAllNodesHealthy
		c.Message = fmt.Sprintf("all %d nodes healthy", want)
	}
	meta.SetStatusCondition(&st.Conditions, c)
}
