package rediscluster_test

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	redisv1alpha1 "opsmith.io/opsmith/api/redis/v1alpha1"
	"opsmith.io/opsmith/internal/controller/rediscluster"
	"opsmith.io/opsmith/test/testbed"
)

// restrictedNamespace creates a namespace where the API server enforces the
// restricted Pod Security Standard: a node pod that does not meet it is
// rejected.
func restrictedNamespace(t *testing.T) string {
	t.Helper()
	testbed.RequireCluster(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   "redis-" + rand.String(6),
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}}
	if err := suite.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = suite.Client.Delete(context.Background(), ns) })
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "default"}}
	if err := suite.Client.Create(context.Background(), sa); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func get(ns, name string, obj client.Object) error {
	return suite.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj)
}

func condition(rc *redisv1alpha1.RedisCluster, typ string) *metav1.Condition {
	return meta.FindStatusCondition(rc.Status.Conditions, typ)
}

// TestSeedSampleObjects applies the seed sample unchanged and checks what
// the operator makes before any node runs: a generated password in a
// Secret it owns, redis.conf in a Secret (never a ConfigMap), the Services,
// the PodDisruptionBudget, a volume and a restricted pod per node, and a
// status that says the cluster is being created; then that nothing more
// is written while nothing changes.
func TestSeedSampleObjects(t *testing.T) {
	ctx := context.Background()
	ns := restrictedNamespace(t)
	u := testbed.Sample(t, "redis_v1alpha1_rediscluster.yaml", ns)
	if err := suite.Client.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	const name = "my-release"
	rc := &redisv1alpha1.RedisCluster{}
	testbed.Eventually(t, timeout, "status Creating with 6 pods", func() error {
		if err := get(ns, name, rc); err != nil {
			return err
		}
		var pods corev1.PodList
		if err := suite.Client.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(pods.Items) != 6 || rc.Status.Phase != redisv1alpha1.PhaseCreating {
			return fmt.Errorf("%d pods, phase %q", len(pods.Items), rc.Status.Phase)
		}
		return nil
	})
	if rc.Spec.Mode != "cluster" || rc.Spec.Replicas() != 1 || rc.Spec.Version != "7.0.15" {
		t.Errorf("defaults: mode %q replicas %d version %q", rc.Spec.Mode, rc.Spec.Replicas(), rc.Spec.Version)
	}

	auth := &corev1.Secret{}
	if err := get(ns, name+"-auth", auth); err != nil {
		t.Fatal(err)
	}
	pw := string(auth.Data["password"])
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(pw) {
		t.Errorf("generated password %d characters, want 64 hex digits", len(pw))
	}
	if ref := metav1.GetControllerOf(auth); ref == nil || ref.UID != rc.UID {
		t.Errorf("auth Secret not owned by the RedisCluster: %v", auth.OwnerReferences)
	}
	conf := &corev1.Secret{}
	if err := get(ns, name+"-config", conf); err != nil {
		t.Fatal(err)
	}
	file := string(conf.Data["redis.conf"])
	for _, want := range []string{"cluster-enabled yes\n", "cluster-config-file /data/nodes.conf\n", "dir /data\n",
		"appendonly yes\n", "appendfsync everysec\n", "maxclients 10000\n", `requirepass "` + pw + `"`, `masterauth "` + pw + `"`} {
		if !strings.Contains(file, want) {
			t.Errorf("redis.conf lacks %q:\n%s", want, strings.ReplaceAll(file, pw, "<password>"))
		}
	}
	var cms corev1.ConfigMapList
	if err := suite.Client.List(ctx, &cms, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(fmt.Sprintf("%v", cms.Items), pw) {
		t.Error("the password is in a ConfigMap")
	}

	var pvcs corev1.PersistentVolumeClaimList
	if err := suite.Client.List(ctx, &pvcs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pvcs.Items {
		names = append(names, p.Name)
		if len(p.OwnerReferences) != 0 {
			t.Errorf("volume %s owned (reclaimPolicy Retain keeps data): %v", p.Name, p.OwnerReferences)
		}
	}
	sort.Strings(names)
	want := "my-release-0-0 my-release-0-1 my-release-1-0 my-release-1-1 my-release-2-0 my-release-2-1"
	if strings.Join(names, " ") != want {
		t.Errorf("volumes %v, want %s", names, want)
	}
	pod := &corev1.Pod{}
	if err := get(ns, "my-release-1-1", pod); err != nil {
		t.Fatal(err)
	}
	c := pod.Spec.Containers[0]
	if c.Image != "docker.io/library/redis:7.0.15" || c.ImagePullPolicy != corev1.PullIfNotPresent ||
		c.Resources.Limits.Cpu().String() != "1" || c.Resources.Requests.Memory().String() != "1Gi" {
		t.Errorf("container image %s pull %s resources %+v", c.Image, c.ImagePullPolicy, c.Resources)
	}
	if strings.Join(c.Command, " ") != "redis-server /etc/redis/redis.conf --cluster-announce-hostname my-release-1-1" || pod.Spec.Subdomain != "my-release-nodes" {
		t.Errorf("command %v subdomain %s", c.Command, pod.Spec.Subdomain)
	}
	if strings.Contains(fmt.Sprintf("%+v", pod.Spec), pw) {
		t.Error("the password is in the pod spec")
	}
	if a := pod.Spec.Affinity; a == nil || a.PodAntiAffinity == nil {
		t.Errorf("no default anti-affinity between the nodes of a shard: %+v", a)
	}

	nodes, clientSvc := &corev1.Service{}, &corev1.Service{}
	if err := get(ns, name+"-nodes", nodes); err != nil {
		t.Fatal(err)
	}
	if nodes.Spec.ClusterIP != corev1.ClusterIPNone || !nodes.Spec.PublishNotReadyAddresses {
		t.Errorf("nodes Service must be headless and publish nodes before they are ready: %+v", nodes.Spec)
	}
	if err := get(ns, name, clientSvc); err != nil || clientSvc.Spec.Ports[0].Port != 6379 {
		t.Errorf("client Service: %v %+v", err, clientSvc.Spec)
	}
	pdb := &policyv1.PodDisruptionBudget{}
	if err := get(ns, name, pdb); err != nil || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget: %v %+v", err, pdb.Spec)
	}
	if p := condition(rc, redisv1alpha1.ConditionAvailable); p == nil || p.Status != metav1.ConditionFalse {
		t.Errorf("Available = %+v while no node runs", p)
	}
	if rc.Status.AuthSecretName != name+"-auth" || rc.Status.ClientEndpoint != name+"."+ns+".svc:6379" {
		t.Errorf("status auth %q endpoint %q", rc.Status.AuthSecretName, rc.Status.ClientEndpoint)
	}

	// At rest (pods never run here, so the plan keeps waiting) nothing is
	// written.
	before := versions(t, ns)
	time.Sleep(8 * time.Second)
	if after := versions(t, ns); after != before {
		t.Errorf("objects written while nothing changed:\nbefore %s\nafter  %s", before, after)
	}

	// Paused: a change of the spec changes no child.
	patch(t, ns, name, `{"spec":{"paused":true,"config":{"maxclients":"20000"}}}`)
	testbed.Eventually(t, timeout, "phase Paused", func() error {
		if err := get(ns, name, rc); err != nil {
			return err
		}
		if rc.Status.Phase != redisv1alpha1.PhasePaused {
			return fmt.Errorf("phase %s", rc.Status.Phase)
		}
		return nil
	})
	if err := get(ns, name+"-config", conf); err != nil || strings.Contains(string(conf.Data["redis.conf"]), "maxclients 20000") {
		t.Errorf("paused, yet redis.conf was rewritten (%v)", err)
	}
}

// TestAuthSecretNamedByUser: a missing Secret blocks with a message that
// says what to create; once it exists, its password is used.
func TestAuthSecretNamedByUser(t *testing.T) {
	ctx := context.Background()
	ns := restrictedNamespace(t)
	rc := &redisv1alpha1.RedisCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "users"},
		Spec:       redisv1alpha1.RedisClusterSpec{Size: 3, Auth: redisv1alpha1.RedisAuth{SecretName: "my-redis-password"}},
	}
	if err := suite.Client.Create(ctx, rc); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, timeout, "blocked on the missing Secret", func() error {
		if err := get(ns, rc.Name, rc); err != nil {
			return err
		}
		c := condition(rc, redisv1alpha1.ConditionProgressing)
		if c == nil || c.Reason != rediscluster.ReasonAuthSecretMissing || !strings.Contains(c.Message, `Secret my-redis-password`) ||
			!strings.Contains(c.Message, `key "password"`) {
			return fmt.Errorf("progressing %+v", c)
		}
		return nil
	})
	var pods corev1.PodList
	if err := suite.Client.List(ctx, &pods, client.InNamespace(ns)); err != nil || len(pods.Items) != 0 {
		t.Errorf("%d pods created without a password (%v)", len(pods.Items), err)
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "my-redis-password"},
		StringData: map[string]string{"password": `p"a\ss word`}} // #nosec G101 -- a test password, quoted by the operator
	if err := suite.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	// The user's Secret is not watched (only opsmith's are cached): any
	// change of the RedisCluster, or the recheck a minute later, finds it.
	patch(t, ns, rc.Name, `{"metadata":{"annotations":{"touch":"1"}}}`)
	conf := &corev1.Secret{}
	testbed.Eventually(t, timeout, "redis.conf with the user's password", func() error {
		if err := get(ns, "users-config", conf); err != nil {
			return err
		}
		if !strings.Contains(string(conf.Data["redis.conf"]), `requirepass "p\"a\\ss word"`) {
			return fmt.Errorf("redis.conf does not quote the password as Redis reads it")
		}
		return nil
	})
	if err := get(ns, "users-auth", &corev1.Secret{}); err == nil {
		t.Error("a password was generated although the user named a Secret")
	}
}

func patch(t *testing.T, ns, name, body string) {
	t.Helper()
	rc := &redisv1alpha1.RedisCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := suite.Client.Patch(context.Background(), rc, client.RawPatch(types.MergePatchType, []byte(body))); err != nil {
		t.Fatal(err)
	}
}

// versions lists the resourceVersions of everything in ns.
func versions(t *testing.T, ns string) string {
	t.Helper()
	var out []string
	for _, l := range []client.ObjectList{&redisv1alpha1.RedisClusterList{}, &corev1.PodList{}, &corev1.PersistentVolumeClaimList{},
		&corev1.ServiceList{}, &corev1.SecretList{}, &policyv1.PodDisruptionBudgetList{}} {
		if err := suite.Client.List(context.Background(), l, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range items {
			obj := o.(client.Object)
			out = append(out, fmt.Sprintf("%T/%s@%s", o, obj.GetName(), obj.GetResourceVersion()))
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}
