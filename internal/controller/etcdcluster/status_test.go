package etcdcluster

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	etcdv1alpha1 "opsmith.io/opsmith/api/etcd/v1alpha1"
	"opsmith.io/opsmith/internal/etcd"
)

func member(name string, id uint64, healthy, leader bool, version string) etcd.Member {
	return etcd.Member{ID: id, Name: name, Started: true, Healthy: healthy, Leader: leader, Version: version}
}

func TestComputeStatus(t *testing.T) {
	ec := &etcdv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "e", Generation: 4},
		Spec: etcdv1alpha1.EtcdClusterSpec{Size: 3, Version: "3.6.16"}}
	healthy := []etcd.Member{member("e-0", 1, true, true, "3.6.16"), member("e-1", 2, true, false, "3.6.16"), member("e-2", 3, true, false, "3.6.16")}
	tests := []struct {
		name            string
		w               *world
		a               etcd.Action
		phase           string
		progressing     string // reason
		degraded        metav1.ConditionStatus
		degradedMessage string
		available       metav1.ConditionStatus
	}{
		{name: "converged", w: &world{obs: etcd.Observed{Reachable: true, Members: healthy}, target: "3.6.16"},
			a: etcd.Action{Type: etcd.ActionNone}, phase: etcdv1alpha1.PhaseRunning, progressing: ReasonConverged,
			degraded: metav1.ConditionFalse, available: metav1.ConditionTrue},
		{name: "blocked removal names the invariant", w: &world{obs: etcd.Observed{Reachable: true, Members: []etcd.Member{
			member("e-0", 1, true, true, "3.6.16"), member("e-1", 2, false, false, "3.6.16"), member("e-2", 3, false, false, "3.6.16")}}, target: "3.6.16"},
			a: etcd.Action{Type: etcd.ActionWait, Operation: etcd.OpReplace, Reason: "member e-1 lost its data and must be replaced",
				Blocked: "removing member e-1 would leave 1 of 2 voters healthy; quorum needs 2"},
			phase: etcdv1alpha1.PhaseDegraded, progressing: ReasonBlocked, degraded: metav1.ConditionTrue,
			degradedMessage: "removing member e-1 would leave 1 of 2 voters healthy; quorum needs 2", available: metav1.ConditionFalse},
		{name: "upgrading", w: &world{obs: etcd.Observed{Reachable: true, Members: []etcd.Member{
			member("e-0", 1, true, true, "3.5.35"), member("e-1", 2, true, false, "3.6.16"), member("e-2", 3, true, false, "3.5.35")}}, target: "3.6.16"},
			a:     etcd.Action{Type: etcd.ActionDeletePod, Operation: etcd.OpRestart, Name: "e-2", Reason: "restarting member e-2 with the new pod spec"},
			phase: etcdv1alpha1.PhaseUpgrading, progressing: etcd.OpRestart, degraded: metav1.ConditionFalse, available: metav1.ConditionTrue},
		{name: "upgrade path blocked", w: &world{obs: etcd.Observed{Reachable: true, Members: healthy}, target: "3.6.16",
			pathErr: errors.New("a member runs 3.6.16: 3.8.0 skips a minor version; etcd upgrades one minor version at a time")},
			a: etcd.Action{Type: etcd.ActionNone}, phase: etcdv1alpha1.PhaseRunning, progressing: ReasonUpgradePath,
			degraded: metav1.ConditionTrue, available: metav1.ConditionTrue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := computeStatus(ec, tt.w, tt.a, nil)
			if st.Phase != tt.phase || st.ObservedGeneration != 4 {
				t.Errorf("phase %s generation %d, want %s 4", st.Phase, st.ObservedGeneration, tt.phase)
			}
			if c := meta.FindStatusCondition(st.Conditions, etcdv1alpha1.ConditionProgressing); c.Reason != tt.progressing {
				t.Errorf("Progressing %+v, want reason %s", c, tt.progressing)
			}
			c := meta.FindStatusCondition(st.Conditions, etcdv1alpha1.ConditionDegraded)
			if c.Status != tt.degraded || (tt.degradedMessage != "" && c.Message != tt.degradedMessage) {
				t.Errorf("Degraded %+v, want %s %q", c, tt.degraded, tt.degradedMessage)
			}
			if c := meta.FindStatusCondition(st.Conditions, etcdv1alpha1.ConditionAvailable); c.Status != tt.available {
				t.Errorf("Available %+v, want %s", c, tt.available)
			}
			if len(st.Members) != 3 || st.Members[0].Name != "e-0" || !st.Members[0].Leader {
				t.Errorf("members %+v", st.Members)
			}
		})
	}
}

// TestStatusStable: computing the status again from the same observation
// gives an equal status (so nothing is written when nothing changed).
func TestStatusStable(t *testing.T) {
	ec := &etcdv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "e", Generation: 1},
		Spec: etcdv1alpha1.EtcdClusterSpec{Size: 1, Version: "3.6.16"}}
	w := &world{obs: etcd.Observed{Reachable: true, Members: []etcd.Member{member("e-0", 1, true, true, "3.6.16")}}, target: "3.6.16"}
	ec.Status = computeStatus(ec, w, etcd.Action{Type: etcd.ActionNone}, nil)
	again := computeStatus(ec, w, etcd.Action{Type: etcd.ActionNone}, nil)
	if !equality.Semantic.DeepEqual(ec.Status, again) { // as apply.WriteStatus compares
		t.Errorf("status changed on recompute:\n%+v\n%+v", ec.Status, again)
	}
}
