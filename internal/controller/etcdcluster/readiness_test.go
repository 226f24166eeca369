package etcdcluster

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"opsmith.io/opsmith/internal/etcd"
)

func TestWaitForReadyPods(t *testing.T) {
	pod := func(name string, ready, deleting bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}}
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
		if deleting {
			now := metav1.Now()
			p.DeletionTimestamp = &now
		}
		return p
	}
	pods := func(ps ...*corev1.Pod) *world {
		w := &world{pods: map[string]*corev1.Pod{}}
		for _, p := range ps {
			w.pods[p.Name] = p
		}
		return w
	}
	restart := etcd.Action{Type: etcd.ActionDeletePod, Operation: etcd.OpRestart, Name: "e-1"}
	for _, tc := range []struct {
		name    string
		w       *world
		a       etcd.Action
		waitFor string // "" when a is taken as planned
	}{
		{"every other pod Ready", pods(pod("e-0", true, false), pod("e-1", true, false), pod("e-2", true, false)), restart, ""},
		{"the restarted member's own pod not Ready", pods(pod("e-0", true, false), pod("e-1", false, false), pod("e-2", true, false)), restart, ""},
		{"the previous member's new pod not Ready yet", pods(pod("e-0", false, false), pod("e-1", true, false), pod("e-2", true, false)), restart, "e-0"},
		{"another member's pod being deleted", pods(pod("e-0", true, false), pod("e-1", true, false), pod("e-2", true, true)), restart, "e-2"},
		{"not a rolling restart", pods(pod("e-0", false, false), pod("e-1", true, false)),
			etcd.Action{Type: etcd.ActionDeletePod, Operation: etcd.OpCleanup, Name: "e-1"}, ""},
		{"leadership moves regardless", pods(pod("e-0", false, false), pod("e-1", true, false)),
			etcd.Action{Type: etcd.ActionMoveLeader, Operation: etcd.OpRestart, Name: "e-1"}, ""},
	} {
		got := waitForReadyPods(tc.w, tc.a)
		switch {
		case tc.waitFor == "" && got != tc.a:
			t.Errorf("%s: %+v became %+v", tc.name, tc.a, got)
		case tc.waitFor != "" && (got.Type != etcd.ActionWait || got.Operation != etcd.OpRestart || got.Name != tc.waitFor):
			t.Errorf("%s: got %+v, want a wait for the pod of %s", tc.name, got, tc.waitFor)
		}
	}
}
