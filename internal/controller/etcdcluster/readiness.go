package etcdcluster

import (
	"slices"

	"opsmith.io/opsmith/internal/etcd"
	"opsmith.io/opsmith/internal/podstatus"
)

// waitForReadyPods holds back the restart of a member in a rolling restart
// (an upgrade, a spec.pod change) while the pod of another member is not
// Ready. The planner goes by etcd's health, and a member etcd calls
// healthy again right after its restart may not have passed its pod's
// readiness probe yet: restarting the next member then leaves, for a
// moment, two members not Ready, fewer Ready pods than the
// PodDisruptionBudget's minAvailable and fewer endpoints behind the
// client Service.
func waitForReadyPods(w *world, a etcd.Action) etcd.Action {
	if a.Type != etcd.ActionDeletePod || a.Operation != etcd.OpRestart {
		return a
	}
	names := make([]string, 0, len(w.pods))
	for name := range w.pods {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if p := w.pods[name]; name != a.Name && (!p.DeletionTimestamp.IsZero() || !podstatus.Ready(p)) {
			return etcd.Action{Type: etcd.ActionWait, Operation: etcd.OpRestart, Name: name,
				Reason: "waiting for the pod of member " + name + " to be Ready before restarting " + a.Name}
		}
	}
	return a
}
