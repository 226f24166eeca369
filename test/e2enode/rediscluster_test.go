//go:build realnode

package e2enode

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	redisv1alpha1 "opsmith.io/opsmith/api/redis/v1alpha1"
	"opsmith.io/opsmith/test/images"
	"opsmith.io/opsmith/test/testbed"
)

type redisE2E struct {
	t        *testing.T
	ns, name string
	password string
}

func (e *redisE2E) get(ctx context.Context) (*redisv1alpha1.RedisCluster, error) {
	rc := &redisv1alpha1.RedisCluster{}
	return rc, k8s.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: e.name}, rc)
}

// pods lists the node pods by name.
func (e *redisE2E) pods(ctx context.Context) (map[string]corev1.Pod, error) {
	var pods corev1.PodList
	if err := k8s.List(ctx, &pods, client.InNamespace(e.ns), client.MatchingLabels{"redis.opsmith.io/cluster": e.name}); err != nil {
		return nil, err
	}
	out := map[string]corev1.Pod{}
	for _, p := range pods.Items {
		out[p.Name] = p
	}
	return out, nil
}

// converged checks the status against what Redis itself says: every
// shard a master with its replicas, all slots served, cluster_state ok on
// every node, and every node's own view agreeing.
func (e *redisE2E) converged(ctx context.Context, shards, replicas int) (*redisv1alpha1.RedisCluster, error) {
	rc, err := e.get(ctx)
	if err != nil {
		return nil, err
	}
	st := rc.Status
	nodes := shards * (1 + replicas)
	if st.ObservedGeneration != rc.Generation || st.Phase != redisv1alpha1.PhaseRunning || int(st.ReadyNodes) != nodes ||
		st.SlotsAssigned != 16384 || st.ClusterState != "ok" || len(st.Shards) != shards || st.CurrentVersion != images.RedisVersion {
		return rc, fmt.Errorf("status not converged: phase %s ready %d slots %d state %s shards %d version %q conditions %v",
			st.Phase, st.ReadyNodes, st.SlotsAssigned, st.ClusterState, len(st.Shards), st.CurrentVersion, st.Conditions)
	}
	for _, sh := range st.Shards {
		if sh.Master == "" || len(sh.Nodes) != 1+replicas {
			return rc, fmt.Errorf("shard %d: master %q, %d nodes", sh.Index, sh.Master, len(sh.Nodes))
		}
	}
	pods, err := e.pods(ctx)
	if err != nil {
		return rc, err
	}
	if len(pods) != nodes {
		return rc, fmt.Errorf("%d pods, want %d", len(pods), nodes)
	}
	for name, p := range pods {
		if !p.DeletionTimestamp.IsZero() || p.Status.PodIP == "" {
			return rc, fmt.Errorf("pod %s terminating or without IP", name)
		}
		c := e.node(p.Status.PodIP)
		info, err := c.ClusterInfo(ctx).Result()
		_ = c.Close()
		if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_assigned:16384") ||
			!strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", nodes)) {
			return rc, fmt.Errorf("node %s: %v\n%s", name, err, info)
		}
	}
	return rc, nil
}

func (e *redisE2E) waitConverged(what string, shards, replicas int, timeout time.Duration) *redisv1alpha1.RedisCluster {
	e.t.Helper()
	start := time.Now()
	var rc *redisv1alpha1.RedisCluster
	testbed.Eventually(e.t, timeout, what, func() error {
		var err error
		rc, err = e.converged(context.Background(), shards, replicas)
		return err
	})
	e.t.Logf("%s: converged in %s", what, time.Since(start).Round(100*time.Millisecond))
	return rc
}

func (e *redisE2E) node(ip string) *goredis.Client {
	return goredis.NewClient(&goredis.Options{Addr: ip + ":6379", Password: e.password, Protocol: 2, DisableIdentity: true,
		DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, MaxRetries: -1})
}

func (e *redisE2E) clusterClient(ctx context.Context) *goredis.ClusterClient {
	e.t.Helper()
	pods, err := e.pods(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var addrs []string
	for _, p := range pods {
		addrs = append(addrs, p.Status.PodIP+":6379")
	}
	return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs, Password: e.password, Protocol: 2, DisableIdentity: true,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRedirects: 16})
}

func (e *redisE2E) patchSpec(spec string) {
	e.t.Helper()
	rc := &redisv1alpha1.RedisCluster{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: e.name}}
	if err := k8s.Patch(context.Background(), rc, client.RawPatch(types.MergePatchType, []byte(`{"spec":`+spec+`}`))); err != nil {
		e.t.Fatalf("patching spec %s: %v", spec, err)
	}
}

// nodeIDs maps each node to its Redis node ID, as status reports it.
func nodeIDs(rc *redisv1alpha1.RedisCluster) map[string]string {
	out := map[string]string{}
	for _, sh := range rc.Status.Shards {
		for _, n := range sh.Nodes {
			out[n.Name] = n.NodeID
		}
	}
	return out
}

func masters(rc *redisv1alpha1.RedisCluster) []string {
	var out []string
	for _, sh := range rc.Status.Shards {
		out = append(out, sh.Master)
	}
	sort.Strings(out)
	return out
}

func podUIDs(pods map[string]corev1.Pod) map[string]types.UID {
	out := map[string]types.UID{}
	for name, p := range pods {
		out[name] = p.UID
	}
	return out
}

// objectVersions lists the resourceVersions of the RedisCluster and of
// the objects only the operator writes (pods by UID and annotations: the
// kubelet writes their status).
func (e *redisE2E) objectVersions(ctx context.Context) string {
	e.t.Helper()
	rc, err := e.get(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	out := []string{"RedisCluster@" + rc.ResourceVersion}
	sel := client.MatchingLabels{"redis.opsmith.io/cluster": e.name}
	for _, l := range []client.ObjectList{&corev1.PodList{}, &corev1.PersistentVolumeClaimList{}, &corev1.ServiceList{},
		&corev1.SecretList{}, &policyv1.PodDisruptionBudgetList{}} {
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
				version = fmt.Sprintf("%s %v", obj.GetUID(), obj.GetAnnotations())
			case *policyv1.PodDisruptionBudget:
				version = fmt.Sprint(obj.GetGeneration())
			}
			out = append(out, fmt.Sprintf("%T %s@%s", o, obj.GetName(), version))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// redisSample is the seed's sample with its resources scaled down: six
// nodes with a whole CPU each do not fit the test node's two cores.
func redisSample(t *testing.T, ns string) *unstructured.Unstructured {
	u := testbed.Sample(t, "redis_v1alpha1_rediscluster.yaml", ns)
	if err := unstructured.SetNestedField(u.Object, map[string]any{
		"limits":   map[string]any{"cpu": "500m", "memory": "256Mi"},
		"requests": map[string]any{"cpu": "50m", "memory": "64Mi"},
	}, "spec", "resources"); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestRedisClusterLifecycle runs the seed's RedisCluster on real Redis
// pods: creation, a live configuration change without restarts, a
// rolling restart that hands every master over first under a write load
// with no acknowledged write lost, every pod deleted at once, and zero
// API writes at rest.
func TestRedisClusterLifecycle(t *testing.T) {
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

	u := redisSample(t, ns)
	start := time.Now()
	if err := k8s.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	e := &redisE2E{t: t, ns: ns, name: u.GetName()}
	secret := &corev1.Secret{}
	testbed.Eventually(t, time.Minute, "generated auth Secret", func() error {
		return k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: e.name + "-auth"}, secret)
	})
	e.password = string(secret.Data["password"])
	if len(e.password) < 32 {
		t.Fatalf("generated password has %d characters", len(e.password))
	}
	rc := e.waitConverged("seed sample: 3 shards of a master and a replica", 3, 1, 4*time.Minute)
	t.Logf("seed sample to all slots served: %s", time.Since(start).Round(100*time.Millisecond))
	checkNoPasswordOutsideSecrets(t, ctx, ns, e.password)
	ids := nodeIDs(rc)

	// The seed's config reached every node.
	pods, err := e.pods(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.checkConfig(ctx, "maxclients", "10000")

	// At rest nothing is written.
	before := e.objectVersions(ctx)
	time.Sleep(35 * time.Second)
	if after := e.objectVersions(ctx); after != before {
		t.Errorf("objects written while idle:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	cc := e.clusterClient(ctx)
	defer func() { _ = cc.Close() }()
	w := startRedisWriter(cc, 5000)

	// A value Redis refuses at run time (more clients than the container's
	// open-file limit allows) stops at a status that quotes Redis; nothing
	// restarts.
	uids := podUIDs(pods)
	e.patchSpec(`{"config":{"maxclients":"1000000"}}`)
	testbed.Eventually(t, time.Minute, "phase ConfigError", func() error {
		rc, err := e.get(ctx)
		if err != nil {
			return err
		}
		c := meta.FindStatusCondition(rc.Status.Conditions, redisv1alpha1.ConditionProgressing)
		if rc.Status.Phase != redisv1alpha1.PhaseConfigError || c == nil || c.Reason != "ConfigRejected" ||
			!strings.Contains(c.Message, "maxclients") {
			return fmt.Errorf("phase %s progressing %+v", rc.Status.Phase, c)
		}
		return nil
	})

	// A run-time directive changes on every node without a restart.
	e.patchSpec(`{"config":{"maxclients":"12000","maxmemory-policy":"allkeys-lru"}}`)
	testbed.Eventually(t, time.Minute, "maxclients 12000 on every node", func() error {
		return e.configIs(ctx, "maxclients", "12000")
	})
	e.checkConfig(ctx, "maxmemory-policy", "allkeys-lru")
	e.waitConverged("live config change", 3, 1, time.Minute)
	if now, _ := e.pods(ctx); fmt.Sprint(podUIDs(now)) != fmt.Sprint(uids) {
		t.Errorf("a run-time directive restarted pods: %v -> %v", uids, podUIDs(now))
	}

	// A resource change restarts every node, masters after a handover.
	oldMasters := masters(rc)
	opStart := time.Now()
	e.patchSpec(`{"resources":{"limits":{"cpu":"500m","memory":"300Mi"},"requests":{"cpu":"50m","memory":"64Mi"}}}`)
	testbed.Eventually(t, 8*time.Minute, "every pod restarted", func() error {
		now, err := e.pods(ctx)
		if err != nil {
			return err
		}
		for name, p := range now {
			if p.UID == uids[name] {
				return fmt.Errorf("pod %s not restarted yet", name)
			}
		}
		return nil
	})
	rc = e.waitConverged("rolling restart", 3, 1, 3*time.Minute)
	gap, gapErrs := w.longestGap(opStart, time.Now())
	acked, fails := w.count()
	t.Logf("rolling restart of 6 nodes: %s, longest window without an acknowledged write %s (%s) (%d acknowledged, %d failed so far)",
		time.Since(opStart).Round(100*time.Millisecond), gap.Round(time.Millisecond), gapErrs, acked, fails)
	e.logEvents(ctx, opStart)
	if fmt.Sprint(nodeIDs(rc)) != fmt.Sprint(ids) {
		t.Errorf("node IDs changed in the rolling restart: %v -> %v", ids, nodeIDs(rc))
	}
	t.Logf("masters before %v, after %v", oldMasters, masters(rc))

	// Every pod deleted at once: the same cluster comes back, same IDs,
	// same data, no manual step.
	opStart = time.Now()
	if err := k8s.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(ns), client.MatchingLabels{"redis.opsmith.io/cluster": e.name}); err != nil {
		t.Fatal(err)
	}
	rc = e.waitConverged("every pod deleted at once", 3, 1, 5*time.Minute)
	t.Logf("every pod deleted: back in %s", time.Since(opStart).Round(100*time.Millisecond))
	if fmt.Sprint(nodeIDs(rc)) != fmt.Sprint(ids) {
		t.Errorf("node IDs changed after every pod was deleted: %v -> %v", ids, nodeIDs(rc))
	}
	// The writer's client knew the old addresses only.
	_ = cc.Close()
	w.c = e.clusterClient(ctx)
	w.finish(t)
	_ = w.c.Close()

	// A master loses its volume (claim and pod deleted): its new pod
	// waits until Redis has promoted the replica, then joins it as an
	// empty replica; nothing acknowledged is lost (the old master's
	// shutdown waits for its replica).
	cc = e.clusterClient(ctx)
	w = startRedisWriter(cc, 5000)
	time.Sleep(time.Second)
	lost := masters(rc)[1]
	opStart = time.Now()
	for _, o := range []client.Object{
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: lost}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: lost}},
	} {
		if err := k8s.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// Its new pod waits for Redis to promote the replica, and the status
	// says so.
	testbed.Eventually(t, time.Minute, "the new volume's pod waiting for the failover", func() error {
		rc, err := e.get(ctx)
		if err != nil {
			return err
		}
		c := meta.FindStatusCondition(rc.Status.Conditions, redisv1alpha1.ConditionProgressing)
		if c == nil || !strings.Contains(c.Message, lost+"'s volume is new") {
			return fmt.Errorf("progressing %+v", c)
		}
		t.Logf("after %s: %s", time.Since(opStart).Round(100*time.Millisecond), c.Message)
		return nil
	})
	rc = e.waitConverged("a master's volume lost", 3, 1, 3*time.Minute)
	after := nodeIDs(rc)
	gap, gapErrs = w.longestGap(opStart, time.Now())
	t.Logf("master %s lost its volume: converged in %s, longest window without an acknowledged write %s (%s); node ID %s -> %s",
		lost, time.Since(opStart).Round(100*time.Millisecond), gap.Round(time.Millisecond), gapErrs, ids[lost], after[lost])
	e.logEvents(ctx, opStart)
	if after[lost] == ids[lost] || roleOf(rc, lost) != "replica" {
		t.Errorf("%s after losing its volume: node ID %s (was %s), role %s", lost, after[lost], ids[lost], roleOf(rc, lost))
	}
	// Checked through a client that loads the slot map anew: the
	// writer's still sends the lost master's slots to its dead address
	// until its next reload.
	_ = cc.Close()
	w.c = e.clusterClient(ctx)
	w.finish(t)
	_ = w.c.Close()

	// Every volume records the node ID it holds. One whose record names
	// another node (its data lost under its claim) is reported with a
	// Warning and recorded anew.
	e.checkVolumeIDs(ctx, after)
	victim := masters(rc)[0]
	pvc := &corev1.PersistentVolumeClaim{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: victim}, pvc); err != nil {
		t.Fatal(err)
	}
	base := pvc.DeepCopy()
	pvc.Annotations["redis.opsmith.io/node-id"] = strings.Repeat("0", 40)
	if err := k8s.Patch(ctx, pvc, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, time.Minute, "NodeDataLost event and the volume's ID recorded anew", func() error {
		var evs eventsv1.EventList
		if err := k8s.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return err
		}
		if !slices.ContainsFunc(evs.Items, func(ev eventsv1.Event) bool {
			return ev.Reason == "NodeDataLost" && ev.Type == corev1.EventTypeWarning && strings.Contains(ev.Note, victim)
		}) {
			return fmt.Errorf("no NodeDataLost event for %s", victim)
		}
		return e.volumeIDsAre(ctx, after)
	})
}

// volumeIDsAre checks that every node's volume records the node ID the
// status reports for it.
func (e *redisE2E) volumeIDsAre(ctx context.Context, ids map[string]string) error {
	var pvcs corev1.PersistentVolumeClaimList
	if err := k8s.List(ctx, &pvcs, client.InNamespace(e.ns), client.MatchingLabels{"redis.opsmith.io/cluster": e.name}); err != nil {
		return err
	}
	if len(pvcs.Items) != len(ids) {
		return fmt.Errorf("%d volumes, %d nodes", len(pvcs.Items), len(ids))
	}
	for _, v := range pvcs.Items {
		if got := v.Annotations["redis.opsmith.io/node-id"]; got != ids[v.Name] {
			return fmt.Errorf("volume %s records node %q, its node is %q", v.Name, got, ids[v.Name])
		}
	}
	return nil
}

func (e *redisE2E) checkVolumeIDs(ctx context.Context, ids map[string]string) {
	e.t.Helper()
	if err := e.volumeIDsAre(ctx, ids); err != nil {
		e.t.Error(err)
	}
}

func roleOf(rc *redisv1alpha1.RedisCluster, node string) string {
	for _, sh := range rc.Status.Shards {
		for _, n := range sh.Nodes {
			if n.Name == node {
				return n.Role
			}
		}
	}
	return ""
}

// logEvents logs the RedisCluster's events since from: what the
// operator did, to set against the writer's gaps.
func (e *redisE2E) logEvents(ctx context.Context, from time.Time) {
	var evs eventsv1.EventList
	if err := k8s.List(ctx, &evs, client.InNamespace(e.ns)); err != nil {
		e.t.Log(err)
		return
	}
	sort.Slice(evs.Items, func(i, j int) bool { return evs.Items[i].EventTime.Before(&evs.Items[j].EventTime) })
	for _, ev := range evs.Items {
		if ev.Regarding.Kind == "RedisCluster" && !ev.EventTime.Time.Before(from) {
			e.t.Logf("  %s %s %s: %s", ev.EventTime.Format("15:04:05.000"), ev.Reason, ev.Action, ev.Note)
		}
	}
}

func (e *redisE2E) configIs(ctx context.Context, key, want string) error {
	now, err := e.pods(ctx)
	if err != nil {
		return err
	}
	for name, p := range now {
		c := e.node(p.Status.PodIP)
		got, err := c.ConfigGet(ctx, key).Result()
		_ = c.Close()
		if err != nil || got[key] != want {
			rc, _ := e.get(ctx)
			return fmt.Errorf("node %s: %s = %q (%v), want %q; status %s %v", name, key, got[key], err, want, rc.Status.Phase, rc.Status.Conditions)
		}
	}
	return nil
}

func (e *redisE2E) checkConfig(ctx context.Context, key, want string) {
	e.t.Helper()
	if err := e.configIs(ctx, key, want); err != nil {
		e.t.Error(err)
	}
}

// checkNoPasswordOutsideSecrets: the password is in no ConfigMap, event
// or pod spec of the namespace.
func checkNoPasswordOutsideSecrets(t *testing.T, ctx context.Context, ns, password string) {
	t.Helper()
	for _, l := range []client.ObjectList{&corev1.ConfigMapList{}, &corev1.EventList{}, &corev1.PodList{}} {
		if err := k8s.List(ctx, l, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(fmt.Sprintf("%+v", l), password) {
			t.Errorf("the password appears in a %T", l)
		}
	}
}
