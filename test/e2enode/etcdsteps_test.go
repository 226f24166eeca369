//go:build realnode

package e2enode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	etcdv1alpha1 "opsmith.io/opsmith/api/etcd/v1alpha1"
	"opsmith.io/opsmith/test/testbed"
)

// writeBound is the write availability a user may rely on: the longest
// time without an acknowledged write through the client Service, for a
// client that writes every 20 ms, gives each write 3 s and reconnects
// after a failed one, during any operation of the lifecycle test (scaling,
// repairs, the upgrade and the spec.pod rolling restart, with or without
// an operator crash). Measured on the 2-core real node over three runs: at
// most 1.02 s, each time leadership changed hands (the leader's own
// restart after MoveLeader, or the test deleting the leader's pod); every
// other window 0.03-0.6 s. 3 s leaves headroom for a loaded machine and is
// still shorter than one write's timeout plus a retry, so a write stuck on
// a dead member fails the bound.
const writeBound = 3 * time.Second

// pauseHold is how long a paused cluster is watched for changes. Unpaused,
// a scale-out takes its next step within a second of the previous one
// (requeueAfterStep 500 ms, requeueWaiting 2 s in
// internal/controller/etcdcluster), so 15 s is more than seven of them.
const pauseHold = 15 * time.Second

// pauseMidScaleOut waits until the scale-out from members has begun (etcd
// lists the learner the operator added), sets spec.paused, and checks that
// the operator reports the pause (status of the new generation, phase
// Paused, Progressing False with reason Paused) and then changes nothing
// for pauseHold: no member added, promoted or removed, no pod or volume
// created or deleted.
func (e *etcdE2E) pauseMidScaleOut(members int) {
	t := e.t
	t.Helper()
	ctx := context.Background()
	testbed.Eventually(t, 2*time.Minute, "the scale-out begun (a learner added)", func() error {
		v, err := e.view(ctx)
		if err != nil {
			return err
		}
		if len(v.members.Members) <= members {
			return fmt.Errorf("%s", v)
		}
		return nil
	})
	ec := &etcdv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: e.name}}
	if err := k8s.Patch(ctx, ec, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"paused":true}}`))); err != nil {
		t.Fatal(err)
	}
	gen := ec.Generation
	reported := func() error {
		got := &etcdv1alpha1.EtcdCluster{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(ec), got); err != nil {
			return err
		}
		st := got.Status
		c := meta.FindStatusCondition(st.Conditions, etcdv1alpha1.ConditionProgressing)
		if st.ObservedGeneration != gen || st.Phase != etcdv1alpha1.PhasePaused || c == nil ||
			c.Status != metav1.ConditionFalse || c.Reason != "Paused" || c.ObservedGeneration != gen {
			return fmt.Errorf("generation %d, status %+v", gen, st)
		}
		return nil
	}
	start := time.Now()
	testbed.Eventually(t, 30*time.Second, "the operator reports the pause", reported)
	snap, err := e.pausedState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("paused mid scale-out (%s after the pause): %s", time.Since(start).Round(100*time.Millisecond), strings.ReplaceAll(snap, "\n", "; "))
	for end := time.Now().Add(pauseHold); time.Now().Before(end); {
		time.Sleep(time.Second)
		now, err := e.pausedState(ctx)
		if err != nil {
			t.Logf("paused: reading the cluster: %v", err)
			continue
		}
		if now != snap {
			t.Errorf("paused, the operator still changed the cluster:\n%s\n->\n%s", snap, now)
			break
		}
	}
	if err := reported(); err != nil {
		t.Errorf("after %s paused the status no longer reports the pause: %v", pauseHold, err)
	}
}

// pausedState is what a paused operator must not change: etcd's members
// (ID, learner or voter) and the UIDs of the member pods and volumes.
func (e *etcdE2E) pausedState(ctx context.Context) (string, error) {
	var out []string
	c, err := e.client()
	if err != nil {
		return "", err
	}
	defer func() { _ = c.Close() }()
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ml, err := c.MemberList(lctx)
	if err != nil {
		return "", err
	}
	for _, m := range ml.Members {
		out = append(out, fmt.Sprintf("member %x learner=%v", m.ID, m.IsLearner))
	}
	sel := client.MatchingLabels{"etcd.opsmith.io/cluster": e.name}
	var pods corev1.PodList
	if err := k8s.List(ctx, &pods, client.InNamespace(e.ns), sel); err != nil {
		return "", err
	}
	for _, p := range pods.Items {
		out = append(out, fmt.Sprintf("pod %s@%s", p.Name, p.UID))
	}
	var pvcs corev1.PersistentVolumeClaimList
	if err := k8s.List(ctx, &pvcs, client.InNamespace(e.ns), sel); err != nil {
		return "", err
	}
	for _, p := range pvcs.Items {
		out = append(out, fmt.Sprintf("volume %s@%s", p.Name, p.UID))
	}
	sort.Strings(out)
	return strings.Join(out, "\n"), nil
}

// rollPodSpec changes spec.pod (the members' resource requests) and checks
// with the roll monitor that the members restart one at a time, each once,
// the leader only after leadership moved away, that the pods then have the
// new requests, and how long writes went unacknowledged meanwhile.
func (e *etcdE2E) rollPodSpec(w *ackWriter, size int, version string) {
	t := e.t
	t.Helper()
	ctx := context.Background()
	uids, err := e.podUIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	roll := e.startRollMonitor()
	start := time.Now()
	e.patchSpec(`{"pod":{"resources":{"requests":{"cpu":"10m","memory":"32Mi"}}}}`)
	testbed.Eventually(t, 3*time.Minute, "every member restarted with the new resources", func() error {
		if _, err := e.converged(ctx, size, version); err != nil {
			return err
		}
		pods, err := cs.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: "etcd.opsmith.io/cluster=" + e.name})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			req := p.Spec.Containers[0].Resources.Requests
			if p.UID == uids[p.Name] || req.Cpu().String() != "10m" || req.Memory().String() != "32Mi" {
				return fmt.Errorf("pod %s (first UID %v) requests %v", p.Name, p.UID == uids[p.Name], req)
			}
		}
		return nil
	})
	t.Logf("spec.pod change: every member restarted in %s", time.Since(start).Round(100*time.Millisecond))
	roll.finish(t, "spec.pod change", uids)
	w.checkAvailable(t, "rolling restart for a spec.pod change", start, writeBound)
}

// memberVolume is a member's claim and the PersistentVolume bound to it.
type memberVolume struct {
	claim, pv, dir string
}

// retainedVolumes checks that the member claims are kept (not being
// deleted, owned by nothing, so that no garbage collection takes them
// later), bound to their PersistentVolumes, whose directories are on the
// node, and returns them.
func (e *etcdE2E) retainedVolumes(ctx context.Context, want int) []memberVolume {
	t := e.t
	t.Helper()
	pvcs, err := cs.CoreV1().PersistentVolumeClaims(e.ns).List(ctx, metav1.ListOptions{LabelSelector: "etcd.opsmith.io/cluster=" + e.name})
	if err != nil {
		t.Fatal(err)
	}
	if len(pvcs.Items) != want {
		t.Errorf("after deleting the EtcdCluster %d volumes are left, want its %d kept", len(pvcs.Items), want)
	}
	var out []memberVolume
	for _, c := range pvcs.Items {
		if !c.DeletionTimestamp.IsZero() || len(c.OwnerReferences) > 0 {
			t.Errorf("retained claim %s is being deleted (%v) or owned (%v)", c.Name, c.DeletionTimestamp, c.OwnerReferences)
		}
		pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, c.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			t.Errorf("the volume of retained claim %s: %v", c.Name, err)
			continue
		}
		if pv.Spec.Local == nil || pv.Status.Phase != corev1.VolumeBound {
			t.Errorf("the volume %s of retained claim %s is not a bound local volume: %+v %s", pv.Name, c.Name, pv.Spec.PersistentVolumeSource, pv.Status.Phase)
			continue
		}
		if _, err := os.Stat(pv.Spec.Local.Path); err != nil {
			t.Errorf("the directory of retained volume %s: %v", pv.Name, err)
		}
		out = append(out, memberVolume{claim: c.Name, pv: pv.Name, dir: pv.Spec.Local.Path})
	}
	return out
}

// waitChildrenGone waits until the garbage collector took the pods,
// Services and PodDisruptionBudget of the deleted EtcdCluster.
func (e *etcdE2E) waitChildrenGone(ctx context.Context) {
	e.t.Helper()
	testbed.Eventually(e.t, 2*time.Minute, "pods, Services and PodDisruptionBudget garbage collected", func() error {
		sel := metav1.ListOptions{LabelSelector: "etcd.opsmith.io/cluster=" + e.name}
		pods, err := cs.CoreV1().Pods(e.ns).List(ctx, sel)
		if err != nil || len(pods.Items) != 0 {
			return fmt.Errorf("%d pods left (%v)", len(pods.Items), err)
		}
		svcs, err := cs.CoreV1().Services(e.ns).List(ctx, sel)
		if err != nil || len(svcs.Items) != 0 {
			return fmt.Errorf("%d Services left (%v)", len(svcs.Items), err)
		}
		pdbs, err := cs.PolicyV1().PodDisruptionBudgets(e.ns).List(ctx, sel)
		if err != nil || len(pdbs.Items) != 0 {
			return fmt.Errorf("%d PodDisruptionBudgets left (%v)", len(pdbs.Items), err)
		}
		return nil
	})
}

// reclaim checks both volume reclaim policies on the cluster the test ran:
// deleted with Retain (the default), its pods and Services go and its
// claims, volumes and directories stay; created again with the same name
// (and reclaimPolicy Delete), it starts on them as the same members with
// every acknowledged write; deleted then, its claims go with it (garbage
// collection), and so do their PersistentVolumes and directories.
func (e *etcdE2E) reclaim(before etcdView, w *ackWriter) {
	t := e.t
	t.Helper()
	ctx := context.Background()
	size := int(before.ec.Spec.Size)
	version := before.ec.Spec.Version
	if err := k8s.Delete(ctx, &etcdv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: e.name}}); err != nil {
		t.Fatal(err)
	}
	e.endpoint = ""
	e.waitChildrenGone(ctx)
	kept := e.retainedVolumes(ctx, size)

	start := time.Now()
	ec := &etcdv1alpha1.EtcdCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: e.name},
		Spec: etcdv1alpha1.EtcdClusterSpec{Size: before.ec.Spec.Size, Version: version,
			Storage: etcdv1alpha1.EtcdStorage{ReclaimPolicy: etcdv1alpha1.ReclaimDelete}},
	}
	if err := k8s.Create(ctx, ec); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{}
	testbed.Eventually(t, time.Minute, "client Service of the new EtcdCluster", func() error {
		return k8s.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: e.name + "-client"}, svc)
	})
	e.endpoint = "http://" + svc.Spec.ClusterIP + ":2379"
	v := e.waitConverged("created again on the retained volumes", size, version, 3*time.Minute)
	for _, m := range before.members.Members {
		if got := memberID(v, m.Name); got != m.ID {
			t.Errorf("created again, %s is member %x, want %x (the member its retained volume holds)", m.Name, got, m.ID)
		}
	}
	w.verify(t)
	testbed.Eventually(t, time.Minute, "the volumes owned by the EtcdCluster (reclaimPolicy Delete)", func() error {
		pvcs, err := cs.CoreV1().PersistentVolumeClaims(e.ns).List(ctx, metav1.ListOptions{LabelSelector: "etcd.opsmith.io/cluster=" + e.name})
		if err != nil {
			return err
		}
		for _, c := range pvcs.Items {
			if len(c.OwnerReferences) != 1 || c.OwnerReferences[0].UID != ec.UID {
				return fmt.Errorf("claim %s owned by %v", c.Name, c.OwnerReferences)
			}
		}
		return nil
	})

	if err := k8s.Delete(ctx, ec); err != nil {
		t.Fatal(err)
	}
	e.endpoint = ""
	testbed.Eventually(t, 2*time.Minute, "claims, volumes and their directories deleted with the EtcdCluster", func() error {
		sel := metav1.ListOptions{LabelSelector: "etcd.opsmith.io/cluster=" + e.name}
		pods, err := cs.CoreV1().Pods(e.ns).List(ctx, sel)
		if err != nil || len(pods.Items) != 0 {
			return fmt.Errorf("%d pods left (%v)", len(pods.Items), err)
		}
		pvcs, err := cs.CoreV1().PersistentVolumeClaims(e.ns).List(ctx, sel)
		if err != nil || len(pvcs.Items) != 0 {
			return fmt.Errorf("%d claims left (%v)", len(pvcs.Items), err)
		}
		for _, k := range kept {
			if _, err := cs.CoreV1().PersistentVolumes().Get(ctx, k.pv, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("volume %s of claim %s still there (%v)", k.pv, k.claim, err)
			}
			if _, err := os.Stat(k.dir); !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("directory %s of volume %s still there (%v)", k.dir, k.pv, err)
			}
		}
		return nil
	})
	t.Logf("created again on the retained volumes and deleted with reclaimPolicy Delete: %s", time.Since(start).Round(100*time.Millisecond))
}
