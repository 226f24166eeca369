package etcdcluster

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	etcdv1alpha1 "opsmith.io/opsmith/api/etcd/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
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

// A wait on members that do not start says what their pods show.
func TestProgressingNamesWhyMembersDoNotStart(t *testing.T) {
	ec := &etcdv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "e", Generation: 1},
		Spec: etcdv1alpha1.EtcdClusterSpec{Size: 3, Version: "3.6.16"}}
	unscheduled := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "e-0"}, Status: corev1.PodStatus{Phase: corev1.PodPending,
		Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Message: "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims."}}}}
	pulling := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "e-1"}, Status: corev1.PodStatus{Phase: corev1.PodPending,
		ContainerStatuses: []corev1.ContainerStatus{{Name: "etcd", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason: "ImagePullBackOff", Message: `Back-off pulling image "registry.local/etcd:v3.6.16"`}}}}}}
	silent := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "e-2"}, Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.0.7",
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
	creating := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "e-3"}, Status: corev1.PodStatus{Phase: corev1.PodPending,
		ContainerStatuses: []corev1.ContainerStatus{{Name: "etcd", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}}}
	w := &world{pods: map[string]*corev1.Pod{"e-3": creating, "e-2": silent, "e-1": pulling, "e-0": unscheduled}, target: "3.6.16"}
	a := etcd.Action{Type: etcd.ActionWait, Operation: etcd.OpRepair, Reason: "no quorum answers yet: waiting for the members to start (4 pods)"}
	st := computeStatus(ec, w, a, nil)
	c := meta.FindStatusCondition(st.Conditions, etcdv1alpha1.ConditionProgressing)
	want := "no quorum answers yet: waiting for the members to start (4 pods); " +
		"pod e-0 is not scheduled: 0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.; " +
		`pod e-1 container etcd is waiting: ImagePullBackOff: Back-off pulling image "registry.local/etcd:v3.6.16"; ` +
		"pod e-2 is ready but etcd does not answer the operator at http://10.244.0.7:2379"
	if c == nil || c.Message != want {
		t.Errorf("Progressing message\n%q, want\n%q", c.Message, want)
	}
	// Once a member answers, a ready pod is not a problem; a pod that is
	// being created is not one either.
	w.obs.Reachable = true
	delete(w.pods, "e-0")
	delete(w.pods, "e-1")
	if got := podProblems(w); got != "" {
		t.Errorf("problems %q, want none", got)
	}
	// Many pods: the first few are named, the rest counted.
	w.pods = map[string]*corev1.Pod{}
	for _, n := range []string{"e-0", "e-1", "e-2", "e-3", "e-4"} {
		p := unscheduled.DeepCopy()
		p.Name = n
		w.pods[n] = p
	}
	if got := podProblems(w); !strings.HasPrefix(got, "pod e-0 ") || !strings.HasSuffix(got, "; and 2 more") || strings.Contains(got, "e-3") {
		t.Errorf("problems of 5 pods: %q", got)
	}
	// A step that does something (not a wait) keeps its own message.
	st = computeStatus(ec, w, etcd.Action{Type: etcd.ActionCreatePod, Operation: etcd.OpRepair, Name: "e-0", Reason: "starting member e-0"}, nil)
	if c := meta.FindStatusCondition(st.Conditions, etcdv1alpha1.ConditionProgressing); c.Message != "starting member e-0" {
		t.Errorf("Progressing message of a step: %q", c.Message)
	}
}

// A member volume or pod the API server refused blocks the step: the
// status says so with the API server's message, instead of the step's
// own ("bootstrapping the seed member").
func TestStatusReportsRefusedChild(t *testing.T) {
	ec := &etcdv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "e", Generation: 1},
		Spec: etcdv1alpha1.EtcdClusterSpec{Size: 1, Version: "3.6.16"}}
	blocked := &apply.BlockedError{Reason: apply.ReasonApplyFailed,
		Message: `PersistentVolumeClaim e-0 rejected by the API server: persistentvolumeclaims "e-0" is forbidden: exceeded quota: q`}
	a := etcd.Action{Type: etcd.ActionCreateVolume, Operation: etcd.OpBootstrap, Name: "e-0", Reason: "bootstrapping the seed member"}
	st := computeStatus(ec, &world{target: "3.6.16"}, a, blocked)
	if st.Phase != etcdv1alpha1.PhaseCreating {
		t.Errorf("phase %s, want %s", st.Phase, etcdv1alpha1.PhaseCreating)
	}
	for _, typ := range []string{etcdv1alpha1.ConditionProgressing, etcdv1alpha1.ConditionDegraded} {
		c := meta.FindStatusCondition(st.Conditions, typ)
		want := metav1.ConditionTrue
		if typ == etcdv1alpha1.ConditionProgressing {
			want = metav1.ConditionFalse
		}
		if c == nil || c.Status != want || c.Reason != apply.ReasonApplyFailed || c.Message != blocked.Message {
			t.Errorf("%s %+v, want %s ApplyFailed %q", typ, c, want, blocked.Message)
		}
	}
}
