//go:build realnode

package e2enode

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	etcdv1alpha1 "opsmith.io/opsmith/api/etcd/v1alpha1"
	"opsmith.io/opsmith/test/operator"
	"opsmith.io/opsmith/test/testbed"
)

// The etcd members run as user 65532 (restricted Pod Security) and rely on
// fsGroup to write their volumes: the sample names no StorageClass, so they
// get the node's default one, whose local volumes start root-owned (0755)
// and are writable only through the fsGroup the kubelet applies, as on a
// cloud provider's block volumes.

// etcdView is the cluster as the test sees it from outside the operator.
type etcdView struct {
	ec      *etcdv1alpha1.EtcdCluster
	members *clientv3.MemberListResponse
	pods    []string
	pvcs    []string
}

func (v etcdView) String() string {
	var ms []string
	if v.members != nil {
		for _, m := range v.members.Members {
			ms = append(ms, fmt.Sprintf("%s/%x learner=%v", m.Name, m.ID, m.IsLearner))
		}
	}
	return fmt.Sprintf("phase %s ready %d members %v status %+v pods %v volumes %v",
		v.ec.Status.Phase, v.ec.Status.ReadyMembers, ms, v.ec.Status.Members, v.pods, v.pvcs)
}

type etcdE2E struct {
	t        *testing.T
	ns, name string
	endpoint string // the client Service's ClusterIP URL
}

func (e *etcdE2E) client() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: []string{e.endpoint}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
}

func (e *etcdE2E) view(ctx context.Context) (etcdView, error) {
	v := etcdView{ec: &etcdv1alpha1.EtcdCluster{}}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: e.name}, v.ec); err != nil {
		return v, err
	}
	sel := client.MatchingLabels{"etcd.opsmith.io/cluster": e.name}
	var pods corev1.PodList
	if err := k8s.List(ctx, &pods, client.InNamespace(e.ns), sel); err != nil {
		return v, err
	}
	for _, p := range pods.Items {
		v.pods = append(v.pods, p.Name)
	}
	var pvcs corev1.PersistentVolumeClaimList
	if err := k8s.List(ctx, &pvcs, client.InNamespace(e.ns), sel); err != nil {
		return v, err
	}
	for _, p := range pvcs.Items {
		v.pvcs = append(v.pvcs, p.Name)
	}
	sort.Strings(v.pods)
	sort.Strings(v.pvcs)
	if e.endpoint == "" {
		return v, nil
	}
	c, err := e.client()
	if err != nil {
		return v, err
	}
	defer func() { _ = c.Close() }()
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	v.members, err = c.MemberList(lctx)
	return v, err
}

// converged checks what the issue asks after every operation: the member
// list matches size, every member is a healthy voter running version, and
// there is exactly one pod and one volume per member.
func (e *etcdE2E) converged(ctx context.Context, size int, version string) (etcdView, error) {
	v, err := e.view(ctx)
	if err != nil {
		return v, err
	}
	st := v.ec.Status
	if st.ObservedGeneration != v.ec.Generation || st.Phase != etcdv1alpha1.PhaseRunning || int(st.ReadyMembers) != size ||
		st.CurrentVersion != version || len(st.Members) != size {
		return v, fmt.Errorf("status not converged: %s", v)
	}
	if len(v.members.Members) != size {
		return v, fmt.Errorf("etcd lists %d members, want %d: %s", len(v.members.Members), size, v)
	}
	names := map[string]bool{}
	for _, m := range v.members.Members {
		if m.IsLearner || m.Name == "" {
			return v, fmt.Errorf("member %x is a learner or not started: %s", m.ID, v)
		}
		names[m.Name] = true
	}
	for _, m := range st.Members {
		if !m.Healthy || m.Version != version {
			return v, fmt.Errorf("member %s not healthy on %s: %s", m.Name, version, v)
		}
	}
	if len(v.pods) != size || len(v.pvcs) != size {
		return v, fmt.Errorf("want one pod and one volume per member: %s", v)
	}
	for i := range v.pods {
		if !names[v.pods[i]] || !names[v.pvcs[i]] {
			return v, fmt.Errorf("pod or volume of no member: %s", v)
		}
	}
	return v, nil
}

func (e *etcdE2E) waitConverged(what string, size int, version string, timeout time.Duration) etcdView {
	e.t.Helper()
	start := time.Now()
	var v etcdView
	testbed.Eventually(e.t, timeout, what, func() error {
		var err error
		v, err = e.converged(context.Background(), size, version)
		return err
	})
	e.t.Logf("%s: converged in %s", what, time.Since(start).Round(100*time.Millisecond))
	return v
}

func (e *etcdE2E) patchSpec(spec string) {
	e.t.Helper()
	ec := &etcdv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: e.name}}
	if err := k8s.Patch(context.Background(), ec, client.RawPatch(types.MergePatchType, []byte(`{"spec":`+spec+`}`))); err != nil {
		e.t.Fatalf("patching spec %s: %v", spec, err)
	}
}

// resourceVersions lists the resourceVersion of the EtcdCluster and of the
// objects it owns or labels that only the operator writes, the UIDs of its
// pods and the generation of its PodDisruptionBudget.
func (e *etcdE2E) resourceVersions(ctx context.Context) string {
	e.t.Helper()
	var out []string
	ec := &etcdv1alpha1.EtcdCluster{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: e.name}, ec); err != nil {
		e.t.Fatal(err)
	}
	out = append(out, "EtcdCluster@"+ec.ResourceVersion)
	sel := client.MatchingLabels{"etcd.opsmith.io/cluster": e.name}
	for _, l := range []client.ObjectList{&corev1.PodList{}, &corev1.PersistentVolumeClaimList{}, &corev1.ServiceList{}, &policyv1.PodDisruptionBudgetList{}} {
		if err := k8s.List(ctx, l, client.InNamespace(e.ns), sel); err != nil {
			e.t.Fatal(err)
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, o := range items {
			obj := o.(client.Object)
			version := obj.GetResourceVersion()
			switch obj.(type) {
			case *corev1.Pod:
				// The kubelet writes pod status; the operator only creates
				// and deletes pods.
				version = string(obj.GetUID())
			case *policyv1.PodDisruptionBudget:
				// The disruption controller writes its status.
				version = strconv.FormatInt(obj.GetGeneration(), 10)
			}
			out = append(out, fmt.Sprintf("%T %s@%s", o, obj.GetName(), version))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func memberID(v etcdView, name string) uint64 {
	for _, m := range v.members.Members {
		if m.Name == name {
			return m.ID
		}
	}
	return 0
}

// TestEtcdClusterLifecycle runs the seed's EtcdCluster on the real node in
// a namespace that enforces the restricted Pod Security Standard, and,
// while a writer commits sequential keys through the client Service:
// scales 3 -> 5 (paused midway: nothing changes until resumed) -> 3,
// deletes a member pod, deletes a member's pod and volume, kills the
// operator (SIGKILL) in the middle of a scale-out, upgrades 3.5 -> 3.6 with
// the operator killed in the middle again and changes spec.pod; the
// upgrade and the spec.pod change restart the members one at a time, each
// once, the leader only after leadership moved away (rollMonitor).
// Afterwards every acknowledged key is present, and no operation left the
// writer without an acknowledged write for longer than writeBound. Last,
// deleted with reclaimPolicy Retain it keeps its volumes, created again it
// starts on them, and deleted with reclaimPolicy Delete its volumes go.
func TestEtcdClusterLifecycle(t *testing.T) {
	ctx := context.Background()
	ns := testbed.Namespace(t, k8s)
	dumpOnFailure(t, ns)
	nsObj := &corev1.Namespace{}
	if err := k8s.Get(ctx, client.ObjectKey{Name: ns}, nsObj); err != nil {
		t.Fatal(err)
	}
	nsObj.Labels["pod-security.kubernetes.io/enforce"] = "restricted"
	if err := k8s.Update(ctx, nsObj); err != nil {
		t.Fatal(err)
	}

	u := testbed.Sample(t, "etcd_v1alpha1_etcdcluster.yaml", ns)
	start := time.Now()
	if err := k8s.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	e := &etcdE2E{t: t, ns: ns, name: u.GetName()}
	svc := &corev1.Service{}
	testbed.Eventually(t, time.Minute, "client Service", func() error {
		return k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: e.name + "-client"}, svc)
	})
	e.endpoint = "http://" + svc.Spec.ClusterIP + ":2379"
	e.waitConverged("seed cluster of 3 on 3.5.35", 3, "3.5.35", 4*time.Minute)
	t.Logf("seed sample to 3 healthy members: %s", time.Since(start).Round(100*time.Millisecond))
	pvcs, err := cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{LabelSelector: "etcd.opsmith.io/cluster=" + e.name})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pvcs.Items {
		if p.Spec.StorageClassName == nil || *p.Spec.StorageClassName != testbed.DefaultStorageClass {
			t.Errorf("volume %s has class %v, want the default %s", p.Name, p.Spec.StorageClassName, testbed.DefaultStorageClass)
		}
	}

	// Write and read through the client Service.
	c, err := e.client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "/e2e/hello", "world"); err != nil {
		t.Fatal(err)
	}
	if resp, err := c.Get(ctx, "/e2e/hello"); err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "world" {
		t.Fatalf("read back through the client Service: %v %v", resp, err)
	}
	_ = c.Close()

	w := e.startWriter()
	// Scale out, paused as soon as it has begun and resumed.
	opStart := time.Now()
	e.patchSpec(`{"size":5}`)
	e.pauseMidScaleOut(3)
	e.patchSpec(`{"paused":false}`)
	e.waitConverged("scale 3 -> 5 (paused midway)", 5, "3.5.35", 4*time.Minute)
	w.checkAvailable(t, "scale out 3 -> 5", opStart, writeBound)
	opStart = time.Now()
	e.patchSpec(`{"size":3}`)
	v := e.waitConverged("scale 5 -> 3", 3, "3.5.35", 3*time.Minute)
	w.checkAvailable(t, "scale in 5 -> 3", opStart, writeBound)

	// A member pod goes away: the member restarts on its data.
	victim := e.name + "-1"
	id := memberID(v, victim)
	opStart = time.Now()
	old, err := cs.CoreV1().Pods(ns).Get(ctx, victim, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Pods(ns).Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, 2*time.Minute, "a new pod for "+victim, func() error {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, victim, metav1.GetOptions{})
		if err != nil || p.UID == old.UID {
			return fmt.Errorf("still the old pod (%v)", err)
		}
		return nil
	})
	v = e.waitConverged("member pod deleted", 3, "3.5.35", 3*time.Minute)
	w.checkAvailable(t, "member pod deleted", opStart, writeBound)
	if memberID(v, victim) != id {
		t.Errorf("%s came back as member %x, want %x (same data)", victim, memberID(v, victim), id)
	}

	// A member loses pod and volume: it is replaced by a new member.
	victim = e.name + "-0"
	id = memberID(v, victim)
	opStart = time.Now()
	if err := cs.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Pods(ns).Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, 2*time.Minute, "the member that lost its data removed", func() error {
		v, err := e.view(ctx)
		if err != nil {
			return err
		}
		for _, m := range v.members.Members {
			if m.ID == id {
				return fmt.Errorf("member %x still listed: %s", id, v)
			}
		}
		return nil
	})
	v = e.waitConverged("member pod and volume deleted", 3, "3.5.35", 4*time.Minute)
	w.checkAvailable(t, "member pod and volume deleted", opStart, writeBound)
	if memberID(v, victim) == 0 || memberID(v, victim) == id {
		t.Errorf("%s must rejoin as a new member: old ID %x, new %x", victim, id, memberID(v, victim))
	}

	// SIGKILL the operator in the middle of a scale-out: once etcd lists the
	// fourth member, before it has started.
	opStart = time.Now()
	e.patchSpec(`{"size":4}`)
	testbed.Eventually(t, 2*time.Minute, "a fourth member added", func() error {
		v, err := e.view(ctx)
		if err != nil {
			return err
		}
		if len(v.members.Members) < 4 {
			return fmt.Errorf("%s", v)
		}
		return nil
	})
	operator.KillManager(t)
	e.waitConverged("scale 3 -> 4 across an operator kill", 4, "3.5.35", 4*time.Minute)
	w.checkAvailable(t, "scale out 3 -> 4 across an operator kill", opStart, writeBound)
	opStart = time.Now()
	e.patchSpec(`{"size":3}`)
	e.waitConverged("scale 4 -> 3", 3, "3.5.35", 3*time.Minute)
	w.checkAvailable(t, "scale in 4 -> 3", opStart, writeBound)

	// Upgrade 3.5 -> 3.6, killing the operator once a member runs 3.6,
	// watched by the roll monitor: one member at a time, each once, the
	// leader only after leadership moved away.
	uids, err := e.podUIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	roll := e.startRollMonitor()
	opStart = time.Now()
	e.patchSpec(`{"version":"3.6.16"}`)
	testbed.Eventually(t, 3*time.Minute, "first member upgraded", func() error {
		v, err := e.view(ctx)
		if err != nil {
			return err
		}
		for _, m := range v.ec.Status.Members {
			if m.Version == "3.6.16" {
				return nil
			}
		}
		return fmt.Errorf("%s", v)
	})
	operator.KillManager(t)
	e.waitConverged("upgrade 3.5.35 -> 3.6.16 across an operator kill", 3, "3.6.16", 5*time.Minute)
	roll.finish(t, "upgrade", uids)
	w.checkAvailable(t, "upgrade 3.5.35 -> 3.6.16", opStart, writeBound)

	// A change under spec.pod restarts the members the same way.
	e.rollPodSpec(w, 3, "3.6.16")
	w.finish(t)

	// Bad input is rejected with its message and changes nothing.
	for _, bad := range []struct{ spec, want string }{
		{`{"size":0}`, "spec.size in body should be greater than or equal to 1"},
		{`{"size":-1}`, "spec.size in body should be greater than or equal to 1"},
		{`{"version":"3.5.35"}`, "cannot downgrade etcd from 3.6.16 to 3.5.35"},
		{`{"version":"3.8.0"}`, "cannot upgrade etcd from 3.6.16 to 3.8.0: upgrade one minor version at a time"},
		{`{"version":"latest"}`, "version must be MAJOR.MINOR.PATCH"},
	} {
		ec := &etcdv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: e.name}}
		err := k8s.Patch(ctx, ec, client.RawPatch(types.MergePatchType, []byte(`{"spec":`+bad.spec+`}`)))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("spec %s: got %v, want an error containing %q", bad.spec, err, bad.want)
		}
	}
	v = e.waitConverged("after rejected changes", 3, "3.6.16", time.Minute)

	// A healthy cluster costs no operator writes: over more than one health
	// check interval (30 s) neither the EtcdCluster nor its objects change.
	before := e.resourceVersions(ctx)
	time.Sleep(40 * time.Second)
	if after := e.resourceVersions(ctx); after != before {
		t.Errorf("objects changed while the cluster was healthy and idle:\n%s\n->\n%s", before, after)
	}

	e.reclaim(v, w)
}
