package etcdcluster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	etcdv1alpha1 "opsmith.io/opsmith/api/etcd/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
	"opsmith.io/opsmith/internal/controller/etcdcluster"
	"opsmith.io/opsmith/test/managertest"
	"opsmith.io/opsmith/test/testbed"
)

// restrictedNamespace creates a namespace where the API server enforces the
// restricted Pod Security Standard: a member pod that does not meet it is
// rejected.
func restrictedNamespace(t *testing.T) string {
	t.Helper()
	testbed.RequireCluster(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   "etcd-" + rand.String(6),
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}}
	if err := suite.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = suite.Client.Delete(context.Background(), ns) })
	// No controller-manager runs here to create it.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "default"}}
	if err := suite.Client.Create(context.Background(), sa); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func seedCluster(t *testing.T, ns string) *etcdv1alpha1.EtcdCluster {
	t.Helper()
	u := testbed.Sample(t, "etcd_v1alpha1_etcdcluster.yaml", ns)
	if err := suite.Client.Create(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	ec := &etcdv1alpha1.EtcdCluster{}
	if err := suite.Client.Get(context.Background(), client.ObjectKeyFromObject(u), ec); err != nil {
		t.Fatal(err)
	}
	return ec
}

func get(ns, name string, obj client.Object) error {
	return suite.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj)
}

// TestSeedClusterBootstrap applies the seed sample and checks what the
// operator creates before any member runs: the Services, the
// PodDisruptionBudget, the seed member's volume and pod (one member first:
// the others join as learners once it answers), and a status that says so.
func TestSeedClusterBootstrap(t *testing.T) {
	ns := restrictedNamespace(t)
	ec := seedCluster(t, ns)
	const seed = "example-etcd-cluster-0"

	pod := &corev1.Pod{}
	testbed.Eventually(t, timeout, "seed pod", func() error { return get(ns, seed, pod) })
	pvc := &corev1.PersistentVolumeClaim{}
	if err := get(ns, seed, pvc); err != nil {
		t.Fatal(err)
	}
	wantCluster := seed + "=http://" + seed + ".example-etcd-cluster." + ns + ".svc:2380"
	if pvc.Annotations[etcdcluster.AnnotationInitialCluster] != wantCluster ||
		pvc.Annotations[etcdcluster.AnnotationInitialClusterState] != "new" {
		t.Errorf("seed volume annotations %v, want initial cluster %q, state new", pvc.Annotations, wantCluster)
	}
	if len(pvc.OwnerReferences) != 0 {
		t.Errorf("with reclaimPolicy Retain the volume must not be owned (deleting the cluster keeps data): %v", pvc.OwnerReferences)
	}
	if q := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; q.String() != "1Gi" {
		t.Errorf("volume size %s, want the 1Gi default", q.String())
	}

	c := pod.Spec.Containers[0]
	if c.Image != "gcr.io/etcd-development/etcd:v3.5.35" || pod.Spec.Hostname != seed || pod.Spec.Subdomain != "example-etcd-cluster" {
		t.Errorf("pod image %s hostname %s subdomain %s", c.Image, pod.Spec.Hostname, pod.Spec.Subdomain)
	}
	for _, want := range []string{"--initial-cluster=" + wantCluster, "--initial-cluster-state=new", "--name=" + seed,
		"--advertise-client-urls=http://" + seed + ".example-etcd-cluster." + ns + ".svc:2379"} {
		if !strings.Contains(strings.Join(c.Args, " "), want) {
			t.Errorf("pod args %v lack %s", c.Args, want)
		}
	}
	if pod.Spec.SecurityContext.FSGroup == nil || *pod.Spec.SecurityContext.FSGroup != 65532 {
		t.Errorf("pod security context %+v: want fsGroup 65532 so the volume is writable", pod.Spec.SecurityContext)
	}
	if ref := metav1.GetControllerOf(pod); ref == nil || ref.UID != ec.UID {
		t.Errorf("pod not controlled by the EtcdCluster: %v", pod.OwnerReferences)
	}

	peer, clientSvc := &corev1.Service{}, &corev1.Service{}
	if err := get(ns, "example-etcd-cluster", peer); err != nil {
		t.Fatal(err)
	}
	if peer.Spec.ClusterIP != corev1.ClusterIPNone || !peer.Spec.PublishNotReadyAddresses {
		t.Errorf("peer Service must be headless and publish members before they are ready: %+v", peer.Spec)
	}
	if err := get(ns, "example-etcd-cluster-client", clientSvc); err != nil {
		t.Fatal(err)
	}
	if clientSvc.Spec.Ports[0].Port != 2379 || clientSvc.Spec.Selector[etcdcluster.LabelCluster] != "example-etcd-cluster" {
		t.Errorf("client Service spec %+v", clientSvc.Spec)
	}
	pdb := &policyv1.PodDisruptionBudget{}
	if err := get(ns, "example-etcd-cluster", pdb); err != nil {
		t.Fatal(err)
	}
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 2 {
		t.Errorf("PodDisruptionBudget minAvailable %v, want 2 (quorum of 3)", pdb.Spec.MinAvailable)
	}

	testbed.Eventually(t, timeout, "status", func() error {
		if err := get(ns, ec.Name, ec); err != nil {
			return err
		}
		st := ec.Status
		if st.Phase != etcdv1alpha1.PhaseCreating || st.TargetVersion != "3.5.35" ||
			st.ClientEndpoint != "http://example-etcd-cluster-client."+ns+".svc:2379" || st.ObservedGeneration != ec.Generation {
			return fmt.Errorf("status %+v", st)
		}
		if c := meta.FindStatusCondition(st.Conditions, etcdv1alpha1.ConditionAvailable); c == nil || c.Status != metav1.ConditionFalse || c.Reason != "NoQuorum" {
			return fmt.Errorf("Available %+v", c)
		}
		if c := meta.FindStatusCondition(st.Conditions, etcdv1alpha1.ConditionProgressing); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("Progressing %+v", c)
		}
		return nil
	})
	var pods corev1.PodList
	if err := suite.Client.List(context.Background(), &pods, client.InNamespace(ns)); err != nil || len(pods.Items) != 1 {
		t.Errorf("%d pods (%v), want only the seed before it answers", len(pods.Items), err)
	}

	// No scheduler runs here: report for it what it says of a member
	// whose volume cannot be provisioned. The status says what the wait
	// is on.
	unschedulable := "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims."
	if err := get(ns, seed, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: corev1.PodReasonUnschedulable, Message: unschedulable, LastTransitionTime: metav1.Now()})
	if err := suite.Client.Status().Update(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	want := "pod " + seed + " is not scheduled: " + unschedulable
	testbed.Eventually(t, timeout, "Progressing names the unschedulable pod", func() error {
		if err := get(ns, ec.Name, ec); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(ec.Status.Conditions, etcdv1alpha1.ConditionProgressing); c == nil || !strings.HasSuffix(c.Message, want) {
			return fmt.Errorf("Progressing %+v, want a message ending in %q", c, want)
		}
		return nil
	})
}

// TestIdleWritesNothing: while the cluster waits (here: for its seed to
// answer, which never happens without a kubelet) a manager that reconciles
// it every couple of seconds sends no write at all.
func TestIdleWritesNothing(t *testing.T) {
	ns := restrictedNamespace(t)
	ec := seedCluster(t, ns)
	testbed.Eventually(t, timeout, "status written", func() error {
		if err := get(ns, ec.Name, ec); err != nil {
			return err
		}
		if ec.Status.Phase == "" {
			return fmt.Errorf("no status yet")
		}
		return nil
	})
	versions := func() string {
		ctx := context.Background()
		var pods corev1.PodList
		var pvcs corev1.PersistentVolumeClaimList
		var svcs corev1.ServiceList
		var out []string
		for _, l := range []client.ObjectList{&pods, &pvcs, &svcs} {
			if err := suite.Client.List(ctx, l, client.InNamespace(ns)); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range pods.Items {
			out = append(out, p.Name+"@"+p.ResourceVersion)
		}
		for _, p := range pvcs.Items {
			out = append(out, p.Name+"@"+p.ResourceVersion)
		}
		for _, p := range svcs.Items {
			out = append(out, p.Name+"@"+p.ResourceVersion)
		}
		if err := get(ns, ec.Name, ec); err != nil {
			t.Fatal(err)
		}
		return strings.Join(append(out, ec.ResourceVersion), " ")
	}
	managertest.ExpectIdle(t, suite.Cluster.Config, managerOptions(), ns, "etcdcluster", 10*time.Second, 3, versions)
}

// TestReclaimPolicy: with reclaimPolicy Delete the volumes are owned by the
// EtcdCluster (and go with it); switching back to Retain releases them.
func TestReclaimPolicy(t *testing.T) {
	ns := restrictedNamespace(t)
	ctx := context.Background()
	ec := &etcdv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "scratch"},
		Spec: etcdv1alpha1.EtcdClusterSpec{Size: 1, Version: "3.6.16",
			Storage: etcdv1alpha1.EtcdStorage{ReclaimPolicy: etcdv1alpha1.ReclaimDelete}}}
	if err := suite.Client.Create(ctx, ec); err != nil {
		t.Fatal(err)
	}
	pvc := &corev1.PersistentVolumeClaim{}
	testbed.Eventually(t, timeout, "owned volume", func() error {
		if err := get(ns, "scratch-0", pvc); err != nil {
			return err
		}
		if len(pvc.OwnerReferences) != 1 || pvc.OwnerReferences[0].UID != ec.UID {
			return fmt.Errorf("owners %v", pvc.OwnerReferences)
		}
		return nil
	})
	if err := get(ns, "scratch", ec); err != nil {
		t.Fatal(err)
	}
	ec.Spec.Storage.ReclaimPolicy = etcdv1alpha1.ReclaimRetain
	if err := suite.Client.Update(ctx, ec); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, timeout, "released volume", func() error {
		if err := get(ns, "scratch-0", pvc); err != nil {
			return err
		}
		if len(pvc.OwnerReferences) != 0 {
			return fmt.Errorf("owners %v", pvc.OwnerReferences)
		}
		return nil
	})
}

// TestPaused: a paused cluster gets no pods, volumes or Services, and says so.
func TestPaused(t *testing.T) {
	ns := restrictedNamespace(t)
	ec := &etcdv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "paused"},
		Spec: etcdv1alpha1.EtcdClusterSpec{Size: 3, Version: "3.6.16", Paused: true}}
	if err := suite.Client.Create(context.Background(), ec); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, timeout, "paused status", func() error {
		if err := get(ns, "paused", ec); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(ec.Status.Conditions, etcdv1alpha1.ConditionProgressing); ec.Status.Phase != etcdv1alpha1.PhasePaused || c == nil || c.Reason != "Paused" {
			return fmt.Errorf("status %+v", ec.Status)
		}
		return nil
	})
	var pvcs corev1.PersistentVolumeClaimList
	if err := suite.Client.List(context.Background(), &pvcs, client.InNamespace(ns)); err != nil || len(pvcs.Items) != 0 {
		t.Errorf("paused cluster got %d volumes (%v)", len(pvcs.Items), err)
	}
	// Nothing else either: paused writes only the status.
	var svcs corev1.ServiceList
	if err := suite.Client.List(context.Background(), &svcs, client.InNamespace(ns)); err != nil || len(svcs.Items) != 0 {
		t.Errorf("paused cluster got %d Services (%v)", len(svcs.Items), err)
	}
	var pods corev1.PodList
	if err := suite.Client.List(context.Background(), &pods, client.InNamespace(ns)); err != nil || len(pods.Items) != 0 {
		t.Errorf("paused cluster got %d pods (%v)", len(pods.Items), err)
	}
}

// TestRefusedVolumeIsReported: a member volume the API server refuses
// (here: a ResourceQuota that allows no PersistentVolumeClaims in the
// namespace; admission lets the EtcdCluster through, quota admission
// refuses its volume) shows in the status with the API server's message,
// as a Warning event, and the cluster goes on once the quota is gone.
func TestRefusedVolumeIsReported(t *testing.T) {
	ctx := context.Background()
	ns := restrictedNamespace(t)
	quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "no-volumes"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePersistentVolumeClaims: resource.MustParse("0")}}}
	if err := suite.Client.Create(ctx, quota); err != nil {
		t.Fatal(err)
	}
	// No controller-manager runs here to compute the quota's status, and
	// quota admission only enforces a quota whose status it knows.
	quota.Status = corev1.ResourceQuotaStatus{Hard: quota.Spec.Hard,
		Used: corev1.ResourceList{corev1.ResourcePersistentVolumeClaims: resource.MustParse("0")}}
	if err := suite.Client.Status().Update(ctx, quota); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, timeout, "quota enforced", func() error {
		probe := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe"},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
		if err := suite.Client.Create(ctx, probe, client.DryRunAll); !apierrors.IsForbidden(err) {
			return fmt.Errorf("dry-run volume not refused: %v", err)
		}
		return nil
	})

	ec := &etcdv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "quota"},
		Spec: etcdv1alpha1.EtcdClusterSpec{Size: 1, Version: "3.6.16"}}
	if err := suite.Client.Create(ctx, ec); err != nil {
		t.Fatal(err)
	}
	const want = `PersistentVolumeClaim quota-0 rejected by the API server: persistentvolumeclaims "quota-0" is forbidden: exceeded quota: no-volumes`
	testbed.Eventually(t, timeout, "refused volume in status", func() error {
		if err := get(ns, ec.Name, ec); err != nil {
			return err
		}
		pr := meta.FindStatusCondition(ec.Status.Conditions, etcdv1alpha1.ConditionProgressing)
		dg := meta.FindStatusCondition(ec.Status.Conditions, etcdv1alpha1.ConditionDegraded)
		if pr == nil || pr.Status != metav1.ConditionFalse || pr.Reason != apply.ReasonApplyFailed || !strings.HasPrefix(pr.Message, want) {
			return fmt.Errorf("Progressing %+v, want False ApplyFailed %q", pr, want)
		}
		if dg == nil || dg.Status != metav1.ConditionTrue || dg.Reason != apply.ReasonApplyFailed || dg.Message != pr.Message {
			return fmt.Errorf("Degraded %+v, want True ApplyFailed", dg)
		}
		if ec.Status.Phase != etcdv1alpha1.PhaseCreating || ec.Status.ObservedGeneration != ec.Generation {
			return fmt.Errorf("status %+v", ec.Status)
		}
		return nil
	})
	testbed.Eventually(t, timeout, "Warning event", func() error {
		evs := &eventsv1.EventList{}
		if err := suite.Client.List(ctx, evs, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Regarding.Name == ec.Name && e.Type == corev1.EventTypeWarning && e.Reason == apply.ReasonApplyFailed &&
				strings.HasPrefix(e.Note, "PersistentVolumeClaim quota-0 rejected: ") && strings.Contains(e.Note, "exceeded quota: no-volumes") {
				return nil
			}
		}
		return fmt.Errorf("no ApplyFailed Warning event on %s among %d events", ec.Name, len(evs.Items))
	})

	// With the quota gone the retry creates the volume and the seed pod.
	if err := suite.Client.Delete(ctx, quota); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, timeout, "volume and pod created", func() error {
		if err := get(ns, "quota-0", &corev1.PersistentVolumeClaim{}); err != nil {
			return err
		}
		return get(ns, "quota-0", &corev1.Pod{})
	})
	testbed.Eventually(t, timeout, "status no longer blocked", func() error {
		if err := get(ns, ec.Name, ec); err != nil {
			return err
		}
		for _, typ := range []string{etcdv1alpha1.ConditionProgressing, etcdv1alpha1.ConditionDegraded} {
			if c := meta.FindStatusCondition(ec.Status.Conditions, typ); c == nil || c.Reason == apply.ReasonApplyFailed {
				return fmt.Errorf("%s %+v", typ, c)
			}
		}
		return nil
	})
}
